import {
  ADAPTER_NAME_PATTERN,
  type AdapterEndpointSettings,
  adapterComponentName,
  adapterModelName,
} from '../../contract/adapters';
import type { ModelCatalog } from '../../contract/catalog';
import * as z from '../../contract/zod';
import type { AdapterRecord } from './adapter-record';
import { bedrockModelIdFor, type ResolvedModel, resolveModel } from './catalog';
import { PlatformError } from './errors';
import { assertLegal, readTenant, writeIfCurrent } from './lifecycle';
import type { AdapterHost, AdapterWorkflow, ModelProvider, TenantAdapters, TenantRegistry } from './ports';
import type { TenantContext, TenantRecord } from './tenant';

/**
 * An adapter artifact: an S3 object `.tar.gz` (the PEFT `adapter_config.json` and weights at its
 * root, which SageMaker checks when it loads it, failing the component with its reason otherwise).
 */
const artifactUrlSchema = z
  .string()
  .check(
    z.maxLength(1024),
    z.regex(
      /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[\x21-\x7e]+\.tar\.gz$/,
      'artifact_url must be an s3://bucket/key.tar.gz URL of the adapter (PEFT adapter_config.json and weights at its root)',
    ),
  );

export const addAdapterRequestSchema = z.strictObject({
  name: z.string().check(z.regex(ADAPTER_NAME_PATTERN, `name must match ${ADAPTER_NAME_PATTERN.source}`)),
  artifact_url: artifactUrlSchema,
});

export interface AdapterDeps {
  readonly registry: TenantRegistry;
  readonly host: AdapterHost;
  readonly workflow: AdapterWorkflow;
  readonly endpoint?: AdapterEndpointSettings;
  readonly now: () => number;
  /** A silo plane's one tenant; absent in the pool. */
  readonly siloTenantId?: string;
}

/** The admin API's view of an adapter: its model name is what the tenant sends as `model`. */
export function adapterView(record: AdapterRecord, catalog: ModelCatalog) {
  return {
    name: record.name,
    model: adapterModelName(adapterBaseModelName(catalog) ?? '', record.name),
    artifact_url: record.artifactUrl,
    status: record.status,
    ...(record.failureReason && { failure_reason: record.failureReason }),
    created_at: record.createdAt,
  };
}

/**
 * Registers the adapter and asks SageMaker to create its inference component on the base component
 * of the tenant's tier; the workflow then follows it to `InService` or `Failed`.
 */
export async function addAdapter(
  deps: AdapterDeps,
  tenantId: string,
  request: z.infer<typeof addAdapterRequestSchema>,
): Promise<AdapterRecord> {
  const endpoint = requireEndpoint(deps.endpoint);
  // A tenant's adapter is built from its own artifacts only: those under its own prefix of a configured bucket.
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.*)$/.exec(request.artifact_url) ?? [];
  if (!endpoint.artifactBuckets.includes(bucket) || !key.startsWith(`${tenantId}/`)) {
    const buckets = endpoint.artifactBuckets.join(', ') || 'none configured: -c adapterArtifactBuckets';
    throw new PlatformError(
      'invalid_request',
      `artifact_url must be under the tenant's own prefix of an artifact bucket (${buckets}): s3://<bucket>/${tenantId}/`,
    );
  }
  const tenant = await readTenant(deps.registry, tenantId);
  assertLegal(tenant, 'change_adapters', deps.siloTenantId);
  const existing = await deps.registry.getAdapter(tenantId, request.name);
  if (existing && existing.status !== 'Failed') {
    throw new PlatformError('conflict', `adapter '${request.name}' exists already (${existing.status})`);
  }
  const record: AdapterRecord = {
    name: request.name,
    artifactUrl: request.artifact_url,
    componentName: adapterComponentName(endpoint.endpointName, tenantId, request.name),
    baseComponentName: baseComponentFor(endpoint, tenant.tier),
    status: 'Creating',
    createdAt: new Date(deps.now()).toISOString(),
  };
  // A failed one's component is gone or going: its name is taken again from scratch.
  if (existing) await deps.host.delete(existing.componentName);
  await writeIfCurrent(deps.registry, tenant, () =>
    deps.registry.putAdapter(tenantId, record, { tenant, previous: existing ?? null }),
  );
  await deps.host.create({
    componentName: record.componentName,
    baseComponentName: record.baseComponentName,
    endpointName: endpoint.endpointName,
    artifactUrl: record.artifactUrl,
    tenantId,
  });
  await deps.workflow.start({ tenantId, name: record.name });
  return record;
}

