import { type AdapterDeps, removeAllAdapters } from './adapters';
import { PlatformError } from './errors';
import { assertLegal, changeTenant, PLACEMENT_STEPS, type PlacementStep, placementFor, readTenant } from './lifecycle';
import type {
  BudgetAlertMarks,
  DocumentStore,
  IngestQueue,
  PlacementWorkflow,
  TenantPartitions,
  TenantRegistry,
  TenantTable,
  VectorIndex,
} from './ports';
import { deleteAllPrompts } from './prompts';
import { copyChunks } from './reindex';
import { type VectorStores, withCurrentPlacement } from './retrieval';
import { actingFor, type TenantContext, type TenantPlacement, type TenantRecord } from './tenant';

/** Who the move acts as, in what it writes for the tenant. */
const PLACEMENT_ACTOR = 'platform:placement';

/**
 * Moving a tenant from the pool to a silo stack of its own, as a durable workflow of idempotent
 * steps (Step Functions on AWS, the local runner in local mode), each reporting on the tenant's
 * pool record: requested → deploying → migrating (the pool stops serving the tenant, then waits
 * until no call it took can still write) → switching (data copied) → cleaning (the pool's record
 * points at the silo) → complete (the pool's copy deleted). A failure before the switch leaves the
 * tenant served from the pool, as it was.
 */
export interface PlacementDeps {
  /** The pool's registry: the record every step reports on. */
  readonly registry: TenantRegistry;
  readonly now: () => number;
  /** The authorizer cache TTL plus the longest a handler or worker can run (as for offboarding). */
  readonly drainMs: number;
}

/** One plane's stores, as a move reads them (the pool) or writes them (the silo). */
export interface PlaneStores {
  readonly registry: TenantRegistry;
  readonly partitions: TenantPartitions;
  readonly vectors: VectorIndex;
  readonly documents: Pick<DocumentStore, 'listJobs'>;
  /** The silo's queue gets the ingest jobs the pool had not done: their items came with the documents. */
  readonly queue: IngestQueue;
  /** Budget thresholds announced: the silo goes on from them, announcing none twice. */
  readonly budgetAlertMarks: BudgetAlertMarks;
}

/** The data tables a move copies, item by item, and the name each count is reported under. */
export const COPIED_TABLES: Readonly<Record<TenantTable, string>> = {
  ledger: 'ledger_items',
  audit: 'audit_records',
  documents: 'documents',
};

const iso = (ms: number) => new Date(ms).toISOString();

/** A workflow step that lost a race to another write of the record reads it again, this many times. */
const STEP_RETRIES = 3;

/**
 * Asks for the tenant's move to its silo (onboarding with `placement: "silo"`, or a promotion) and
 * starts the workflow. Asking again while a move runs changes nothing; after a failure it retries.
 */
export async function requestSilo(
  deps: Pick<PlacementDeps, 'registry' | 'now'> & { readonly workflow: PlacementWorkflow },
  tenantId: string,
): Promise<TenantRecord> {
  const requested = await changeTenant(deps.registry, tenantId, (tenant) => {
    assertLegal(tenant, 'request_silo', undefined);
    if (tenant.tier !== 'enterprise') {
      throw new PlatformError('conflict', `only enterprise tenants get a silo: '${tenantId}' is ${tenant.tier}`);
    }
    const current = tenant.placement;
    if (current && current.desired === 'silo' && !['requested', 'failed'].includes(current.status)) return tenant;
    return {
      ...tenant,
      placement: { current: 'pool', desired: 'silo', status: 'requested', migrated: {}, updatedAt: iso(deps.now()) },
    };
  });
  // Started after the record says `requested`, so a start that fails is healed by asking again; a
  // move under way (deploying, migrating...) is not started twice.
  if (requested.placement?.status === 'requested') await deps.workflow.start({ tenantId });
  return requested;
}

/** The workflow's first step: the silo stack is being deployed; the tenant is still served from the pool. */
export async function markDeploying(deps: Pick<PlacementDeps, 'registry' | 'now'>, tenantId: string) {
  return advance(deps, tenantId, 'deploy', (placement) => ({
    ...placement,
    status: 'deploying',
    error: undefined,
  }));
}

