import { createHash } from 'node:crypto';
import { LONGEST_HANDLER_TIMEOUT_SECONDS } from '../../contract/lambda';
import type { TenantLimits } from '../../contract/tenancy';
import { PlatformError } from './errors';
import {
  admissionThresholds,
  budgetNanoUsd,
  type Estimate,
  minuteWindow,
  monthKey,
  refusal,
  secondsUntilNextMinute,
} from './limits';
import type { Reservation } from './ports';
import { type TenantContext, tenantKey } from './tenant';

/**
 * The sharded ledger's arithmetic, apart from DynamoDB. A tenant's admission state is split over
 * `n` shards, each on its own partition key so that each gets DynamoDB's own 1,000 write units a
 * second. A shard holds its share of the per-minute limits (fixed sub-limits that sum to the
 * limit) and a lease of the month's tokens and budget, carved from the tenant's month grant: what
 * every shard admits comes out of its lease, and the grant never exceeds the monthly limits, so
 * no month is over-admitted whatever the number of shards.
 */

/**
 * Write units one admitted call puts on its shard's partition key: the reserve is one conditional
 * update of the shard item (1), the settle a transaction of that item alone (2, idempotent by its
 * client token). A call held by a record (below) costs 10.
 */
export const WRITE_UNITS_PER_CALL = 3;
/** A shard is planned at half of DynamoDB's 1,000 write units a second per partition key. */
const SHARD_WRITE_UNITS_PER_SECOND = 500;
/** A shard's share of tokens per minute must hold the largest single call (a 200k context). */
const MIN_SHARD_TOKENS_PER_MINUTE = 200_000;
/** Enough for 3,200 calls a second; the refused path reads every shard in one BatchGetItem (100 keys). */
export const MAX_SHARDS = 64;
/** Each lease is this fraction of the month's limits (or what the call needs, if more). */
const LEASES_PER_SHARD_AND_MONTH = 16;
/** Reads and steps of the refused path before a request whose state keeps moving is told to retry. */
const MAX_ADMISSION_ROUNDS = 6;

/**
 * Calls in flight are held in their shard item by epoch, not one record each: three slots, the
 * current epoch's, the last one's (calls that may still run) and one whose calls have all ended.
 * A slot sums the estimates its epoch's calls hold; a settle or release takes its call's share
 * out, and a slot two epochs old that still holds anything holds what crashed calls left: it is
 * released whole. An epoch outlasts the longest call (`HOLD_EPOCH_MS`), so the item's size never
 * depends on how many calls run.
 */
export const HOLD_SLOTS = 3;

/** What one slot of a shard holds: the sums of its epoch's calls not yet settled or released. */
export interface SlotHold {
  readonly slot: number;
  readonly epoch: number;
  readonly requests: number;
  readonly tokens: number;
  readonly costNanoUsd: number;
}

/**
 * How long an epoch lasts: longer than any call may run (the longest handler's timeout, 300 s) with a
 * minute to spare for clocks that differ between functions. Fixed, not configured: every plane a
 * tenant's items pass through (a pool, a silo, functions of two deployments) must count epochs alike.
 */
export const HOLD_EPOCH_MS = (LONGEST_HANDLER_TIMEOUT_SECONDS + 60) * 1000;

/** The epoch a call reserved at `nowMs` is held in. */
export function holdEpoch(nowMs: number): number {
  return Math.floor(nowMs / HOLD_EPOCH_MS);
}

export function slotOf(epoch: number): number {
  return epoch % HOLD_SLOTS;
}

const holdsNothing = (hold: SlotHold) => hold.requests === 0 && hold.tokens === 0 && hold.costNanoUsd === 0;

/** Held by calls that can no longer be running: they crashed before settling. */
export function isStale(hold: SlotHold, epoch: number): boolean {
  return hold.epoch <= epoch - 2 && !holdsNothing(hold);
}

/** The epoch's slot on this shard can take a call: unused, already this epoch's, or emptied. */
function slotFree(shard: ShardState, epoch: number): boolean {
  const hold = shard.holds.find((h) => h.slot === slotOf(epoch));
  return !hold || hold.epoch === epoch || holdsNothing(hold);
}

/** The partition key of a tenant's ledger shard: shard 0 is the tenant's own `TENANT#<id>`. */
export function shardPartition(tenantId: string, shard: number): string {
  return shard === 0 ? tenantKey(tenantId) : `${tenantKey(tenantId)}#S${shard}`;
}

