import type { APIGatewayProxyResult } from 'aws-lambda';
import type { AdapterRecord } from '../core/adapter-record';
import { adapterView, addAdapter, addAdapterRequestSchema, removeAdapter } from '../core/adapters';
import { auditView } from '../core/audit';
import { PlatformError } from '../core/errors';
import { siloMayExist } from '../core/lifecycle';
import { beginOffboarding } from '../core/offboarding';
import { pageQuerySchema } from '../core/paging';
import { promoteRequestSchema, requestPool, requestSilo } from '../core/placement';
import { promptTemplateRequestSchema } from '../core/prompt-record';
import { deletePrompt, getPrompt, listPrompts, promptView, putPrompt } from '../core/prompts';
import { reindexTenant } from '../core/reindex';
import { actingFor, tenantView } from '../core/tenant';
import {
  apiKeyChangeSchema,
  apiKeyRequestSchema,
  changeApiKey,
  createApiKey,
  getTenant,
  onboardRequestSchema,
  onboardTenant,
  revokeApiKey,
  routingRequestSchema,
  routingView,
  setRouting,
  updateRequestSchema,
  updateTenant,
} from '../core/tenants';
import { adminUsageQuerySchema, adminUsageReport } from '../core/usage';
import { audit, documents, lambdaHandler, offboardingDeps, type PlatformDeps, registry, reports } from '../runtime';
import { inferenceProfiles } from '../runtime-bedrock-control';
import { placement } from '../runtime-eventbridge';
import { adapterHost } from '../runtime-sagemaker';
import { adapterWorkflow, offboarding } from '../runtime-sfn';
import { vectors } from '../runtime-vectors';
import { type ApiEvent, adminApi, json, listPage } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type AdminDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'registry'
  | 'audit'
  | 'documents'
  | 'vectors'
  | 'reports'
  | 'offboarding'
  | 'placement'
  | 'adapterHost'
  | 'adapterWorkflow'
  | 'inferenceProfiles'
  | 'now'
>;

/** Who the operator's reads of a tenant's data act as. */
const OPERATOR_ACTOR = 'platform:operator';

