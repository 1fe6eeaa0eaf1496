import { bedrockModels, type ModelCatalog } from '../../contract/catalog';
import { planeResourcesSchema } from '../../contract/placement';
import * as z from '../../contract/zod';
import { type AdapterDeps, type AdapterPlane, loadAdaptersAt, removeAllAdapters } from './adapters';
import { BASE_PREFIX, baseFor, baseOf, catchUpWrite, type ItemKey, type SiloWrite, type StoredItem } from './catch-up';
import { PlatformError } from './errors';
import {
  assertLegal,
  changeTenant,
  isPast,
  PLACEMENT_STEPS,
  type PlacementStep,
  placementFor,
  readTenant,
} from './lifecycle';
import type {
  BatchStore,
  BudgetAlertMarks,
  DocumentStore,
  FileStore,
  InferenceProfiles,
  IngestQueue,
  PlacementWorkflow,
  StoredFile,
  TenantPartitions,
  TenantRegistry,
  TenantTable,
  VectorIndex,
  VersionScope,
} from './ports';
import { deleteAllPrompts } from './prompts';
import { copyChunks } from './reindex';
import { type VectorStores, withCurrentPlacement } from './retrieval';
import { actingFor, type TenantContext, type TenantPlacement, type TenantRecord, tenantView } from './tenant';

/** Who the move acts as, in what it writes for the tenant. */
const PLACEMENT_ACTOR = 'platform:placement';

/**
 * Moving a tenant from the pool to a silo stack of its own, as a durable workflow of idempotent
 * steps (Step Functions on AWS, the local runner in local mode), each reporting on the tenant's
 * pool record, the tenant served all along: requested → deploying → copying (the pool serves it
 * while its data is copied, each item with a base, `catch-up.ts`) → copied → catching_up (switched:
 * the pool forwards its calls to the silo; the pool's calls still in flight may write there until
 * `drainUntil`, after which the silo is caught up with them) → cleaning → complete (the pool's copy
 * deleted). A failure before the switch leaves the tenant served from the pool, as it was.
 */
export interface PlacementDeps {
  /** The pool's registry: the record every step reports on. */
  readonly registry: TenantRegistry;
  readonly now: () => number;
  /** The authorizer cache TTL plus the longest a handler or worker can run (as for offboarding). */
  readonly drainMs: number;
}

/** One plane's stores, as a move reads them (the pool) or writes them (the silo). */
export interface PlaneStores extends AdapterPlane {
  readonly registry: TenantRegistry;
  readonly partitions: TenantPartitions;
  readonly vectors: VectorIndex;
  readonly documents: Pick<DocumentStore, 'listJobs' | 'get'>;
  /** The silo's queue gets the ingest jobs the pool had not done: their items came with the documents. */
  readonly queue: IngestQueue;
  /** Budget thresholds announced: the silo goes on from them, announcing none twice. */
  readonly budgetAlertMarks: BudgetAlertMarks;
  /** The tenant's uploaded files (the plane's files bucket), and its running batches' parts beside them. */
  readonly files: FileStore;
  /** The tenant's batches: the silo queues a step of each still running (their records came with the documents). */
  readonly batches: Pick<BatchStore, 'list'>;
  /** The plane's API base URL: where a silo forwards a returned tenant's calls (the pool's). */
  readonly apiUrl: string;
  /** The plane's AWS region: a tenant's inference profiles are called in their own region only. */
  readonly region: string;
  /** The plane's region's Bedrock control plane: the copy makes the tenant's profiles there when its own are elsewhere. */
  readonly inferenceProfiles: InferenceProfiles;
}

/** The data tables a move copies, item by item, and the name each count is reported under. */
export const COPIED_TABLES: Readonly<Record<TenantTable, string>> = {
  audit: 'audit_records',
  documents: 'documents',
  ledger: 'ledger_items',
};

const iso = (ms: number) => new Date(ms).toISOString();

/** A workflow step that lost a race to another write of the record reads it again, this many times. */
const STEP_RETRIES = 3;

/**
 * Asks for the tenant's move to its silo (onboarding with `placement: "silo"`, or a promotion), in
 * `siloRegion` when given (else its configured region), and starts the workflow. Asking again while
 * a move runs changes nothing; after a failure it retries. A tenant moves from one silo to another
 * region's by a return to the pool, then a promotion to the other region.
 */
