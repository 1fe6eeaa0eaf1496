import { UNKNOWN_TENANT_PATH } from '../../contract/routes';
import { modelList } from '../core/adapters';
import { PlatformError } from '../core/errors';
import { promptView } from '../core/prompts';
import { lambdaHandler, type PlatformDeps, tenantAdapters, tenantPrompts, tenantRoutePorts } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type ModelsDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics' | 'adapters' | 'prompts'>;

/**
 * What the caller can call: `GET /v1/models` (the catalog's models and its own adapters in
 * service), `GET /v1/models/{id}` (one of them; any other is not found), and `GET /v1/prompts`
 * (its own prompt templates). Also answers the tenant paths that do not exist, once authenticated.
 */
export function create(deps: ModelsDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      if (event.resource === UNKNOWN_TENANT_PATH) throw new PlatformError('not_found', 'no such route');
      if (event.resource === '/v1/prompts') {
        return json(200, { object: 'list', data: (await deps.prompts.list(tenant)).map(promptView) });
      }
      // No endpoint, no adapters: nothing to read.
      const adapters = deps.settings.adapterEndpoint ? await deps.adapters.list(tenant) : [];
      const models = modelList(deps.settings.catalog, adapters);
      if (event.resource !== '/v1/models/{id}') return json(200, models);
      const id = event.pathParameters?.id;
      // Another tenant's adapter is not found, exactly like a model that does not exist.
      const model = models.data.find((entry) => entry.id === id);
      if (!model) throw new PlatformError('not_found', `no model '${String(id).slice(0, 128)}'`);
      return json(200, model);
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