/**
 * The silo answers at `siloUrl`: the pool stops serving the tenant (its authorizer denies it with
 * a "retry shortly"), and the copy may start once no call the pool took can still write.
 */
export async function freezeForMigration(
  deps: PlacementDeps,
  tenantId: string,
  silo: { readonly siloUrl: string; readonly siloResources?: string },
) {
  return advance(deps, tenantId, 'freeze', (placement) =>
    placement.status === 'migrating'
      ? placement
      : {
          ...placement,
          // Only these two: the step's input carries other fields (its step name, the tenant id).
          siloUrl: silo.siloUrl,
          ...(silo.siloResources !== undefined && { siloResources: silo.siloResources }),
          status: 'migrating',
          drainUntil: iso(deps.now() + deps.drainMs),
        },
  );
}

/**
 * Copies everything the pool holds for the tenant into the silo: its record (served there from
 * now on) and API keys, its ledger, audit and document items as stored, and its chunks, reindexed
 * into the silo's index. Every write is an overwrite, so a rerun after a crash copies again, harmlessly.
 */
export async function migrateTenantData(
  deps: PlacementDeps & {
    readonly source: PlaneStores;
    readonly target: PlaneStores;
    /** Where each tier's chunks live in the silo: the tenant's placement there. */
    readonly vectorStores: VectorStores;
  },
  tenantId: string,
): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'copy');
  if (placement.status === PLACEMENT_STEPS.copy.to) return tenant;
  if (deps.now() < Date.parse(placement.drainUntil ?? '')) {
    throw new PlatformError('conflict', `the pool may still write for '${tenantId}' until ${placement.drainUntil}`);
  }
  const { siloRecord, keys } = await copyRecordAndKeys(deps, tenant);
  await deps.target.vectors.ensureTenantIndex(siloRecord);
  const prompts = await deps.source.registry.listPrompts(tenantId);
  for (const prompt of prompts) await deps.target.registry.putPrompt(tenantId, prompt);

  const migrated: Record<string, number> = { api_keys: keys, prompts: prompts.length };
  for (const [table, name] of Object.entries(COPIED_TABLES) as [TenantTable, string][]) {
    migrated[name] = 0;
    let cursor: string | undefined;
    do {
      const page = await deps.source.partitions.read(tenantId, table, cursor);
      await deps.target.partitions.write(tenantId, table, page.items);
      migrated[name] += page.items.length;
      cursor = page.nextCursor;
    } while (cursor);
  }
  migrated.queued_jobs = await requeueJobs(deps.target, actingFor(siloRecord, PLACEMENT_ACTOR));
  migrated.chunks = await copyChunks(
    deps.source.vectors,
    actingFor(tenant, PLACEMENT_ACTOR),
    deps.target.vectors,
    actingFor(siloRecord, PLACEMENT_ACTOR),
  );
  const marks = await deps.source.budgetAlertMarks.marked(tenantId);
  for (const mark of marks) await deps.target.budgetAlertMarks.mark(tenantId, mark.month, mark.thresholdPercent);
  migrated.budget_alert_marks = marks.length;

  const copied = await advance(deps, tenantId, 'copy', (current) => ({ ...current, status: 'switching', migrated }));
  // Keys revoked and a suspension while the copy ran were written at the version the advance
  // replaced, and none is legal after it: carried over now, the silo has the tenant's last word.
  await copyRecordAndKeys(deps, copied);
  return copied;
}

/** The silo's record of the tenant (served there, once switched) and its API keys, as the pool holds them now. */
async function copyRecordAndKeys(
  deps: { readonly source: PlaneStores; readonly target: PlaneStores; readonly vectorStores: VectorStores },
  tenant: TenantRecord,
): Promise<{ siloRecord: TenantRecord; keys: number }> {
  const placement = tenant.placement as TenantPlacement;
  const siloRecord: TenantRecord = {
    ...tenant,
    placements: withCurrentPlacement({ ...tenant, placements: [] }, deps.vectorStores),
    placement: { ...placement, current: 'silo', status: 'complete', drainUntil: undefined },
  };
  await upsertTenant(deps.target.registry, siloRecord);
  const keys = await deps.source.registry.listApiKeys(tenant.tenantId);
  for (const key of keys) await deps.target.registry.putApiKey(key);
  return { siloRecord, keys: keys.length };
}