export async function requestSilo(
  deps: Pick<PlacementDeps, 'registry' | 'now'> & {
    readonly workflow: PlacementWorkflow;
    /** The regions a silo may be placed in (the pipeline may deploy there only). */
    readonly siloRegions?: readonly string[];
  },
  tenantId: string,
  siloRegion?: string,
): Promise<TenantRecord> {
  if (siloRegion !== undefined && !deps.siloRegions?.includes(siloRegion)) {
    throw new PlatformError(
      'invalid_request',
      `region must be one this platform places silos in: ${deps.siloRegions?.join(', ') || 'none'}`,
    );
  }
  let resumed = false;
  const requested = await changeTenant(deps.registry, tenantId, (tenant) => {
    assertLegal(tenant, 'request_silo', undefined);
    if (tenant.tier !== 'enterprise') {
      throw new PlatformError('conflict', `only enterprise tenants get a silo: '${tenantId}' is ${tenant.tier}`);
    }
    const current = tenant.placement;
    if (current?.desired === 'pool' && current.status !== 'complete') {
      throw new PlatformError(
        'conflict',
        `tenant '${tenantId}' is returning to the pool (${current.status}): ask for its return again to finish it first`,
        { current: tenantView(tenant) },
      );
    }
    // Switched, but a later step failed (its error kept): resumed, the workflow passing the steps it took.
    if (current?.current === 'silo') {
      if (current.status === 'complete' || !current.error) return tenant;
      resumed = true;
      return { ...tenant, placement: { ...current, error: undefined, updatedAt: iso(deps.now()) } };
    }
    if (current && current.desired === 'silo' && !['requested', 'failed'].includes(current.status)) return tenant;
    // A silo an earlier try deployed stays where it is: a move elsewhere would leave it behind.
    const deployedIn =
      current?.siloResources && planeResourcesSchema.safeParse(JSON.parse(current.siloResources)).data?.region;
    if (siloRegion && deployedIn && deployedIn !== siloRegion) {
      throw new PlatformError(
        'conflict',
        `tenant '${tenantId}' has a silo in ${deployedIn} from an earlier try: ask again without a region, or offboard it`,
        { current: tenantView(tenant) },
      );
    }
    return {
      ...tenant,
      placement: {
        current: 'pool',
        desired: 'silo',
        status: 'requested',
        // A silo an earlier move deployed stays known until this one's deploy records it again: an
        // offboarding meanwhile decommissions it (`siloMayExist`).
        ...(current?.siloUrl !== undefined && { siloUrl: current.siloUrl }),
        ...(current?.siloResources !== undefined && { siloResources: current.siloResources }),
        ...((siloRegion ?? current?.siloRegion) && { siloRegion: siloRegion ?? current?.siloRegion }),
        migrated: {},
        updatedAt: iso(deps.now()),
      },
    };
  });
  // Started after the record says `requested` (or the move is resumed), so a start that fails is
  // healed by asking again; a move under way (deploying, copying...) is not started twice.
  if (requested.placement?.status === 'requested' || resumed) await deps.workflow.start({ tenantId });
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

/** `POST /admin/tenants/{id}/promote`'s body, optional: the region of the tenant's silo. */
export const promoteRequestSchema = z.strictObject({ region: z.optional(z.string().check(z.maxLength(32))) });

/**
 * Asks for a silo tenant's return to the pool (a downgrade) and starts its workflow: the silo
 * serves it while its data is copied into the pool, the pool serves it from the switch on (the silo
 * forwarding its calls there), the pool is caught up with the silo's late writes, and the silo is
 * decommissioned. Asking again while it runs changes nothing; after a failure it resumes.
 */
export async function requestPool(
  deps: Pick<PlacementDeps, 'registry' | 'now'> & { readonly workflow: PlacementWorkflow },
  tenantId: string,
): Promise<TenantRecord> {
  let start = false;
  const requested = await changeTenant(deps.registry, tenantId, (tenant) => {
    assertLegal(tenant, 'request_pool', undefined);
    const current = tenant.placement as TenantPlacement;
    if (current.desired === 'pool') {
      // Under way: unchanged, but started again while `requested` (a start that may have failed);
      // failed, before or after its switch (its error kept): resumed, passing the steps it took.
      start = current.status === 'requested' || current.error !== undefined;
      return current.error === undefined
        ? tenant
        : { ...tenant, placement: { ...current, error: undefined, updatedAt: iso(deps.now()) } };
    }
    if (current.status !== 'complete') {
      throw new PlatformError(
        'conflict',
        `tenant '${tenantId}' is still moving to its silo (${current.status}): ask for that move again to finish it first`,
        { current: tenantView(tenant) },
      );
    }
    start = true;
    return {
      ...tenant,
      placement: {
        current: 'silo',
        desired: 'pool',
        status: 'requested',
        siloUrl: current.siloUrl,
        siloResources: current.siloResources,
        migrated: {},
        updatedAt: iso(deps.now()),
      },
    };
  });
  if (start) await deps.workflow.start({ tenantId, to: 'pool' });
  return requested;
}

/** A return's first step: its data is being copied into the pool, the silo serving it meanwhile. */
export async function markReturning(deps: Pick<PlacementDeps, 'registry' | 'now'>, tenantId: string) {
  return advance(deps, tenantId, 'return_start', (placement) => ({
    ...placement,
    status: 'copying',
    error: undefined,
  }));
}

/** The silo answers at `siloUrl`: the copy starts, while the pool goes on serving the tenant. */
export async function startCopy(
  deps: Pick<PlacementDeps, 'registry' | 'now'>,
  tenantId: string,
  silo: { readonly siloUrl: string; readonly siloResources?: string },
) {
  return advance(deps, tenantId, 'copy_start', (placement) =>
    placement.status === 'copying'
      ? placement
      : {
          ...placement,
          // Only these two: the step's input carries other fields (its step name, the tenant id).
          siloUrl: silo.siloUrl,
          ...(silo.siloResources !== undefined && { siloResources: silo.siloResources }),
          status: 'copying',
        },
  );
}

/** A move's two planes: the pool's stores, read, and the silo's, written. */
export interface MoveDeps extends PlacementDeps {
  readonly source: PlaneStores;
  readonly target: PlaneStores;
  /** Where each tier's chunks live in the silo: the tenant's placement there. */
  readonly vectorStores: VectorStores;
  /** Waits between looks at the adapters loading at the silo (real time on AWS). */
  readonly sleep: (ms: number) => Promise<void>;
  /** The models a tenant's inference profiles copy. */
  readonly catalog: ModelCatalog;
  /** How long the pool's authorizer caches a decision: a return's silo serves the pool's cached forwards this long. */
  readonly authorizerCacheMs: number;
}

/**
 * Copies everything the source plane holds for the tenant into the target while the source serves
 * it (the pool into its silo, or, returning, the silo into the pool): its record (served there once
 * switched), API keys and templates, its files, its ledger, audit and document items as stored, each with its
 * base (what the catch-up merges the source's later writes against), its chunks, reindexed into the
 * target's index, its budget-alert marks, and its adapters, loaded on the target's GPU endpoint and
 * in service there before the move goes on. Its queued ingest jobs are queued in the target by the
 * catch-up: the source's worker runs them until the switch. Every write is an overwrite, so a rerun
 * after a crash copies again, harmlessly.
 */
export async function copyTenantData(deps: MoveDeps, tenantId: string): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'copy');
  if (isPast(placement, 'copy')) return tenant;
  if (placement.status === PLACEMENT_STEPS.copy.to) {
    // A rerun after the advance: its second copy of the record and keys may be what failed.
    await copyRecordAndKeys(deps, tenant, 'copy');
    return tenant;
  }
  const withProfiles = await makeTargetInferenceProfiles(deps, tenant);
  const { source, target, keys } = await copyRecordAndKeys(deps, withProfiles, 'copy');
  await deps.target.vectors.ensureTenantIndex(target);
  const prompts = await copyPrompts(deps, tenantId);

  const migrated: Record<string, number> = { api_keys: keys, prompts };
  migrated.chunks = await copyChunks(
    deps.source.vectors,
    actingFor(source, PLACEMENT_ACTOR),
    deps.target.vectors,
    actingFor(target, PLACEMENT_ACTOR),
    async () => {
      await assertStillMoving(deps, tenantId, 'copy');
      return true;
    },
  );
  migrated.budget_alert_marks = await copyBudgetAlertMarks(deps, tenantId);
  migrated.files = await syncFiles(deps, actingFor(source, PLACEMENT_ACTOR), actingFor(target, PLACEMENT_ACTOR));
  // In service at the target before the switch: its first adapter call there finds them.
  migrated.adapters = await loadAdaptersAt(deps.source.registry, deps.target, tenant, deps);
  // The ledger is copied by the switch: until then the source admits the tenant's calls against it.
  for (const table of ['audit', 'documents'] as const)
    migrated[COPIED_TABLES[table]] = await copyTable(deps, tenantId, table, 'copy');

  const copied = await advance(deps, tenantId, 'copy', (current) => ({ ...current, status: 'copied', migrated }));
  // Keys revoked and a suspension while the copy ran were written at the version the advance
  // replaced, and none is legal after it: carried over now, the target has the tenant's last word.
  await copyRecordAndKeys(deps, copied, 'copy');
  return copied;
}

