import { scopeUsageReport, usageQuerySchema, usageRange, usageReport } from '../core/usage';
import { lambdaHandler, ledger, type PlatformDeps, tenantKeys, tenantRoutePorts } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type UsageDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics' | 'ledger' | 'keys'>;

/** The caller's own account: `GET /v1/usage?from=&to=&group_by=` and `GET /v1/api-keys`. */
export function create(deps: UsageDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      if (event.resource === '/v1/api-keys') {
        const keys = await deps.keys.list(tenant);
        return json(200, {
          object: 'list',
          data: keys.map((key) => ({
            object: 'api_key',
            id: key.keyId,
            created_at: key.createdAt,
            status: key.status,
          })),
        });
      }
      const query = usageQuerySchema.parse(event.queryStringParameters ?? {});
      const range = usageRange(query, deps.now());
      const groupBy = query.group_by;
      if (groupBy === 'project' || groupBy === 'key' || groupBy === 'user') {
        return json(200, scopeUsageReport(await deps.ledger.scopeUsage(tenant, groupBy, range), range, groupBy));
      }
      const records = await deps.ledger.usage(tenant, range);
      return json(200, usageReport(records, range, groupBy));
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({ ...tenantRoutePorts(wiring), ledger: ledger(wiring), keys: tenantKeys(wiring) }),
);