/** Every partition key a tenant's ledger may use, whatever its limits were: what a move or an offboarding covers. */
export function ledgerPartitions(tenantId: string): string[] {
  return Array.from({ length: MAX_SHARDS }, (_, shard) => shardPartition(tenantId, shard));
}

/** A refusal that says nothing about the limits: the ledger moved while this call was admitted. */
export function retryShortly(): PlatformError {
  return new PlatformError('rate_limited', 'too many concurrent requests, retry shortly', { retryAfterSeconds: 1 });
}

/** How many shards a tenant with these limits writes to: one for all but the busiest tenants. */
export function shardCount(limits: TenantLimits): number {
  const byRate = Math.ceil(((limits.requestsPerMinute / 60) * WRITE_UNITS_PER_CALL) / SHARD_WRITE_UNITS_PER_SECOND);
  const byTokens = Math.floor(limits.tokensPerMinute / MIN_SHARD_TOKENS_PER_MINUTE);
  return Math.max(1, Math.min(MAX_SHARDS, byRate, byTokens));
}

/** Shard `shard`'s share of a per-minute limit: shares differ by at most one and sum to the limit. */
export function shareOf(limit: number, shards: number, shard: number): number {
  return Math.floor(limit / shards) + (shard < limit % shards ? 1 : 0);
}

/** The monthly limits a lease was granted under: a lease from other limits is returned, then granted anew. */
export interface LeaseTerms {
  readonly monthlyTokens: number;
  readonly budgetNanoUsd: number;
}

export function leaseTerms(limits: TenantLimits): LeaseTerms {
  return { monthlyTokens: limits.monthlyTokens, budgetNanoUsd: budgetNanoUsd(limits) };
}

/** One shard's admission state for the month, as the ledger read it. */
export interface ShardState {
  readonly shard: number;
  /** The minute window its counters are for; -1 before its first call. */
  readonly window: number;
  readonly windowRequests: number;
  readonly windowTokens: number;
  /** What is left of its lease (negative when calls used more than they reserved). */
  readonly leaseTokens: number;
  readonly leaseCostNanoUsd: number;
  /** Absent before its first lease this month. */
  readonly terms?: LeaseTerms;
  /** Reservations held by a record, admitted on this shard and not yet settled or released. */
  readonly open: number;
  /** Its slots that hold or held calls (`HOLD_SLOTS`). */
  readonly holds: readonly SlotHold[];
}

/** What the tenant's month has handed out in leases, net of leases returned. */
export interface MonthGrant {
  readonly tokens: number;
  readonly costNanoUsd: number;
}

export type AdmissionStep =
  /**
   * Admit on this shard: it has room in its window share and its lease. Held by a record when the
   * call asked for its own hold, or when the epoch's slot still holds calls crashed long ago that
   * cannot be released yet (a move's copy, not caught up).
   */
  | { readonly kind: 'reserve'; readonly shard: number; readonly byRecord: boolean }
  /** Carve this much from the month's grant into the shard's lease, then admit there. */
  | { readonly kind: 'lease'; readonly shard: number; readonly tokens: number; readonly costNanoUsd: number }
  /** Give these shards' leases back to the month: granted under other limits, or stranded where no call fits. */
  | { readonly kind: 'return-leases'; readonly shards: readonly number[] }
  /** Release what calls that crashed before settling hold: stale slots, and records when the month needs them. */
  | { readonly kind: 'release-abandoned' }
  | { readonly kind: 'refuse'; readonly error: PlatformError };

/**
 * The next step towards admitting a call of `estimate`, given every shard's state and the month's
 * grant. A refusal means no shard can take the call now; what is refused before the limit itself
 * is reached is bounded by the sub-limits: at most one request and one call's tokens per shard and
 * minute, and nothing of the month (stranded leases are returned first).
 */