/**
 * The tenant's inference profiles in the target's region, when its own are another region's (a
 * silo elsewhere calls its own region's only): made there, and recorded on the move at once, so an
 * offboarding deletes them whatever happens to the move. A rerun finds the ones it made.
 */
async function makeTargetInferenceProfiles(deps: MoveDeps, tenant: TenantRecord): Promise<TenantRecord> {
  const profiles = tenant.inferenceProfiles;
  const elsewhere = Object.values(profiles ?? {}).some((arn) => arn.split(':')[3] !== deps.target.region);
  if (!profiles || !elsewhere || tenant.placement?.targetInferenceProfiles) return tenant;
  const models = bedrockModels(deps.catalog).filter((model) => model.name in profiles);
  const made = await deps.target.inferenceProfiles.createFor(tenant.tenantId, models);
  return advance(deps, tenant.tenantId, 'copy', (placement) => ({ ...placement, targetInferenceProfiles: made }));
}

/**
 * The target's record of the tenant and its API keys, as the source holds them now. Into a silo:
 * the pool's record, as the silo serves it once switched, and its keys. Into the pool (a return):
 * the pool's record is the move's own, so it takes what the silo managed (tier, status, limits,
 * settings), its placement and version its own; a suspension made at the pool since `directory`
 * was read (legal once switched) stands, and any suspension there when `suspensionStands` (a switch
 * run again, which cannot tell the pool's own from one the copy took). The keys are carried into
 * the tenant's own list, for the pool's step to adopt (`adoptCarriedKeys`), a key revoked at the
 * pool staying revoked.
 */
