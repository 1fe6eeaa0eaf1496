import { usageQuerySchema, usageRange, usageReport } from '../core/usage';
import { audit, lambdaHandler, ledger, type PlatformDeps } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type UsageDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'ledger'>;

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

export const handler = lambdaHandler((wiring) =>
  create({ settings: wiring.settings, audit: audit(wiring), now: Date.now, ledger: ledger(wiring) }),
);