/** The workflow's poll: records `InService`, or `Failed` with SageMaker's reason; `pending` while it is created. */
export async function refreshAdapter(
  deps: Pick<AdapterDeps, 'registry' | 'host'>,
  tenantId: string,
  name: string,
): Promise<'pending' | 'done'> {
  const record = await deps.registry.getAdapter(tenantId, name);
  if (record?.status !== 'Creating') return 'done';
  const described = await deps.host.describe(record.componentName);
  if (described.status === 'Creating' || described.status === 'Updating') return 'pending';
  const inService = described.status === 'InService';
  const refreshed: AdapterRecord = {
    ...record,
    status: inService ? 'InService' : 'Failed',
    ...(!inService && { failureReason: described.failureReason ?? `the component is ${described.status}` }),
  };
  // Only over the record polled: one removed or added again meanwhile is not brought back.
  await deps.registry.putAdapter(tenantId, refreshed, { previous: record }).catch((error: unknown) => {
    if (!(error instanceof PlatformError && error.code === 'conflict')) throw error;
  });
  return 'done';
}

/** The operator's removal: while the tenant may change its adapters here and is as read. */
export async function removeAdapter(
  deps: Pick<AdapterDeps, 'registry' | 'host' | 'siloTenantId'>,
  tenantId: string,
  name: string,
) {
  const tenant = await readTenant(deps.registry, tenantId);
  assertLegal(tenant, 'change_adapters', deps.siloTenantId);
  const record = ADAPTER_NAME_PATTERN.test(name) ? await deps.registry.getAdapter(tenantId, name) : undefined;
  if (!record) throw new PlatformError('not_found', 'no such adapter');
  // Marked first, conditionally: a removal that lost a race changed nothing; one that crashed after
  // is finished by the next (or by offboarding), so no component outlives its record.
  if (record.status !== 'Deleting') {
    await writeIfCurrent(deps.registry, tenant, () =>
      deps.registry.putAdapter(tenantId, { ...record, status: 'Deleting' }, { tenant, previous: record }),
    );
  }
  await deps.host.delete(record.componentName);
  await deps.registry.deleteAdapter(tenantId, name);
}

/** Offboarding and the pool's cleanup after a move: every adapter of the tenant, its component first; returns how many. */
export async function removeAllAdapters(
  deps: Pick<AdapterDeps, 'registry' | 'host'>,
  tenantId: string,
): Promise<number> {
  const adapters = await deps.registry.listAdapters(tenantId);
  for (const adapter of adapters) {
    await deps.host.delete(adapter.componentName);
    await deps.registry.deleteAdapter(tenantId, adapter.name);
  }
  return adapters.length;
}

/** Where a move loads the tenant's adapters: the target plane's registry, components and GPU endpoint (absent: none). */
export interface AdapterPlane {
  readonly registry: TenantRegistry;
  readonly adapterHost: AdapterHost;
  readonly adapterEndpoint?: AdapterEndpointSettings;
}

/** How often a move looks at the adapters it loads, and how long it waits for them before it fails. */
export const ADAPTER_LOAD_POLL_MS = 15_000;
const ADAPTER_LOAD_TIMEOUT_MS = 60 * 60_000;

/**
 * A move's copy of the tenant's adapters: each one the source serves or is creating is created
 * again on the target's own GPU endpoint, from the same artifact, and the move waits until every
 * one is in service there, so the tenant's first call after the switch finds it. A silo without a
 * GPU endpoint, an artifact its endpoint may not read, or a component SageMaker fails, fails the
 * move before the switch (the tenant served where it was), saying why. Returns how many; a rerun
 * keeps those in service or creating, and creates a failed one again.
 */
export async function loadAdaptersAt(
  source: Pick<TenantRegistry, 'listAdapters'>,
  target: AdapterPlane,
  tenant: Pick<TenantRecord, 'tenantId' | 'tier'>,
  clock: { readonly now: () => number; readonly sleep: (ms: number) => Promise<void> },
): Promise<number> {
  const { tenantId } = tenant;
  const adapters = (await source.listAdapters(tenantId)).filter(
    (adapter) => adapter.status === 'InService' || adapter.status === 'Creating',
  );
  if (adapters.length === 0) return 0;
  const endpoint = target.adapterEndpoint;
  if (!endpoint) {
    throw new PlatformError(
      'conflict',
      `tenant '${tenantId}' has ${adapters.length} adapter(s) and its silo has no GPU endpoint: deploy the silo with silo.${tenantId}.adapterInstanceType`,
    );
  }
  for (const adapter of adapters) {
    const bucket = /^s3:\/\/([^/]+)\//.exec(adapter.artifactUrl)?.[1] ?? '';
    if (!endpoint.artifactBuckets.includes(bucket)) {
      throw new PlatformError(
        'conflict',
        `adapter '${adapter.name}' comes from s3://${bucket}, which the silo's endpoint may not read: add it to silo.${tenantId}.adapterArtifactBuckets`,
      );
    }
    const existing = await target.registry.getAdapter(tenantId, adapter.name);
    if (existing?.status === 'InService' || existing?.status === 'Creating') continue;
    const record: AdapterRecord = {
      ...adapter,
      componentName: adapterComponentName(endpoint.endpointName, tenantId, adapter.name),
      baseComponentName: baseComponentFor(endpoint, tenant.tier),
      status: 'Creating',
      failureReason: undefined,
    };
    if (existing) await target.adapterHost.delete(existing.componentName);
    await target.registry.putAdapter(tenantId, record);
    await target.adapterHost.create({ ...record, endpointName: endpoint.endpointName, tenantId });
  }
  const deadline = clock.now() + ADAPTER_LOAD_TIMEOUT_MS;
  const plane = { registry: target.registry, host: target.adapterHost };
  for (;;) {
    const states = await Promise.all(adapters.map((adapter) => refreshAdapter(plane, tenantId, adapter.name)));
    const failed = (await target.registry.listAdapters(tenantId)).find((adapter) => adapter.status === 'Failed');
    if (failed) {
      throw new PlatformError(
        'conflict',
        `adapter '${failed.name}' could not be loaded at the silo: ${failed.failureReason ?? 'failed'}`,
      );
    }
    if (!states.includes('pending')) return adapters.length;
    if (clock.now() >= deadline) {
      throw new PlatformError('conflict', `the silo's adapters were not in service within an hour: ask to move again`);
    }
    await clock.sleep(ADAPTER_LOAD_POLL_MS);
  }
}