async function copyRecordAndKeys(
  deps: Pick<MoveDeps, 'registry' | 'source' | 'target' | 'vectorStores'>,
  directory: TenantRecord,
  step: PlacementStep,
  suspensionStands = false,
): Promise<{ source: TenantRecord; target: TenantRecord; keys: number }> {
  const { tenantId } = directory;
  const placement = directory.placement as TenantPlacement;
  const intoPool = placement.desired === 'pool';
  const source = intoPool ? await readTenant(deps.source.registry, tenantId) : directory;
  const moved = {
    inferenceProfiles: placement.targetInferenceProfiles ?? source.inferenceProfiles,
    placements: withCurrentPlacement({ ...source, placements: [] }, deps.vectorStores),
  };
  const keys = await deps.source.registry.listApiKeys(tenantId);
  if (!intoPool) {
    const target: TenantRecord = {
      ...source,
      ...moved,
      placement: { ...placement, current: 'silo', status: 'complete', drainUntil: undefined },
    };
    await upsertTenant(deps.target.registry, target);
    for (const key of keys) await deps.target.registry.putApiKey(key);
    return { source, target, keys: keys.length };
  }
  const target = await changeTenant(
    deps.registry,
    tenantId,
    (current) => {
      placementFor(current, step);
      const suspendedHere =
        current.status === 'suspended' && (suspensionStands || current.version !== directory.version);
      return {
        ...source,
        ...moved,
        status: suspendedHere ? 'suspended' : source.status,
        version: current.version,
        createdAt: current.createdAt,
        placement: current.placement,
      };
    },
    STEP_RETRIES,
  );
  await deps.target.registry.carryApiKeys(tenantId, keys);
  return { source, target, keys: keys.length };
}

/** The source's templates in the target, those it no longer has deleted there; returns how many. */
async function copyPrompts(deps: Pick<MoveDeps, 'source' | 'target'>, tenantId: string): Promise<number> {
  const prompts = await deps.source.registry.listPrompts(tenantId);
  const kept = new Set(prompts.map((prompt) => prompt.name));
  for (const prompt of prompts) await deps.target.registry.putPrompt(tenantId, prompt);
  for (const stale of await deps.target.registry.listPrompts(tenantId)) {
    if (!kept.has(stale.name)) await deps.target.registry.deletePrompt(tenantId, stale.name);
  }
  return prompts.length;
}

/** Announced budget thresholds: marking is idempotent, so a rerun or the catch-up marks again, harmlessly. */
async function copyBudgetAlertMarks(deps: Pick<MoveDeps, 'source' | 'target'>, tenantId: string): Promise<number> {
  const marks = await deps.source.budgetAlertMarks.marked(tenantId);
  for (const mark of marks) await deps.target.budgetAlertMarks.mark(tenantId, mark.month, mark.thresholdPercent);
  return marks.length;
}

/**
 * Copies the tenant's ledger into the target (each item with its base) and points the pool's record
 * at the target at once: the pool's authorizer forwards the tenant's calls to its silo from now on
 * (or, returning, serves them itself), and the target admits them against the ledger as the source
 * left it. The source's calls in flight (and those admitted on a decision its authorizer cached) may
 * still write until `drainUntil`; the catch-up waits for it. A return's silo still serves until
 * `flipSilo`: its `drainUntil` is first when the pool's cached decisions to forward are gone, and a
 * fresh copy of what the silo manages follows the switch. A rerun after the switch does that again.
 */
export async function switchPlanes(deps: MoveDeps, tenantId: string): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'switch');
  if (isPast(placement, 'switch')) return tenant;
  const intoPool = placement.desired === 'pool';
  let switched = tenant;
  // Whether this run switched the pool's record: a rerun finds it switched, maybe changed at the pool since.
  const advanced = placement.status === 'copied';
  if (advanced) {
    const ledgerItems = await copyTable(deps, tenantId, 'ledger', 'switch');
    switched = await advance(deps, tenantId, 'switch', (current) =>
      current.status === 'copied'
        ? {
            ...current,
            current: current.desired,
            status: 'catching_up',
            // Returning: until the pool's cached decisions to forward to the silo are gone (the
            // silo serves them meanwhile), then `flipSilo` moves it to a drain from its flip.
            drainUntil: iso(deps.now() + (intoPool ? deps.authorizerCacheMs + 1000 : deps.drainMs)),
            migrated: { ...current.migrated, [COPIED_TABLES.ledger]: ledgerItems },
          }
        : current,
    );
  }
  if (!intoPool) {
    await carrySafeChanges(deps, switched);
    return switched;
  }
  // A rerun (after a crash, or resumed) read the pool's record after the switch: a suspension on it
  // may be its operator's (legal from the switch on), and stands over the silo's status.
  await copyRecordAndKeys(deps, switched, 'switch', !advanced);
  await copyPrompts(deps, tenantId);
  return switched;
}