/** Operator routes under `/admin` (IAM-authorized on AWS), dispatched on API Gateway's resource path. */
export function create(deps: AdminDeps) {
  const admin = {
    ...deps,
    tiers: deps.settings.tiers,
    vectorStores: deps.settings.retrieval.vectorStores,
    siloTenantId: deps.settings.siloTenantId,
  };
  const adapters = {
    ...admin,
    host: deps.adapterHost,
    workflow: deps.adapterWorkflow,
    endpoint: deps.settings.adapterEndpoint,
  };
  const adapterOf = (record: AdapterRecord) => adapterView(record, deps.settings.catalog);
  const promote = async (tenantId: string, region?: string) => {
    // A silo plane has no pipeline of its own: moves are the pool's.
    if (admin.siloTenantId !== undefined) throw new PlatformError('conflict', 'this stack is a silo already');
    const siloRegions = [deps.settings.region, ...(deps.settings.siloRegions ?? [])];
    return requestSilo({ ...admin, workflow: deps.placement, siloRegions }, tenantId, region);
  };
  const demote = async (tenantId: string) => {
    if (admin.siloTenantId !== undefined) throw new PlatformError('conflict', "a tenant's return is asked of the pool");
    return requestPool({ ...admin, workflow: deps.placement }, tenantId);
  };
  const id = (event: ApiEvent) => event.pathParameters?.id ?? '';
  const name = (event: ApiEvent) => event.pathParameters?.name ?? '';
  const operations: Record<string, (event: ApiEvent) => Promise<APIGatewayProxyResult>> = {
    'POST /admin/tenants': async (event) => {
      const request = onboardRequestSchema.parse(event.body);
      const record = await onboardTenant(
        {
          ...admin,
          // Only where configured: each new tenant's own profile of each Bedrock model.
          inferenceProfiles: deps.settings.tenantInferenceProfiles ? deps.inferenceProfiles : undefined,
          catalog: deps.settings.catalog,
        },
        request,
      );
      return json(201, tenantView(request.placement === 'silo' ? await promote(record.tenantId) : record));
    },
    'POST /admin/tenants/{id}/promote': async (event) => {
      const { region } = promoteRequestSchema.parse(event.body ?? {});
      return json(202, { ...tenantView(await promote(id(event), region)), status_url: `/admin/tenants/${id(event)}` });
    },
    // A silo tenant back to the pool (a downgrade): its silo decommissioned once the pool serves it.
    'POST /admin/tenants/{id}/demote': async (event) =>
      json(202, { ...tenantView(await demote(id(event))), status_url: `/admin/tenants/${id(event)}` }),
    // Moves the tenant's chunks into an index of its own in its tier's store (the shared index's migration).
    'POST /admin/tenants/{id}/reindex': async (event) => {
      const reindexed = await reindexTenant(admin, id(event));
      return json(200, { ...tenantView(reindexed.tenant), moved_chunks: reindexed.moved, dropped: reindexed.dropped });
    },
    'GET /admin/tenants': async (event) => {
      const page = await deps.registry.listTenants(pageQuerySchema.parse(event.queryStringParameters ?? {}));
      return listPage(page.tenants.map(tenantView), page.nextCursor);
    },
    // The operator reads a tenant's audit trail (refusals, errors) with that tenant's scoped credentials.
    'GET /admin/tenants/{id}/audit': async (event) => {
      const tenant = actingFor(await getTenant(admin, id(event)), OPERATOR_ACTOR);
      const page = await deps.audit.list(tenant, pageQuerySchema.parse(event.queryStringParameters ?? {}));
      return listPage(page.entries.map(auditView), page.nextCursor);
    },
    'GET /admin/tenants/{id}': async (event) => json(200, tenantView(await getTenant(admin, id(event)))),
    'GET /admin/tenants/{id}/routing': async (event) => {
      const record = await getTenant(admin, id(event));
      return json(200, routingView(record, deps.settings.routing[record.tier]));
    },
    'PUT /admin/tenants/{id}/routing': async (event) => {
      const request = routingRequestSchema.parse(event.body);
      const record = await setRouting({ ...admin, catalog: deps.settings.catalog }, id(event), request);
      return json(200, routingView(record, deps.settings.routing[record.tier]));
    },
    'PATCH /admin/tenants/{id}': async (event) =>
      json(200, tenantView(await updateTenant(admin, id(event), updateRequestSchema.parse(event.body)))),
    'DELETE /admin/tenants/{id}': async (event) => {
      const record = await beginOffboarding(offboardingDeps(deps), id(event));
      if (record.status === 'offboarded') return json(200, tenantView(record));
      // Started again on every DELETE while it runs: harmless, and it heals a start that failed.
      await deps.offboarding.start({
        tenantId: record.tenantId,
        drainUntil: record.offboarding?.drainUntil ?? '',
        silo: siloMayExist(record),
      });
      return json(202, { ...tenantView(record), status_url: `/admin/tenants/${record.tenantId}` });
    },
    'POST /admin/tenants/{id}/api-keys': async (event) =>
      json(201, await createApiKey(admin, id(event), apiKeyRequestSchema.parse(event.body ?? {}))),
    'PATCH /admin/tenants/{id}/api-keys/{keyId}': async (event) =>
      json(
        200,
        await changeApiKey(admin, id(event), event.pathParameters?.keyId ?? '', apiKeyChangeSchema.parse(event.body)),
      ),
    'DELETE /admin/tenants/{id}/api-keys/{keyId}': async (event) =>
      json(200, await revokeApiKey(admin, id(event), event.pathParameters?.keyId ?? '')),
    'POST /admin/tenants/{id}/adapters': async (event) => {
      const record = await addAdapter(adapters, id(event), addAdapterRequestSchema.parse(event.body));
      return json(202, adapterOf(record));
    },
    'GET /admin/tenants/{id}/adapters': async (event) => {
      const tenant = await getTenant(admin, id(event));
      return json(200, { object: 'list', data: (await deps.registry.listAdapters(tenant.tenantId)).map(adapterOf) });
    },
    'DELETE /admin/tenants/{id}/adapters/{name}': async (event) => {
      await removeAdapter(adapters, (await getTenant(admin, id(event))).tenantId, name(event));
      return json(200, { name: name(event), deleted: true });
    },
    'GET /admin/tenants/{id}/prompts': async (event) =>
      json(200, { object: 'list', data: (await listPrompts(admin, id(event))).map(promptView) }),
    'PUT /admin/tenants/{id}/prompts/{name}': async (event) => {
      const request = promptTemplateRequestSchema.parse(event.body);
      return json(200, promptView(await putPrompt(admin, id(event), name(event), request)));
    },
    'GET /admin/tenants/{id}/prompts/{name}': async (event) =>
      json(200, promptView(await getPrompt(admin, id(event), name(event)))),
    'DELETE /admin/tenants/{id}/prompts/{name}': async (event) => {
      await deletePrompt(admin, id(event), name(event));
      return json(200, { id: name(event), object: 'prompt', deleted: true });
    },
    'GET /admin/usage': async (event) => {
      const { month, group_by } = adminUsageQuerySchema.parse(event.queryStringParameters ?? {});
      return json(200, adminUsageReport(await deps.reports.monthOfAllTenants(month), month, group_by));
    },
  };
  return lambdaFunction(
    adminApi(deps).handler(async (event) => {
      const operation = operations[`${event.httpMethod} ${event.resource}`];
      if (!operation) throw new PlatformError('not_found', 'no such route');
      return operation(event);
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    settings: wiring.settings,
    registry: registry(wiring),
    audit: audit(wiring),
    documents: documents(wiring),
    vectors: vectors(wiring),
    reports: reports(wiring),
    offboarding: offboarding(wiring),
    placement: placement(wiring),
    adapterHost: adapterHost(wiring),
    adapterWorkflow: adapterWorkflow(wiring),
    inferenceProfiles: inferenceProfiles(wiring),
    now: Date.now,
  }),
);