export function nextAdmissionStep(input: {
  limits: TenantLimits;
  estimate: Estimate;
  shards: readonly ShardState[];
  /** Shards past the count the limits give now (they were lowered) that took a lease this month. */
  retired?: readonly ShardState[];
  grant: MonthGrant;
  nowMs: number;
  /** The shard this request goes to when it can: spreading requests evenly over shards is what keeps each key cool. */
  home: number;
  /** Abandoned reservations were released during this admission already. */
  releasedAbandoned: boolean;
  /** The epoch the call is held in. */
  epoch: number;
  /** The call asked for its own hold (a queued job): held by a record. */
  byRecord: boolean;
  /** Held to the minute's limits too; false: to the month's alone (a batch admitted whole, by a record). */
  perMinute: boolean;
}): AdmissionStep {
  const { limits, estimate, shards, grant, nowMs, epoch, perMinute } = input;
  const retired = input.retired ?? [];
  if (!input.releasedAbandoned && [...shards, ...retired].some((s) => s.holds.some((hold) => isStale(hold, epoch)))) {
    return { kind: 'release-abandoned' };
  }
  // A retired shard admits nothing more: what its lease holds goes back to the month first.
  const retiredLeases = retired.filter((s) => s.leaseTokens !== 0 || s.leaseCostNanoUsd !== 0);
  if (retiredLeases.length > 0) return { kind: 'return-leases', shards: retiredLeases.map((s) => s.shard) };
  const terms = leaseTerms(limits);
  const window = minuteWindow(nowMs);
  const n = shards.length;

  const stale = shards.filter(
    (s) => s.terms && (s.terms.monthlyTokens !== terms.monthlyTokens || s.terms.budgetNanoUsd !== terms.budgetNanoUsd),
  );
  if (stale.length > 0) return { kind: 'return-leases', shards: stale.map((s) => s.shard) };

  const inWindow = (s: ShardState) => (s.window === window ? s : { ...s, windowRequests: 0, windowTokens: 0 });
  // A call held to the month alone takes no share of any minute: every shard has room for it.
  const hasWindowRoom = (s: ShardState) =>
    !perMinute ||
    (s.window <= window &&
      inWindow(s).windowRequests + 1 <= shareOf(limits.requestsPerMinute, n, s.shard) &&
      inWindow(s).windowTokens + estimate.tokens <= shareOf(limits.tokensPerMinute, n, s.shard));
  const withRoom = shards.filter(hasWindowRoom);
  const leaseFits = (s: ShardState) => s.leaseTokens >= estimate.tokens && s.leaseCostNanoUsd >= estimate.costNanoUsd;
  const grantable = {
    tokens: terms.monthlyTokens - grant.tokens,
    costNanoUsd: terms.budgetNanoUsd - grant.costNanoUsd,
  };
  /** A lease for `target` if the month can grant what the call needs there. */
  const leaseFor = (target: ShardState): AdmissionStep | undefined => {
    const need = {
      tokens: estimate.tokens - target.leaseTokens,
      costNanoUsd: estimate.costNanoUsd - target.leaseCostNanoUsd,
    };
    if (grantable.tokens < need.tokens || grantable.costNanoUsd < need.costNanoUsd) return undefined;
    const portion = (limit: number, needed: number, left: number) =>
      Math.max(0, Math.min(left, Math.max(needed, Math.ceil(limit / (n * LEASES_PER_SHARD_AND_MONTH)))));
    return {
      kind: 'lease',
      shard: target.shard,
      tokens: portion(terms.monthlyTokens, need.tokens, grantable.tokens),
      costNanoUsd: portion(terms.budgetNanoUsd, need.costNanoUsd, grantable.costNanoUsd),
    };
  };

  const reserveOn = (s: ShardState): AdmissionStep => ({
    kind: 'reserve',
    shard: s.shard,
    byRecord: input.byRecord || !slotFree(s, epoch),
  });

  // The home shard first, leased if need be: spreading requests evenly is what keeps each key cool.
  const home = withRoom.find((s) => s.shard === input.home);
  if (home && leaseFits(home)) return reserveOn(home);
  const homeLease = home && leaseFor(home);
  if (homeLease) return homeLease;
  const fitting = withRoom.filter(leaseFits);
  if (fitting.length > 0) return reserveOn(maxBy(fitting, (s) => s.leaseTokens));

  // Used or held this month: everything granted that is no longer in a lease.
  const leased = shards.reduce((sum, s) => sum + s.leaseTokens, 0);
  const leasedCost = shards.reduce((sum, s) => sum + s.leaseCostNanoUsd, 0);
  const counters = {
    window,
    windowRequests: shards.reduce((sum, s) => sum + inWindow(s).windowRequests, 0),
    windowTokens: shards.reduce((sum, s) => sum + inWindow(s).windowTokens, 0),
    monthTokens: grant.tokens - leased,
    monthCostNanoUsd: grant.costNanoUsd - leasedCost,
  };
  const monthFull =
    counters.monthTokens + estimate.tokens > terms.monthlyTokens ||
    counters.monthCostNanoUsd + estimate.costNanoUsd > terms.budgetNanoUsd;
  // Stale slots are released above; records hold until their own expiry, found only by a query.
  const holding = shards.some((s) => s.open > 0);
  if (monthFull && holding && !input.releasedAbandoned) return { kind: 'release-abandoned' };
  const refuse = (): AdmissionStep => ({
    kind: 'refuse',
    error:
      refusal(limits, estimate, counters, nowMs, perMinute) ??
      // A shard is in a later minute than this call's clock: the call is late, not over a limit.
      (shards.some((s) => s.window > window)
        ? retryShortly()
        : // Room is left in total but not in any one shard's share: the next minute has it.
          new PlatformError('rate_limited', `rate limit of ${limits.requestsPerMinute} requests per minute reached`, {
            retryAfterSeconds: secondsUntilNextMinute(nowMs),
          })),
  });
  if (monthFull || withRoom.length === 0) return refuse();

  const target = maxBy(withRoom, (s) => shareOf(limits.requestsPerMinute, n, s.shard) - inWindow(s).windowRequests);
  const lease = leaseFor(target);
  if (lease) return lease;
  // The month has room, but it sits in other shards' leases: give those back to the month.
  const stranded = shards.filter((s) => s.shard !== target.shard && (s.leaseTokens > 0 || s.leaseCostNanoUsd > 0));
  if (stranded.length > 0) return { kind: 'return-leases', shards: stranded.map((s) => s.shard) };
  return refuse();
}