/**
 * A return's second switch, once no decision the pool's authorizer cached before the switch can
 * still forward the tenant's calls to its silo: the silo forwards them to the pool from now on, and
 * refuses changes to it (409); the drain runs from now (the silo served and wrote until now); and
 * what the silo holds is copied as its last word (its record, keys, templates and adapters as
 * changed since; a suspension made at the pool since the switch stands). Before it, the silo had
 * to serve those calls: flipped at the switch, the two planes would have sent them to each other.
 */
export async function flipSilo(deps: MoveDeps, tenantId: string): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'switch');
  if (placement.desired !== 'pool' || placement.current !== 'pool') {
    throw new PlatformError('conflict', `tenant '${tenantId}' is not switched back to the pool`);
  }
  if (isPast(placement, 'switch')) return tenant;
  if (!(deps.now() >= Date.parse(placement.drainUntil ?? ''))) {
    throw new PlatformError(
      'conflict',
      `the pool may still forward '${tenantId}' to its silo until ${placement.drainUntil}`,
    );
  }
  let flipped = tenant;
  if ((await deps.source.registry.getTenant(tenantId))?.placement?.current !== 'pool') {
    flipped = await advance(deps, tenantId, 'switch', (current) => ({
      ...current,
      drainUntil: iso(Math.max(Date.parse(current.drainUntil ?? '') || 0, deps.now() + deps.drainMs)),
    }));
    await changeTenant(
      deps.source.registry,
      tenantId,
      (silo) => ({
        ...silo,
        placement: { ...(silo.placement ?? placement), current: 'pool', poolUrl: deps.target.apiUrl },
      }),
      STEP_RETRIES,
    );
  }
  const { target } = await copyRecordAndKeys(deps, flipped, 'switch', true);
  await copyPrompts(deps, tenantId);
  await loadAdaptersAt(deps.source.registry, deps.target, target, deps);
  return target;
}

/**
 * Keys revoked and a suspension made at the pool while the switch ran (legal until its advance,
 * none after it) reach the silo. Only that direction: the silo manages the tenant from the switch on,
 * and a change made there meanwhile is never undone (a key it revoked stays revoked).
 */
async function carrySafeChanges(deps: Pick<MoveDeps, 'source' | 'target'>, pool: TenantRecord): Promise<void> {
  for (const key of await deps.source.registry.listApiKeys(pool.tenantId)) {
    if (key.status === 'revoked') await deps.target.registry.putApiKey(key);
  }
  if (pool.status !== 'suspended') return;
  await changeTenant(
    deps.target.registry,
    pool.tenantId,
    (silo) => (silo.status === 'active' ? { ...silo, status: 'suspended' } : silo),
    STEP_RETRIES,
  );
}

/**
 * When the switched tenant's drain ends, for the workflow's wait: once the catch-up has run (a
 * resumed move past it), now.
 */
export function drainUntil(record: TenantRecord, now: () => number): string {
  return record.placement?.drainUntil ?? iso(now());
}

/** Copies the tenant's items of `table` into the target as stored, each with its base; returns how many. */
async function copyTable(
  deps: Pick<MoveDeps, 'registry' | 'source' | 'target'>,
  tenantId: string,
  table: TenantTable,
  step: PlacementStep,
) {
  let copied = 0;
  await eachPage(deps.source.partitions, tenantId, table, async (items) => {
    await assertStillMoving(deps, tenantId, step);
    const bases = items.map((item) => baseOf(item, deps.source.partitions.counters(table, item)));
    await deps.target.partitions.write(tenantId, table, [...items, ...bases]);
    copied += items.length;
  });
  return copied;
}

/**
 * Once no call the pool took can still write: merges what the pool wrote for the tenant after the
 * copy into the silo (`catch-up.ts`: counters added, other items the pool changed taken unless the
 * silo changed them since), copies the chunks of the document versions the silo now holds and drops
 * those of versions it no longer holds, queues the ingest jobs that arrived, and drops the bases
 * once the merge is recorded. A rerun merges nothing twice: a counter's base moves on with its merge.
 */
