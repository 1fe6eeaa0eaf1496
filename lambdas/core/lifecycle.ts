import { PlatformError } from './errors';
import type { TenantRegistry, TenantVersion } from './ports';
import {
  type PlacementStatus,
  placementStatusSchema,
  type TenantPlacement,
  type TenantRecord,
  tenantIdSchema,
  tenantView,
} from './tenant';

/**
 * A tenant's life as one state machine. Its phase, as the plane asking sees it, decides which
 * operations are legal; a move and an offboarding advance through steps whose legal starts are
 * listed here. Every write of the tenant record is conditional on the version it was read at, and
 * every write of what hangs off it (keys, adapters, templates) on that version being current, so
 * two operations racing each other apply one after the other, or the second answers 409 with the
 * tenant as it is now: nothing acknowledged is overwritten.
 */
export type TenantPhase =
  /** Served and managed by this plane. */
  | 'serving'
  /** Its silo is being asked for or deployed: still served and managed here; offboarding it ends the move. */
  | 'preparing_move'
  /**
   * Its data being copied to its silo while the pool serves it: only the safe direction (a key
   * revoked, the tenant suspended), which the copy carries over once it has taken the last changes.
   */
  | 'moving'
  /** Copied, its switch to the silo pending (a build of a minute or two): only the safe direction, which the switch carries over. */
  | 'switching'
  /**
   * Served and managed by its other plane: by its silo (the pool's view, from a promotion's switch
   * on, and until a return's switch), or by the pool (its silo's view, from a return's switch on).
   */
  | 'moved'
  /** Back in the pool, switched: the silo's late writes still caught up and the silo decommissioned; only the safe direction. */
  | 'returning'
  | 'leaving'
  | 'gone';

export type TenantOperation =
  | 'configure'
  /** Suspending, alone: the safe direction, legal during a move too. */
  | 'suspend'
  | 'issue_key'
  | 'revoke_key'
  | 'change_adapters'
  | 'change_prompts'
  | 'request_silo'
  /** A silo tenant's return to the pool (a downgrade). */
  | 'request_pool'
  | 'offboard'
  | 'purge'
  | 'tombstone';

/** The phases in which each operation is legal: the one table of what may happen to a tenant when. */
const LEGAL_IN: Readonly<Record<TenantOperation, readonly TenantPhase[]>> = {
  configure: ['serving', 'preparing_move'],
  suspend: ['serving', 'preparing_move', 'moving', 'switching', 'returning'],
  issue_key: ['serving', 'preparing_move'],
  // A leaving tenant's keys may still be revoked: the safe direction, until the purge deletes them.
  revoke_key: ['serving', 'preparing_move', 'moving', 'switching', 'returning', 'leaving'],
  change_adapters: ['serving', 'preparing_move'],
  change_prompts: ['serving', 'preparing_move'],
  // In `moved`: resuming a move whose step after the switch failed (the catch-up, the cleanup).
  request_silo: ['serving', 'preparing_move', 'moved'],
  // In `returning`: resuming a return whose step after the switch failed.
  request_pool: ['moved', 'returning'],
  // At any moment of a move: the move's next step finds the tenant leaving and fails, and the
  // offboarding purges both planes (`siloMayExist`). Joining one under way (or done) answers it as it is.
  offboard: ['serving', 'preparing_move', 'moving', 'switching', 'moved', 'returning', 'leaving', 'gone'],
  // Rerunning a finished step is harmless: a purge of a tombstone finds every store done.
  purge: ['leaving', 'gone'],
  tombstone: ['leaving', 'gone'],
};

export function phaseOf(tenant: TenantRecord, siloTenantId: string | undefined): TenantPhase {
  if (tenant.status === 'offboarded') return 'gone';
  if (tenant.status === 'offboarding') return 'leaving';
  const placement = tenant.placement;
  // A silo plane serves and manages its one tenant until a return to the pool switches it back.
  if (siloTenantId !== undefined) return placement?.current === 'pool' ? 'moved' : 'serving';
  if (!placement) return 'serving';
  if (placement.desired === 'pool') {
    if (placement.current === 'silo') return 'moved';
    return placement.status === 'complete' ? 'serving' : 'returning';
  }
  if (placement.status === 'requested' || placement.status === 'deploying') return 'preparing_move';
  if (placement.current === 'silo') return 'moved';
  if (placement.status === 'copying') return 'moving';
  if (placement.status === 'copied') return 'switching';
  return 'serving';
}

/** Throws 409, with the tenant as it is, unless `operation` is legal in the tenant's phase. */
export function assertLegal(tenant: TenantRecord, operation: TenantOperation, siloTenantId: string | undefined): void {
  const phase = phaseOf(tenant, siloTenantId);
  if (LEGAL_IN[operation].includes(phase)) return;
  const id = tenant.tenantId;
  const why: Record<TenantPhase, string> = {
    serving: `tenant '${id}' is not being offboarded`,
    preparing_move: `tenant '${id}' is moving to its own stack (${tenant.placement?.status})`,
    moving: `tenant '${id}' is moving to its own stack (${tenant.placement?.status}): only revoking keys and suspending are possible until the move is done`,
    switching: `tenant '${id}' is switching to its own stack: only revoking keys and suspending are possible; try again in a minute`,
    moved:
      siloTenantId === undefined
        ? `tenant '${id}' is managed at its own stack: ${tenant.placement?.siloUrl}`
        : `tenant '${id}' has returned to the pool and is managed there: ${tenant.placement?.poolUrl}`,
    returning: `tenant '${id}' is returning to the pool (${tenant.placement?.status}): only revoking keys and suspending are possible until the move is done`,
    leaving: `tenant '${id}' is offboarding`,
    gone: `tenant '${id}' is offboarded`,
  };
  throw new PlatformError('conflict', why[phase], { current: tenantView(tenant) });
}