function maxBy<T>(items: readonly T[], score: (item: T) => number): T {
  return items.reduce((best, item) => (score(item) > score(best) ? item : best));
}

/** One call's admission: who, what it may use, when, and where its reservation record lives. */
export interface AdmissionAttempt {
  readonly tenant: TenantContext;
  readonly requestId: string;
  readonly estimate: Estimate;
  readonly nowMs: number;
  readonly month: string;
  readonly shards: number;
  /** The request's home shard, which holds its reservation record wherever its counters go. */
  readonly home: number;
  /** How long the reservation holds before it counts as abandoned, when the call asked (held by a record). */
  readonly holdMs?: number;
  /** The epoch its slot holds it in, if it is not held by a record. */
  readonly epoch: number;
  /** Held to the minute's limits too; false: to the month's alone, by a record, its window counters untouched. */
  readonly perMinute: boolean;
}

/**
 * What admission needs of the ledger's storage: conditional writes and one consistent read, no
 * decisions (those are `admitCall`'s and `nextAdmissionStep`'s).
 */
export interface AdmissionStore {
  /**
   * Takes the call's room on `shard` in one conditional write, held in the epoch's slot or, `byRecord`,
   * by a reservation record; `seen`, the shard as just read, tells which minute's counters it adds to
   * (none when `attempt.perMinute` is false: its lease alone). `exists` when the record is there already.
   */
  tryReserve(
    attempt: AdmissionAttempt,
    shard: number,
    byRecord: boolean,
    seen?: ShardState,
  ): Promise<'admitted' | 'refused' | 'exists'>;
  /**
   * Every shard's state, the month's grant, and where the request was admitted already, if it was
   * (its record, or the slot of the shard whose last reserve it was: `epoch`).
   */
  admissionState(attempt: AdmissionAttempt): Promise<{
    shards: ShardState[];
    /** The shards past `attempt.shards` that took a lease this month (the limits were lowered since). */
    retired: ShardState[];
    grant: MonthGrant;
    admitted?: { shard: number; month: string; epoch?: number };
  }>;
  /**
   * Carves `amount` from the month's grant into the shard's lease, never past the monthly limits, unless
   * the shard's lease holds the call by now (another call leased to it meanwhile).
   */
  lease(attempt: AdmissionAttempt, shard: number, amount: { tokens: number; costNanoUsd: number }): Promise<void>;
  /** Gives a shard's lease back to the month, if the shard is as it was read. */
  returnLease(attempt: AdmissionAttempt, seen: ShardState): Promise<void>;
  /**
   * Releases what crashed calls left: the stale slots of `shards` (as read), and the tenant's records
   * past their hold when any shard holds one.
   */
  releaseAbandoned(attempt: AdmissionAttempt, shards: readonly ShardState[]): Promise<void>;
}