export async function catchUpTenantData(deps: MoveDeps, tenantId: string): Promise<TenantRecord> {
  let tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'catch_up');
  if (placement.status === 'catching_up') {
    // A return's silo serves until it is flipped: its drain starts there.
    if (
      placement.desired === 'pool' &&
      (await deps.source.registry.getTenant(tenantId))?.placement?.current !== 'pool'
    ) {
      throw new PlatformError('conflict', `the silo of '${tenantId}' still serves it: flip it first`);
    }
    // No drain's end (a record that lost it) is no drain over: the pool may still write.
    if (!(deps.now() >= Date.parse(placement.drainUntil ?? ''))) {
      throw new PlatformError('conflict', `the pool may still write for '${tenantId}' until ${placement.drainUntil}`);
    }
    const silo = actingFor((await deps.target.registry.getTenant(tenantId)) ?? tenant, PLACEMENT_ACTOR);
    let caughtUp = 0;
    for (const table of Object.keys(COPIED_TABLES) as TenantTable[])
      caughtUp += await catchUpTable(deps, tenantId, table);
    const held = async (chunk: { documentId: string; version: string }) => {
      await assertStillMoving(deps, tenantId, 'catch_up');
      return (await deps.target.documents.get(silo, chunk.documentId))?.version === chunk.version;
    };
    await copyChunks(deps.source.vectors, actingFor(tenant, PLACEMENT_ACTOR), deps.target.vectors, silo, held);
    await dropChunksNotHeld(deps.target, silo);
    // Queued only now: until the switch the pool's worker ran the tenant's jobs (a job it finished is
    // gone from the silo with the merge), and from it the pool's worker leaves them to the silo.
    const queuedJobs = await requeueJobs(deps.target, silo);
    await copyBudgetAlertMarks(deps, tenantId);
    // The files uploaded at the source since the copy, now that it writes no more.
    await syncFiles(deps, actingFor(tenant, PLACEMENT_ACTOR), silo);
    // Batches still running go on at the silo: their parts so far with them, their next step queued there.
    const queuedBatches = await carryRunningBatches(deps, actingFor(tenant, PLACEMENT_ACTOR), silo);
    tenant = await advance(deps, tenantId, 'catch_up', (current) => ({
      ...current,
      status: 'cleaning',
      drainUntil: undefined,
      migrated: { ...current.migrated, caught_up: caughtUp, queued_jobs: queuedJobs + queuedBatches },
    }));
  }
  for (const table of Object.keys(COPIED_TABLES) as TenantTable[]) {
    await eachPage(
      deps.target.partitions,
      tenantId,
      table,
      (bases) =>
        deps.target.partitions.apply(
          tenantId,
          table,
          bases.map((base) => ({ kind: 'delete', key: base, read: { exists: true } })),
        ),
      BASE_PREFIX,
    );
  }
  return tenant;
}

/**
 * Copies each file of the source the target lacks (same id, name and purpose); returns how many.
 * Safe to repeat. Nothing is deleted at the target: since the switch it serves the tenant, and a
 * file only it holds may be one uploaded there (a file deleted at the source during the drain is
 * back at the target: its deletion is not carried).
 */
async function syncFiles(deps: MoveDeps, source: TenantContext, target: TenantContext): Promise<number> {
  const listAll = async (store: FileStore, tenant: TenantContext) => {
    const files: StoredFile[] = [];
    for (let after: string | undefined, more = true; more; ) {
      const page = await store.list(tenant, { limit: 1_000, after });
      files.push(...page.files);
      more = page.hasMore;
      after = page.files.at(-1)?.id;
    }
    return files;
  };
  const [held, there] = await Promise.all([listAll(deps.source.files, source), listAll(deps.target.files, target)]);
  const thereIds = new Set(there.map((file) => file.id));
  let copied = 0;
  for (const file of held.filter((file) => !thereIds.has(file.id))) {
    const content = await deps.source.files.content(source, file.id);
    // Deleted at the source meanwhile: nothing to copy.
    if (!content) continue;
    await deps.target.files.put(target, { id: file.id, filename: file.filename, purpose: file.purpose }, content);
    copied += 1;
  }
  return copied;
}

/**
 * One table of the catch-up: every item the pool holds or the copy took, merged three ways; returns
 * how many writes. Page by page, with the other sides of each page's items read by key, so a tenant
 * of any size is caught up in bounded memory: first every item the pool holds now, then every item
 * the copy took that the pool no longer holds (its base, with no pool item behind it).
 */
async function catchUpTable(deps: MoveDeps, tenantId: string, table: TenantTable): Promise<number> {
  const { source, target } = deps;
  const keyOf = (item: ItemKey) => `${item.pk}\u0000${item.sk}`;
  const byKey = (items: Record<string, unknown>[]) =>
    new Map((items as StoredItem[]).map((item) => [keyOf(item), item]));
  const baseKey = (key: ItemKey): ItemKey => ({ pk: key.pk, sk: `${BASE_PREFIX}${key.sk}` });
  let written = 0;
  const merge = async (keys: ItemKey[], pool: Map<string, StoredItem>) => {
    const [silo, bases] = await Promise.all([
      target.partitions.get(tenantId, table, keys).then(byKey),
      // Each base under the key of the item it was taken from.
      target.partitions
        .get(tenantId, table, keys.map(baseKey))
        .then((found) => new Map((found as StoredItem[]).map((base) => [keyOf(baseFor(base)), base]))),
    ]);
    const writes: SiloWrite[] = [];
    for (const key of keys) {
      const id = keyOf(key);
      const item = pool.get(id) ?? silo.get(id) ?? (key as StoredItem);
      const write = catchUpWrite(
        key,
        source.partitions.counters(table, item),
        bases.get(id),
        pool.get(id),
        silo.get(id),
      );
      if (write) writes.push(write);
    }
    await assertStillMoving(deps, tenantId, 'catch_up');
    await target.partitions.apply(tenantId, table, writes);
    written += writes.length;
  };
  await eachPage(source.partitions, tenantId, table, async (items) => {
    await merge(
      items.map(({ pk, sk }) => ({ pk, sk })),
      byKey(items),
    );
  });
  await eachPage(
    target.partitions,
    tenantId,
    table,
    async (bases) => {
      const keys = bases.map((base) => baseFor(base));
      const held = byKey(await source.partitions.get(tenantId, table, keys));
      const gone = keys.filter((key) => !held.has(keyOf(key)));
      if (gone.length > 0) await merge(gone, new Map());
    },
    BASE_PREFIX,
  );
  return written;
}