/** The pool's record now points at the silo: its authorizer sends the tenant's callers there. */
export async function switchToSilo(deps: Pick<PlacementDeps, 'registry' | 'now'>, tenantId: string) {
  return advance(deps, tenantId, 'switch', (placement) => ({
    ...placement,
    current: 'silo',
    status: 'cleaning',
  }));
}

/**
 * Deletes the pool's copy of the tenant's data, with the stores' offboarding deletes. The record
 * and the API keys stay: they are how the pool tells the tenant's callers where to go.
 */
export async function cleanPoolCopy(
  deps: Pick<PlacementDeps, 'registry' | 'now'> & { readonly pool: PoolPurge },
  tenantId: string,
): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'clean');
  if (placement.status === PLACEMENT_STEPS.clean.to) return tenant;
  // Adapters are loaded on the pool's GPU endpoint: unloaded here, added again at the silo's.
  await removeAllAdapters(deps.pool.adapterStore, tenantId);
  // Templates were copied to the silo's registry: the silo's operator API manages them from now on.
  await deleteAllPrompts(deps.pool.adapterStore.registry, tenantId);
  await deps.pool.vectors.deleteTenant(tenant);
  await deps.pool.documents.deleteAll(tenantId);
  await deps.pool.audit.deleteAll(tenantId);
  await deps.pool.ledger.deleteAll(tenantId);
  return advance(deps, tenantId, 'clean', (current) => ({ ...current, status: 'complete' }));
}

/** What the pool deletes once the silo serves the tenant. */
export interface PoolPurge {
  readonly adapterStore: Pick<AdapterDeps, 'registry' | 'host'>;
  readonly vectors: Pick<VectorIndex, 'deleteTenant'>;
  readonly documents: { deleteAll(tenantId: string): Promise<number> };
  readonly audit: { deleteAll(tenantId: string): Promise<number> };
  readonly ledger: { deleteAll(tenantId: string): Promise<number> };
}

/**
 * Records a failed step. Before the switch the tenant goes back to being served from the pool,
 * whose data was never touched; after it, the error is kept and the cleanup is what a retry redoes.
 */
export async function failPlacement(deps: Pick<PlacementDeps, 'registry' | 'now'>, tenantId: string, error: string) {
  return changeTenant(
    deps.registry,
    tenantId,
    (tenant) =>
      tenant.placement
        ? {
            ...tenant,
            placement: {
              ...tenant.placement,
              status: tenant.placement.current === 'pool' ? 'failed' : tenant.placement.status,
              drainUntil: undefined,
              error: error.slice(0, 1000),
              updatedAt: iso(deps.now()),
            },
          }
        : tenant,
    STEP_RETRIES,
  );
}

/** Queues again, in the silo, every ingest job whose item was copied: the pool's worker leaves them to it. */
async function requeueJobs(target: PlaneStores, tenant: TenantContext): Promise<number> {
  let queued = 0;
  let cursor: string | undefined;
  do {
    const page = await target.documents.listJobs(tenant, cursor);
    if (page.jobs.length > 0) await target.queue.enqueue(page.jobs);
    queued += page.jobs.length;
    cursor = page.nextCursor;
  } while (cursor);
  return queued;
}

/** The silo's record of the tenant: written over whatever version a rerun finds there. */
async function upsertTenant(registry: TenantRegistry, record: TenantRecord): Promise<void> {
  const existing = await registry.getTenant(record.tenantId);
  if (existing) await registry.updateTenant({ ...record, version: existing.version });
  else await registry.createTenant(record);
}

/** One step of the move: applied to the record as read now, conditional on its version, read again if it lost a race. */
function advance(
  deps: Pick<PlacementDeps, 'registry' | 'now'>,
  tenantId: string,
  step: PlacementStep,
  next: (placement: TenantPlacement) => TenantPlacement,
): Promise<TenantRecord> {
  return changeTenant(
    deps.registry,
    tenantId,
    (tenant) => ({ ...tenant, placement: { ...next(placementFor(tenant, step)), updatedAt: iso(deps.now()) } }),
    STEP_RETRIES,
  );
}
