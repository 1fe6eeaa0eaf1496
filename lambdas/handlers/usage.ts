import { usageQuerySchema, usageRange, usageReport } from '../core/usage';
import { lambdaHandler, type PlatformDeps } from '../runtime';
import { json, tenantApi } from './http';

/** `GET /v1/usage?from=&to=&group_by=`: the caller's own usage only. */
export function create(deps: PlatformDeps) {
  return tenantApi(deps).handler(async (event, { tenant }) => {
    const query = usageQuerySchema.parse(event.queryStringParameters ?? {});
    const range = usageRange(query, deps.now());
    const records = await deps.ledger.usage(tenant, range);
    return json(200, usageReport(records, range, query.group_by));
  });
}

export const handler = lambdaHandler(create);
