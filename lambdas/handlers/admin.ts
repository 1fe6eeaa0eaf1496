import type { APIGatewayProxyResult } from 'aws-lambda';
import { PlatformError } from '../core/errors';
import { createApiKey, getTenant, onboardRequestSchema, onboardTenant, tenantView } from '../core/tenants';
import { lambdaHandler, type PlatformDeps } from '../runtime';
import { type ApiEvent, adminApi, json } from './http';

/** Operator routes under `/admin` (IAM-authorized on AWS), dispatched on API Gateway's resource path. */
export function create(deps: PlatformDeps) {
  const admin = { registry: deps.registry, tiers: deps.settings.tiers, now: deps.now };
  const operations: Record<string, (event: ApiEvent) => Promise<APIGatewayProxyResult>> = {
    'POST /admin/tenants': async (event) =>
      json(201, tenantView(await onboardTenant(admin, onboardRequestSchema.parse(event.body)))),
    'GET /admin/tenants/{id}': async (event) => json(200, tenantView(await getTenant(admin, tenantIdParam(event)))),
    'POST /admin/tenants/{id}/api-keys': async (event) => json(201, await createApiKey(admin, tenantIdParam(event))),
  };
  return adminApi(deps.settings.maxRequestBodyBytes).handler(async (event) => {
    const operation = operations[`${event.httpMethod} ${event.resource}`];
    if (!operation) throw new PlatformError('not_found', 'no such route');
    return operation(event);
  });
}

function tenantIdParam(event: ApiEvent): string {
  return event.pathParameters?.id ?? '';
}

export const handler = lambdaHandler(create);