/**
 * Throws (409) once the tenant is offboarding: asked before each batch a copy or catch-up writes, so
 * one that outlives the offboarding's drain (adapters loading, a large tenant) writes nothing after
 * the purge. Into the pool (a return), what it wrote then would outlive the tenant; the purge runs a
 * drain after the offboarding began, and one batch takes seconds.
 */
async function assertStillMoving(deps: Pick<PlacementDeps, 'registry'>, tenantId: string, step: PlacementStep) {
  placementFor(await readTenant(deps.registry, tenantId), step);
}

/** Drops the silo's chunks of document versions it does not hold (a document the pool deleted or replaced after the copy). */
async function dropChunksNotHeld(silo: PlaneStores, tenant: TenantContext): Promise<void> {
  const stale = new Map<string, VersionScope | undefined>();
  let cursor: string | undefined;
  do {
    const page = await silo.vectors.exportChunks(tenant, cursor);
    for (const chunk of page.chunks) {
      if (stale.has(chunk.documentId)) continue;
      const held = await silo.documents.get(tenant, chunk.documentId);
      if (held?.version !== chunk.version) stale.set(chunk.documentId, held && { except: held.version });
    }
    cursor = page.nextCursor;
  } while (cursor);
  for (const [documentId, versions] of stale) await silo.vectors.deleteDocument(tenant, documentId, versions);
}

/** Every page of the tenant's items in `table` (those under `prefix`, when given), in order. */
async function eachPage(
  partitions: TenantPartitions,
  tenantId: string,
  table: TenantTable,
  each: (items: StoredItem[]) => Promise<unknown>,
  prefix?: string,
): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await partitions.read(tenantId, table, cursor, prefix);
    await each(page.items as StoredItem[]);
    cursor = page.nextCursor;
  } while (cursor);
}

/**
 * Deletes the pool's copy of the tenant's data once its silo serves it, with the stores' offboarding
 * deletes, and its profiles of the pool's region once the silo calls its own region's. The record
 * and the API keys stay: they are how the pool tells the tenant's callers where to go.
 */
export async function cleanPoolCopy(
  deps: Pick<PlacementDeps, 'registry' | 'now'> & { readonly pool: PlanePurge },
  tenantId: string,
): Promise<TenantRecord> {
  const tenant = await readTenant(deps.registry, tenantId);
  const placement = placementFor(tenant, 'clean');
  if (placement.status === PLACEMENT_STEPS.clean.to) return tenant;
  const moved = placement.targetInferenceProfiles;
  await deleteTenantCopy(deps.pool, tenant, moved);
  return advance(
    deps,
    tenantId,
    'clean',
    (current) => ({ ...current, status: 'complete', targetInferenceProfiles: undefined }),
    // The profiles the silo calls are the tenant's from now on: what an offboarding deletes.
    moved && { inferenceProfiles: moved },
  );
}

/**
 * Deletes a plane's copy of a moved tenant's data (the pool's after a promotion, the silo's after a
 * return), with the stores' offboarding deletes: its adapters (their components first), templates,
 * chunks, documents, audit and ledger items, files, and, given the profiles the tenant calls now, those of
 * its profiles (`tenant`'s, this plane's record) that are not among them.
 */
export async function deleteTenantCopy(
  plane: PlanePurge,
  tenant: TenantRecord,
  profilesKept?: Readonly<Record<string, string>>,
): Promise<void> {
  const { tenantId } = tenant;
  if (profilesKept) {
    const kept = new Set(Object.values(profilesKept));
    await plane.inferenceProfiles.deleteAll(
      Object.values(tenant.inferenceProfiles ?? {}).filter((arn) => !kept.has(arn)),
    );
  }
  // The copy loaded the tenant's adapters on the target's GPU endpoint: this plane's components go.
  await removeAllAdapters(plane.adapterStore, tenantId);
  // Templates were copied to the target's registry, which manages them from now on.
  await deleteAllPrompts(plane.adapterStore.registry, tenantId);
  await plane.vectors.deleteTenant(tenant);
  await plane.documents.deleteAll(tenantId);
  await plane.audit.deleteAll(tenantId);
  await plane.ledger.deleteAll(tenantId);
  await plane.files.deleteAll(tenantId);
}

/**
 * A return's decommission, before the silo's stack goes: the silo's copy of the tenant deleted, and
 * its profiles the pool does not call (those of the silo's region, when the copy made the pool's own).
 */
