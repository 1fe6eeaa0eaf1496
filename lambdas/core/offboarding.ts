import { removeAllAdapters } from './adapters';
import { PlatformError } from './errors';
import { assertLegal, changeTenant, readTenant, siloMayExist } from './lifecycle';
import type {
  AdapterHost,
  AuditLog,
  DocumentStore,
  FileStore,
  InferenceProfiles,
  Ledger,
  ResponseCache,
  ResponseStore,
  SessionStore,
  TenantRegistry,
  VectorIndex,
} from './ports';
import { deleteAllPrompts } from './prompts';
import type { TenantRecord } from './tenant';

/**
 * Offboarding as a durable workflow of idempotent steps (Step Functions on AWS, the local runner
 * in local mode): begin (the tenant stops being served), wait until `drainUntil`, purge every store,
 * tombstone. Progress lives on the tenant record, so a crashed step resumes and a repeated one is
 * harmless. The tombstone stays: a tenant id is never onboarded again, so nothing cached or queued
 * for the old tenant can ever reach a new one.
 */
export interface OffboardingDeps {
  readonly registry: TenantRegistry;
  readonly ledger: Pick<Ledger, 'deleteAll'>;
  readonly audit: Pick<AuditLog, 'deleteAll'>;
  readonly documents: Pick<DocumentStore, 'deleteAll'>;
  /** The tenant's uploaded files (batches' input and output). */
  readonly files: Pick<FileStore, 'deleteAll'>;
  readonly sessions: Pick<SessionStore, 'deleteAll'>;
  readonly cache: Pick<ResponseCache, 'deleteAll'>;
  readonly responses: Pick<ResponseStore, 'deleteAll'>;
  readonly vectors: Pick<VectorIndex, 'deleteTenant'>;
  /** The tenant's Bedrock inference profiles, if it was given any. */
  readonly inferenceProfiles: Pick<InferenceProfiles, 'deleteAll'>;
  /** The tenant's adapters: their records, and SageMaker where they are loaded (a silo's own, for a silo tenant). */
  readonly adapterStore: { readonly registry: TenantRegistry; readonly host: AdapterHost };
  readonly now: () => number;
  /**
   * The authorizer cache TTL plus the longest a handler or worker can run: after this, no credential
   * cached before the tenant left can be used, and no call it started can still write.
   */
  readonly drainMs: number;
}

/** Every store a tenant can have data in, purged in this order. */
export const TENANT_STORES = [
  'adapters',
  'prompts',
  'sessions',
  'cache_entries',
  'stored_responses',
  'chunks',
  'documents',
  'audit_records',
  'ledger_items',
  'files',
  'api_keys',
  'inference_profiles',
] as const;
type TenantStore = (typeof TENANT_STORES)[number];

const iso = (ms: number) => new Date(ms).toISOString();

/** A workflow step that lost a race to another write of the record reads it again, this many times. */
const STEP_RETRIES = 3;

/**
 * Stops the tenant's calls and fixes when its data may go (and whether a silo stack is to be
 * decommissioned: at any moment of a move, the move then failing at its next step), conditional on the record as read (a
 * racing change answers 409). Joining an offboarding under way returns it as it is.
 */
export async function beginOffboarding(
  deps: Pick<OffboardingDeps, 'registry' | 'now' | 'drainMs'>,
  tenantId: string,
): Promise<TenantRecord> {
  return changeTenant(deps.registry, tenantId, (tenant) => {
    assertLegal(tenant, 'offboard', undefined);
    if (tenant.offboarding) return tenant;
    const now = deps.now();
    return {
      ...tenant,
      status: 'offboarding',
      // Decided once: a move it ends fails meanwhile, and with it what the record says of the silo.
      offboarding: {
        requestedAt: iso(now),
        drainUntil: iso(now + deps.drainMs),
        deleted: {},
        silo: siloMayExist(tenant),
      },
    };
  });
}

