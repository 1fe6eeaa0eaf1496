import { auditView } from '../core/audit';
import { PlatformError } from '../core/errors';
import { pageQuerySchema } from '../core/paging';
import { lambdaHandler, type PlatformDeps, tenantRoutePorts } from '../runtime';
import { json, listPage, tenantApi } from './http';
import { lambdaFunction } from './lambda';

const REQUEST_ID = /^[A-Za-z0-9-]{1,128}$/;

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type AuditDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics'>;

/** `GET /v1/audit` (newest first, paginated) and `GET /v1/audit/{requestId}`: the caller's own records only. */
export function create(deps: AuditDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      const requestId = event.pathParameters?.requestId;
      if (requestId !== undefined) {
        // Unknown, malformed and other tenants' ids all answer the same 404.
        const entry = REQUEST_ID.test(requestId) ? await deps.audit.get(tenant, requestId) : undefined;
        if (!entry) throw new PlatformError('not_found', 'no such audit record');
        return json(200, auditView(entry));
      }
      const query = pageQuerySchema.parse(event.queryStringParameters ?? {});
      const page = await deps.audit.list(tenant, query);
      return listPage(page.entries.map(auditView), page.nextCursor);
    }),
  );
}

export const handler = lambdaHandler((wiring) => create({ ...tenantRoutePorts(wiring) }));