/**
 * Whether a silo stack may exist for the tenant, so that its offboarding must decommission one: its
 * move got past `requested` (the deploy may be running still, or have left a stack), or an earlier
 * move left one (a `failed` move whose deploy succeeded: its URL or resources recorded). An
 * offboarding keeps the answer it began with (`offboarding.silo`): the move it ended fails
 * meanwhile, and a repeated start of the workflow must decommission the same silo.
 */
export function siloMayExist(tenant: TenantRecord): boolean {
  if (tenant.offboarding?.silo !== undefined) return tenant.offboarding.silo;
  const placement = tenant.placement;
  if (!placement) return false;
  if (placement.siloUrl !== undefined || placement.siloResources !== undefined) return true;
  // Returned to the pool: its silo was decommissioned by the return.
  if (placement.desired === 'pool' && placement.status === 'complete') return false;
  return placement.status !== 'requested' && placement.status !== 'failed';
}

/** Steps of a move (to a silo, or back to the pool): the statuses each may start from (itself included: a rerun) and where it leads. */
export const PLACEMENT_STEPS = {
  deploy: { from: ['requested', 'failed', 'deploying'], to: 'deploying' },
  copy_start: { from: ['deploying', 'copying'], to: 'copying' },
  // A return to the pool: its silo is there already; a failed one is asked for again.
  return_start: { from: ['requested', 'failed', 'copying'], to: 'copying' },
  copy: { from: ['copying', 'copied'], to: 'copied' },
  switch: { from: ['copied', 'catching_up'], to: 'catching_up' },
  catch_up: { from: ['catching_up', 'cleaning'], to: 'cleaning' },
  clean: { from: ['cleaning', 'complete'], to: 'complete' },
} as const satisfies Record<string, { from: readonly PlacementStatus[]; to: PlacementStatus }>;
export type PlacementStep = keyof typeof PLACEMENT_STEPS;

/** A move's statuses in the order its steps reach them (`failed` apart: a move that failed before the switch). */
const PLACEMENT_ORDER: readonly PlacementStatus[] = placementStatusSchema.options.filter(
  (status) => status !== 'failed',
);

/** Whether the move is past `step` already: a resumed move passes the steps it took. */
export function isPast(placement: TenantPlacement, step: PlacementStep): boolean {
  return PLACEMENT_ORDER.indexOf(placement.status) > PLACEMENT_ORDER.indexOf(PLACEMENT_STEPS[step].to);
}

/**
 * The tenant's move, if `step` may run on it now, or has run (a resumed move passes it); an
 * offboarding tenant's move goes no further.
 */
export function placementFor(tenant: TenantRecord, step: PlacementStep): TenantPlacement {
  const placement = tenant.placement;
  const from: readonly PlacementStatus[] = PLACEMENT_STEPS[step].from;
  if (!placement || !(from.includes(placement.status) || isPast(placement, step)) || tenant.offboarding) {
    throw new PlatformError(
      'conflict',
      `tenant '${tenant.tenantId}' is not at this step of a move (${tenant.offboarding ? tenant.status : (placement?.status ?? 'never asked to move')})`,
      { current: tenantView(tenant) },
    );
  }
  return placement;
}

export async function readTenant(registry: TenantRegistry, tenantId: string): Promise<TenantRecord> {
  const record = tenantIdSchema.safeParse(tenantId).success ? await registry.getTenant(tenantId) : undefined;
  if (!record) throw new PlatformError('not_found', 'no such tenant');
  return record;
}

/**
 * Runs a registry write conditional on the tenant's version (its record, or a key, adapter or
 * template beside it). A write that lost a race answers 409 with the tenant as it is now.
 */
export async function writeIfCurrent<T>(
  registry: TenantRegistry,
  tenant: TenantVersion,
  write: () => Promise<T>,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!(error instanceof PlatformError) || error.code !== 'conflict') throw error;
    const current = await registry.getTenant(tenant.tenantId);
    throw new PlatformError('conflict', `${error.message}: nothing was changed; read the tenant again and retry`, {
      current: current && tenantView(current),
    });
  }
}

/**
 * Reads the tenant, applies `change` and writes the result conditional on the version read. An
 * operator's change that loses a race answers 409; a workflow step passes `retries`, reads again
 * and re-applies (its steps are idempotent and check the state they start from).
 */
export async function changeTenant(
  registry: TenantRegistry,
  tenantId: string,
  change: (current: TenantRecord) => TenantRecord | Promise<TenantRecord>,
  retries = 0,
): Promise<TenantRecord> {
  for (let attempt = 0; ; attempt++) {
    const current = await readTenant(registry, tenantId);
    const changed = await change(current);
    if (changed === current) return current;
    try {
      return await writeIfCurrent(registry, current, () => registry.updateTenant(changed));
    } catch (error) {
      if (attempt >= retries || !(error instanceof PlatformError) || error.code !== 'conflict') throw error;
    }
  }
}