/**
 * Deletes the tenant's data store by store, recording each count on the pool's record; a rerun skips
 * the stores already done. A silo tenant's silo is purged first (`plane: 'silo'`, its counts recorded
 * as `silo_<store>`), then the pool, which holds its copy still when offboarding ended a move before
 * its cleanup.
 */
export async function purgeTenantData(
  deps: OffboardingDeps,
  tenantId: string,
  plane: 'pool' | 'silo' = 'pool',
): Promise<TenantRecord> {
  const countedAs = (store: TenantStore) => (plane === 'pool' ? store : `silo_${store}`);
  let tenant = await readTenant(deps.registry, tenantId);
  const progress = leavingProgress(tenant, 'purge');
  if (deps.now() < Date.parse(progress.drainUntil)) {
    throw new PlatformError('conflict', `tenant data may be deleted from ${progress.drainUntil}`);
  }
  const purge: Record<TenantStore, () => Promise<number>> = {
    adapters: () => removeAllAdapters(deps.adapterStore, tenantId),
    // In the registry of the plane that serves the tenant, as its adapters.
    prompts: () => deleteAllPrompts(deps.adapterStore.registry, tenantId),
    // Before documents: they share its partition, and each store counts only its own.
    sessions: () => deps.sessions.deleteAll(tenantId),
    cache_entries: () => deps.cache.deleteAll(tenantId),
    stored_responses: () => deps.responses.deleteAll(tenantId),
    chunks: () => deps.vectors.deleteTenant(tenant),
    documents: () => deps.documents.deleteAll(tenantId),
    audit_records: () => deps.audit.deleteAll(tenantId),
    ledger_items: () => deps.ledger.deleteAll(tenantId),
    files: () => deps.files.deleteAll(tenantId),
    // The plane's own registry, as its templates: the pool's record keeps the progress.
    api_keys: () => deps.adapterStore.registry.deleteApiKeys(tenantId),
    // Its own, and those a move made in another region (`targetInferenceProfiles`) before it ended.
    inference_profiles: () =>
      deps.inferenceProfiles.deleteAll([
        ...new Set([
          ...Object.values(tenant.inferenceProfiles ?? {}),
          ...Object.values(tenant.placement?.targetInferenceProfiles ?? {}),
        ]),
      ]),
  };
  for (const store of TENANT_STORES) {
    if (countedAs(store) in progress.deleted) continue;
    const count = await purge[store]();
    tenant = await changeTenant(
      deps.registry,
      tenantId,
      (current) => {
        const leaving = leavingProgress(current, 'purge');
        return {
          ...current,
          offboarding: { ...leaving, deleted: { ...leaving.deleted, [countedAs(store)]: count } },
        };
      },
      STEP_RETRIES,
    );
  }
  return tenant;
}

/** The last step: the record becomes a tombstone that keeps the id taken and the counts of what was deleted. */
export async function tombstoneTenant(
  deps: Pick<OffboardingDeps, 'registry' | 'now'>,
  tenantId: string,
): Promise<TenantRecord> {
  return changeTenant(
    deps.registry,
    tenantId,
    (tenant) => {
      const progress = leavingProgress(tenant, 'tombstone');
      if (tenant.status === 'offboarded') return tenant;
      const pending = TENANT_STORES.filter((store) => !(store in progress.deleted));
      if (pending.length > 0) throw new PlatformError('conflict', `stores not purged yet: ${pending.join(', ')}`);
      return { ...tenant, status: 'offboarded', offboarding: { ...progress, completedAt: iso(deps.now()) } };
    },
    STEP_RETRIES,
  );
}

/** The offboarding's progress, if `step` may run on the tenant now. */
function leavingProgress(tenant: TenantRecord, step: 'purge' | 'tombstone') {
  assertLegal(tenant, step, undefined);
  return tenant.offboarding as NonNullable<TenantRecord['offboarding']>;
}
