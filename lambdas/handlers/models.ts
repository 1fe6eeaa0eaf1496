import { modelList } from '../core/adapters';
import { promptView } from '../core/prompts';
import { lambdaHandler, type PlatformDeps, tenantAdapters, tenantPrompts, tenantRoutePorts } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type ModelsDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics' | 'adapters' | 'prompts'>;

/**
 * What the caller can call: `GET /v1/models` (the catalog's models and its own adapters in
 * service) and `GET /v1/prompts` (its own prompt templates).
 */
export function create(deps: ModelsDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      if (event.resource === '/v1/prompts') {
        return json(200, { object: 'list', data: (await deps.prompts.list(tenant)).map(promptView) });
      }
      // No endpoint, no adapters: nothing to read.
      const adapters = deps.settings.adapterEndpoint ? await deps.adapters.list(tenant) : [];
      return json(200, modelList(deps.settings.catalog, adapters));
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    ...tenantRoutePorts(wiring),
    adapters: tenantAdapters(wiring),
    prompts: tenantPrompts(wiring),
  }),
);
