import { modelList } from '../core/adapters';
import { audit, lambdaHandler, type PlatformDeps, tenantAdapters } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type ModelsDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'adapters'>;

/** `GET /v1/models`: the catalog's models and the caller's own adapters in service. */
export function create(deps: ModelsDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (_event, { tenant }) => {
      // No endpoint, no adapters: nothing to read.
      const adapters = deps.settings.adapterEndpoint ? await deps.adapters.list(tenant) : [];
      return json(200, modelList(deps.settings.catalog, adapters));
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({ settings: wiring.settings, audit: audit(wiring), now: Date.now, adapters: tenantAdapters(wiring) }),
);
