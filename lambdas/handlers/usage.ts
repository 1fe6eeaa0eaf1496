import { usageQuerySchema, usageRange, usageReport } from '../core/usage';
import { lambdaHandler, ledger, type PlatformDeps, tenantRoutePorts } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type UsageDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics' | 'ledger'>;

/** `GET /v1/usage?from=&to=&group_by=`: the caller's own usage only. */
export function create(deps: UsageDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      const query = usageQuerySchema.parse(event.queryStringParameters ?? {});
      const range = usageRange(query, deps.now());
      const records = await deps.ledger.usage(tenant, range);
      return json(200, usageReport(records, range, query.group_by));
    }),
  );
}

export const handler = lambdaHandler((wiring) => create({ ...tenantRoutePorts(wiring), ledger: ledger(wiring) }));