export async function deleteSiloCopy(
  deps: Pick<PlacementDeps, 'registry'>,
  silo: PlanePurge,
  tenantId: string,
): Promise<void> {
  const pool = await readTenant(deps.registry, tenantId);
  const placement = placementFor(pool, 'clean');
  if (placement.desired !== 'pool') {
    throw new PlatformError('conflict', `tenant '${tenantId}' is not returning to the pool`);
  }
  const record = await silo.adapterStore.registry.getTenant(tenantId);
  if (record) await deleteTenantCopy(silo, record, pool.inferenceProfiles ?? {});
}

/**
 * The first step of a silo tenant's offboarding: its silo refuses its calls from now on (those made
 * to the silo's own URL too, which the pool's suspension does not reach), rather than after the
 * drain, when the decommission purges it. A silo that never received the tenant has nothing to do.
 */
export async function suspendAtSilo(silo: TenantRegistry, tenantId: string): Promise<boolean> {
  if (!(await silo.getTenant(tenantId))) return false;
  await changeTenant(
    silo,
    tenantId,
    (record) => (record.status === 'active' ? { ...record, status: 'suspended' } : record),
    STEP_RETRIES,
  );
  return true;
}

/**
 * A return's last step, once its silo's copy is deleted and the silo decommissioned: the tenant is a
 * pool tenant again (no silo recorded, so an offboarding decommissions none).
 */
export async function finishReturn(deps: Pick<PlacementDeps, 'registry' | 'now'>, tenantId: string) {
  return advance(deps, tenantId, 'clean', (current) => ({
    ...current,
    status: 'complete',
    siloUrl: undefined,
    siloResources: undefined,
    siloRegion: undefined,
    drainUntil: undefined,
    targetInferenceProfiles: undefined,
  }));
}

/** What a plane deletes of a tenant that moved away from it. */
export interface PlanePurge {
  readonly adapterStore: Pick<AdapterDeps, 'registry' | 'host'>;
  readonly vectors: Pick<VectorIndex, 'deleteTenant'>;
  readonly documents: { deleteAll(tenantId: string): Promise<number> };
  readonly audit: { deleteAll(tenantId: string): Promise<number> };
  readonly ledger: { deleteAll(tenantId: string): Promise<number> };
  readonly files: { deleteAll(tenantId: string): Promise<number> };
  /** The tenant's profiles of the plane's region, once the target calls its own region's. */
  readonly inferenceProfiles: Pick<InferenceProfiles, 'deleteAll'>;
}

/** Whether the move has switched the tenant to where it is going. */
const switched = (placement: TenantPlacement) => placement.current === placement.desired;

/**
 * Records a failed step. Before the switch the tenant goes on being served where it was (the pool,
 * or returning, its silo), whose data was never touched; after it, the error is kept and asking
 * again resumes the move from the step that failed.
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
              status: switched(tenant.placement) ? tenant.placement.status : 'failed',
              // Switched, the drain still bounds when the catch-up may run: a resumed move waits it out.
              drainUntil: switched(tenant.placement) ? tenant.placement.drainUntil : undefined,
              error: error.slice(0, 1000),
              updatedAt: iso(deps.now()),
            },
          }
        : tenant,
    STEP_RETRIES,
  );
}

/**
 * Queues, in the silo, every ingest job whose item it holds: those the pool had not done, and (harmless:
 * a job done is dropped when delivered again) any the silo queued itself since the switch. Returns how many.
 */
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

/**
 * For each batch of the tenant the target holds that has not ended (its record came with the
 * documents, caught up): copies the parts its record lists from the source (the same names: a rerun
 * writes them again), then queues its next step at the target. Returns how many. A Bedrock job running at the
 * move keeps writing to the source's bucket: its lines are reported not run at the target.
 */
async function carryRunningBatches(deps: MoveDeps, source: TenantContext, target: TenantContext): Promise<number> {
  let carried = 0;
  for (let after: string | undefined, more = true; more; ) {
    const page = await deps.target.batches.list(target, { limit: 100, after });
    for (const batch of page.batches) {
      if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) continue;
      for (const section of ['lines', 'records'] as const) {
        const names = batch.parts[section];
        const bodies = await deps.source.files.parts(source, batch.id, section, names);
        for (const [at, name] of names.entries()) {
          await deps.target.files.putPart(target, batch.id, section, name, bodies[at]);
        }
      }
      await deps.target.queue.enqueue([{ kind: 'batch', tenantId: target.tenantId, batchId: batch.id }]);
      carried += 1;
    }
    more = page.hasMore;
    after = page.batches.at(-1)?.id;
  }
  return carried;
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
  record?: Pick<TenantRecord, 'inferenceProfiles'>,
): Promise<TenantRecord> {
  return changeTenant(
    deps.registry,
    tenantId,
    (tenant) => {
      const placement = placementFor(tenant, step);
      return isPast(placement, step)
        ? tenant
        : { ...tenant, ...record, placement: { ...next(placement), updatedAt: iso(deps.now()) } };
    },
    STEP_RETRIES,
  );
}