/** How a chat model name is served: the provider, its model id there, and the catalog entry it is priced by. */
export interface ChatTarget {
  readonly model: ResolvedModel<'chat'>;
  readonly provider: ModelProvider;
  readonly modelId: string;
}

/**
 * Resolves `model` for the tenant: a catalog model, or `ft:<base>:<adapter>` of one of the tenant's
 * own adapters in service. Any other adapter name, another tenant's included, answers exactly
 * like a model that does not exist.
 */
export async function resolveChatTarget(
  deps: {
    readonly catalog: ModelCatalog;
    readonly models: ModelProvider;
    readonly adapterModels?: ModelProvider;
    readonly adapters?: TenantAdapters;
    readonly adapterEndpoint?: AdapterEndpointSettings;
  },
  tenant: TenantContext,
  name: string,
): Promise<ChatTarget> {
  const unknown = () => new PlatformError('unknown_model', `chat model '${name}' does not exist`);
  const fineTuned = /^ft:([a-z0-9][a-z0-9.-]*):([a-z0-9-]+)$/.exec(name);
  const model = resolveModel(deps.catalog, fineTuned ? fineTuned[1] : name, 'chat');
  if ('bedrockModelId' in model) {
    if (fineTuned) throw unknown();
    return { model, provider: deps.models, modelId: bedrockModelIdFor(tenant, model) };
  }
  const { adapterModels, adapterEndpoint } = deps;
  if (!adapterModels || !adapterEndpoint) throw unknown();
  if (!fineTuned) return { model, provider: adapterModels, modelId: baseComponentFor(adapterEndpoint, tenant.tier) };
  const adapter = await deps.adapters?.get(tenant, fineTuned[2]);
  if (adapter?.status !== 'InService') throw unknown();
  // Metered and reported under the adapter's own name, priced as its base model.
  return { model: { ...model, name }, provider: adapterModels, modelId: adapter.componentName };
}

/** The public name of the catalog's adapter base model, if the endpoint is configured. */
export function adapterBaseModelName(catalog: ModelCatalog): string | undefined {
  return Object.entries(catalog).find(([, entry]) => 'adapterBaseModel' in entry)?.[0];
}

/** The base component a tier's adapters run on: its own key's, else the first. */
function baseComponentFor(endpoint: AdapterEndpointSettings, tier: string): string {
  const [first] = Object.values(endpoint.baseComponents);
  return endpoint.baseComponents[tier] ?? first;
}

function requireEndpoint(endpoint: AdapterEndpointSettings | undefined): AdapterEndpointSettings {
  if (!endpoint) {
    throw new PlatformError('conflict', 'this deployment has no adapter endpoint: deploy with adapterInstanceType');
  }
  return endpoint;
}

/**
 * `GET /v1/models`, OpenAI's `list` of `model` objects: the catalog's models, and the caller's own
 * adapters in service, by the name it calls them with; nothing of any other tenant.
 */
export function modelList(catalog: ModelCatalog, adapters: readonly AdapterRecord[]) {
  const base = adapterBaseModelName(catalog);
  const created = (iso: string) => Math.floor(Date.parse(iso) / 1000);
  return {
    object: 'list' as const,
    data: [
      ...Object.keys(catalog).map((id) => ({ id, object: 'model' as const, created: 0, owned_by: 'platform' })),
      ...(base === undefined
        ? []
        : adapters
            .filter((adapter) => adapter.status === 'InService')
            .map((adapter) => ({
              id: adapterModelName(base, adapter.name),
              object: 'model' as const,
              created: created(adapter.createdAt),
              owned_by: 'tenant',
            }))),
    ],
  };
}