/** Where a request's reservation record lives: from its id alone, so a retried reserve finds it. */
export function homeShard(requestId: string, shards: number): number {
  return createHash('sha256').update(requestId).digest().readUInt32BE(0) % shards;
}

/**
 * Admits a call against every limit of the tenant, or refuses it (429 naming the limit, or "retry
 * shortly" when the ledger keeps moving). The common case is one conditional write on the home
 * shard and no read; only a refused write reads every shard, then takes the next step
 * `nextAdmissionStep` names, a bounded number of rounds. A request admitted already (a retry after
 * a lost answer) gets its reservation back, never a second one.
 */
export async function admitCall(
  store: AdmissionStore,
  tenant: TenantContext,
  request: { requestId: string; model: string; estimate: Estimate; nowMs: number; holdMs?: number; perMinute?: false },
): Promise<Reservation> {
  const { limits } = tenant;
  const { estimate, nowMs, requestId } = request;
  const perMinute = request.perMinute !== false;
  // A slot's hold is released as abandoned two epochs on: only a record holds a batch for as long as it runs.
  if (!perMinute && request.holdMs === undefined) {
    throw new Error('a reservation held to the month alone (perMinute: false) needs its own hold (holdMs)');
  }
  const shards = shardCount(limits);
  // A call no window could ever admit is the caller's 400, before any write.
  admissionThresholds(limits, estimate, perMinute);
  if (perMinute && estimate.tokens > shareOf(limits.tokensPerMinute, shards, shards - 1)) {
    throw new PlatformError('invalid_request', `request needs up to ${estimate.tokens} tokens: lower max_tokens`);
  }
  const month = monthKey(nowMs);
  const home = homeShard(requestId, shards);
  const byRecord = request.holdMs !== undefined;
  const epoch = holdEpoch(nowMs);
  const attempt: AdmissionAttempt = {
    tenant,
    requestId,
    estimate,
    nowMs,
    month,
    shards,
    home,
    holdMs: request.holdMs,
    epoch,
    perMinute,
  };
  const reservationAt = (
    shard: number,
    held: { month: string; epoch?: number } = { month, epoch: byRecord ? undefined : epoch },
  ): Reservation => ({
    tenantId: tenant.tenantId,
    tier: tenant.tier,
    requestId,
    model: request.model,
    month: held.month,
    estimate,
    reservedAtMs: nowMs,
    shard,
    recordShard: home,
    epoch: held.epoch,
  });

  // The common case: the home shard has room, one write, no read.
  if ((await store.tryReserve(attempt, home, byRecord)) === 'admitted') return reservationAt(home);
  let releasedAbandoned = false;
  for (let round = 1; ; round++) {
    const state = await store.admissionState(attempt);
    // An earlier try of this very request got through: also one whose answer timed out or was
    // lost, and whose retry was then refused by the very room it took. Checked once more after
    // the last round, or the caller would be told to retry while its reservation stays held.
    if (state.admitted) return reservationAt(state.admitted.shard, state.admitted);
    if (round > MAX_ADMISSION_ROUNDS) throw retryShortly();
    const step = nextAdmissionStep({
      limits,
      estimate,
      shards: state.shards,
      retired: state.retired,
      grant: state.grant,
      nowMs,
      home,
      releasedAbandoned,
      epoch,
      byRecord,
      perMinute,
    });
    switch (step.kind) {
      case 'reserve':
        if ((await store.tryReserve(attempt, step.shard, step.byRecord, state.shards[step.shard])) === 'admitted') {
          return reservationAt(step.shard, { month, epoch: step.byRecord ? undefined : epoch });
        }
        break;
      case 'lease':
        await store.lease(attempt, step.shard, step);
        break;
      case 'return-leases': {
        const seen = new Map([...state.shards, ...state.retired].map((s) => [s.shard, s]));
        await Promise.all(step.shards.map((shard) => store.returnLease(attempt, seen.get(shard) as ShardState)));
        break;
      }
      case 'release-abandoned':
        await store.releaseAbandoned(attempt, [...state.shards, ...state.retired]);
        releasedAbandoned = true;
        break;
      case 'refuse':
        throw step.error;
    }
  }
}
