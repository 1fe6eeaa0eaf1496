import type { LimitScope } from '../../contract/tenancy';
import type { AuditEntry } from './audit';
import { costNanoUsd, type ResolvedModel } from './catalog';
import { PlatformError } from './errors';
import type {
  ActualUsage,
  Ledger,
  LedgerScope,
  MeteringMetrics,
  ModelUsage,
  PromptCacheUsage,
  Reservation,
} from './ports';
import type { TenantContext } from './tenant';

/** What a call used: every input token (the cached ones named apart too) and its output. */
export interface TokenUsage extends PromptCacheUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** A call that ran and then failed with its usage known (an answer that broke its format, say): billed that usage. */
export class FailedAfterUse extends PlatformError {
  constructor(
    failure: PlatformError,
    readonly usage: TokenUsage,
  ) {
    // Why the provider failed stays readable: a route may move on from it.
    super(failure.code, failure.message, { retryAfterSeconds: failure.retryAfterSeconds, upstream: failure.upstream });
  }
}

/** What metering needs: the ledger, and a place to count what should not happen but may. */
export interface MeteringDeps {
  readonly ledger: Ledger;
  readonly metrics: MeteringMetrics;
}

/** One model call of a request: its id (the ledger's idempotency key) and when it must give up. */
export interface ModelCall {
  readonly requestId: string;
  /** Aborts the provider call before the handler is killed, so the call is settled, never lost. */
  readonly signal?: AbortSignal;
  /**
   * The request's audit record should this call answer it, for its settle to write in the same
   * transaction: one write less per call (the record is written again only if the answer differs).
   */
  readonly auditAtSettle?: AuditAtSettle;
}

/** The audit record of a request answered by a model call, for that call's settle to write. */
export interface AuditAtSettle {
  /** The record, the call having used `usage`. */
  readonly entry: (usage: TokenUsage) => AuditEntry;
  /** Told once the settle has written `entry`: a settle that failed wrote nothing. */
  readonly written: (entry: AuditEntry) => void;
}

/** Room kept after a model call to settle it and answer: a quarter of what is left, at most 5 s. */
const SETTLE_ROOM_MAX_MS = 5000;

/** How long a model call may run when the handler has `remainingMs` left. */
export function modelCallBudgetMs(remainingMs: number): number {
  return Math.max(0, remainingMs - Math.min(SETTLE_ROOM_MAX_MS, Math.floor(remainingMs / 4)));
}

/**
 * Whether a failed model call may have run, and used tokens. The providers report a request they
 * refused before running it (invalid, throttled, unavailable) as `invalid_request` or
 * `upstream_unavailable`; any other failure (a timeout, an abort, a broken or lost answer) may come
 * after the model ran.
 */
export function modelMayHaveRun(error: unknown): boolean {
  return !(
    error instanceof PlatformError &&
    (error.code === 'invalid_request' || error.code === 'upstream_unavailable')
  );
}

/** What one model of a call used, to be billed at that model's price. */
interface ModelUse {
  readonly model: ResolvedModel;
  readonly usage: TokenUsage;
}

/**
 * One admitted model call, settled exactly once however it ends: `finished` with what it used, or
 * `failed` with its error (the reservation released when the model certainly did not run, else
 * billed the usage the failure carries, or the estimate). Buffered, streamed and queued calls all
 * end through it: a model call is billed once, never zero times. A routed call may try several
 * models inside its one reservation: each attempt that may have run is billed with the call's
 * end, as its own model at its own price.
 */
export class MeteredCall {
  private ended = false;
  /** Earlier attempts of a routed call that may have run: billed when the call ends. */
  private readonly earlier: ModelUse[] = [];

  constructor(
    private readonly deps: MeteringDeps,
    readonly model: ResolvedModel,
    readonly reservation: Reservation,
    private readonly options: {
      /** One attempt's estimate, split into input and output; all the reservation's input when not given. */
      estimate?: TokenUsage;
      /**
       * The call will be tried again after a refusal (a queued job, which SQS delivers again): the
       * reservation then stays for that try, which settles it, instead of being released.
       */
      retriedWhenRefused?: boolean;
      /** Written with the settle of a call that finishes. */
      auditAtSettle?: AuditAtSettle;
      /** Its reservations in its scopes (its project's, API key's, end user's), settled and released with the tenant's. */
      scoped?: readonly Reservation[];
    } = {},
  ) {}

  /** An attempt on `model` failed and the call goes on to another: billed with the call's end if it may have run. */
  attemptFailed(error: unknown, model: ResolvedModel, estimate?: TokenUsage): void {
    const usage = this.usedBy(error, estimate);
    if (usage) this.earlier.push({ model, usage });
  }

  /** An attempt on `model` answered, and its answer is not the call's (its content filter stopped it): billed with the call's end. */
  attemptAnswered(usage: TokenUsage, model: ResolvedModel): void {
    this.earlier.push({ model, usage });
  }

  /** Settles what the call used on `model` (with its audit record) and its earlier attempts; nothing once it has ended. */
  async finished(usage: TokenUsage, model: ResolvedModel = this.model): Promise<void> {
    if (!this.end()) return;
    const uses = [...this.earlier, { model, usage }];
    await settleUses(this.deps, this.reservation, uses, this.options.auditAtSettle, this.options.scoped);
  }

  /** Ends a call whose last attempt, on `model`, failed with `error`; nothing once it has ended. */
  async failed(error: unknown, model: ResolvedModel = this.model, estimate?: TokenUsage): Promise<void> {
    if (!this.end()) return;
    const usage = this.usedBy(error, estimate);
    await this.endWith(usage ? [...this.earlier, { model, usage }] : this.earlier);
  }

  /** Ends a routed call whose deadline passed before its next attempt: its earlier attempts billed, nothing more. */
  async endedBeforeAttempt(): Promise<void> {
    if (this.end()) await this.endWith(this.earlier);
  }

  /** Bills `uses` (without an audit record: the call failed), or gives the reservation back when there are none. */
  private async endWith(uses: readonly ModelUse[]): Promise<void> {
    if (uses.length > 0) await settleUses(this.deps, this.reservation, uses, undefined, this.options.scoped);
    else if (!this.options.retriedWhenRefused) await release(this.deps, this.reservation, this.options.scoped);
  }

  /** Runs the model call and ends it by its outcome. */
  async run<R extends TokenUsage>(call: () => Promise<R>): Promise<R> {
    let result: R;
    try {
      result = await call();
    } catch (error) {
      await this.failed(error);
      throw error;
    }
    await this.finished(result);
    return result;
  }

  /** What an attempt that failed with `error` is billed: the usage it carries, its estimate if it may have run, else nothing. */
  private usedBy(error: unknown, estimate?: TokenUsage): TokenUsage | undefined {
    if (error instanceof FailedAfterUse) return error.usage;
    if (!modelMayHaveRun(error)) return undefined;
    return estimate ?? this.options.estimate ?? { inputTokens: this.reservation.estimate.tokens, outputTokens: 0 };
  }

  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    return true;
  }
}

/**
 * Admits a model call: reserves its estimate against every limit of the tenant (429 if one
 * refuses it, and the call never runs), then runs the costly checks that follow admission (an
 * input guardrail), whose refusal releases it.
 */
export async function admitModelCall(
  deps: MeteringDeps,
  tenant: TenantContext,
  call: {
    requestId: string;
    model: ResolvedModel;
    estimate: TokenUsage;
    nowMs: number;
    signal?: AbortSignal;
    auditAtSettle?: AuditAtSettle;
    /** Every model a routed call may try: reserved at the most expensive. */
    targets?: readonly ResolvedModel[];
    /** The end user the request names (OpenAI's `user`): whose limits an API key's call is held to. */
    user?: string;
  },
  /** Costly checks (an input guardrail) once the call is admitted: a refusal there releases it, unbilled. */
  admitted?: () => Promise<void>,
): Promise<MeteredCall> {
  // Out of time before the model was asked (retrieval took it all): nothing reserved, nothing billed.
  if (call.signal?.aborted) throw new PlatformError('upstream_timeout', 'no time was left for the model call');
  const { reservation, scoped } = await reserveInScopes(deps, tenant, reserveRequest(call), call.user);
  try {
    await admitted?.();
  } catch (error) {
    await release(deps, reservation, scoped);
    throw error;
  }
  return new MeteredCall(deps, call.model, reservation, {
    estimate: call.estimate,
    auditAtSettle: call.auditAtSettle,
    scoped,
  });
}

/**
 * The scopes below the tenant whose own limits a call is admitted against: its project's, whenever
 * the caller has one (so usage by project is whole), with the project's limits if the tenant sets
 * any; its API key's, when the key has limits; its end user's, when the tenant gives its end users
 * limits: a JWT's verified subject, else (an API key's caller, a backend serving many users) the
 * request's `user`. A JWT's caller naming another `user` is still its subject, so it cannot step
 * out of its own limits. Each takes the tenant's limits where it sets none of its own.
 */
export function limitScopes(tenant: TenantContext, user: string | undefined): LedgerScope[] {
  const { principal, keyLimits, userLimits, project } = tenant;
  const endUser = principal.type === 'user' ? principal.id : user;
  return [
    ...(project
      ? [{ kind: 'project' as const, id: project, limits: { ...tenant.limits, ...tenant.projectLimits } }]
      : []),
    ...(keyLimits && principal.type === 'api_key'
      ? [{ kind: 'key' as const, id: principal.id, limits: { ...tenant.limits, ...keyLimits } }]
      : []),
    ...(userLimits && endUser
      ? [{ kind: 'user' as const, id: endUser, limits: { ...tenant.limits, ...userLimits } }]
      : []),
  ];
}

/**
 * Reserves a request against the tenant's limits, then each of its scopes' (`limitScopes`): all
 * admit it, or none holds it (a scope's refusal gives back what was reserved before it).
 */
export async function reserveInScopes(
  deps: Pick<MeteringDeps, 'ledger'>,
  tenant: TenantContext,
  request: Parameters<Ledger['reserveScope']>[2],
  user: string | undefined,
): Promise<{ reservation: Reservation; scoped: Reservation[] }> {
  const reservation = await inScope('tenant', () => deps.ledger.reserve(tenant, request));
  const scoped: Reservation[] = [];
  try {
    for (const scope of limitScopes(tenant, user)) {
      scoped.push(await inScope(scope.kind, () => deps.ledger.reserveScope(tenant, scope, request)));
    }
  } catch (error) {
    await release(deps, reservation, scoped);
    throw error;
  }
  return { reservation, scoped };
}

/** A refusal (429) of `scope`'s limits, said so: `scope` in the error, the message naming it. */
async function inScope<T>(scope: LimitScope, reserve: () => Promise<T>): Promise<T> {
  try {
    return await reserve();
  } catch (error) {
    if (!(error instanceof PlatformError) || error.status !== 429) throw error;
    const message = scope === 'tenant' ? error.message : `${SCOPE_NAMES[scope]}: ${error.message}`;
    throw new PlatformError(error.code, message, { retryAfterSeconds: error.retryAfterSeconds, scope });
  }
}

const SCOPE_NAMES = {
  project: "this project's own limit",
  key: "this API key's own limit",
  user: "this end user's own limit",
} as const;

/** Gives a call's reservations back, the tenant's and its scopes' (each tried, whichever fails). */
async function release(
  deps: Pick<MeteringDeps, 'ledger'>,
  reservation: Reservation,
  scoped: readonly Reservation[] = [],
) {
  const released = await Promise.allSettled([reservation, ...scoped].map((held) => deps.ledger.release(held)));
  const failed = released.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs one model call inside the ledger: admitted, run, and settled what it reports it used. */
export async function metered<R extends TokenUsage>(
  deps: MeteringDeps,
  tenant: TenantContext,
  call: Parameters<typeof admitModelCall>[2],
  run: () => Promise<R>,
  admitted?: () => Promise<void>,
): Promise<R> {
  return (await admitModelCall(deps, tenant, call, admitted)).run(run);
}

/** Reserves a model call's estimate against every limit of the tenant (429 when one refuses it). */
export function reserveCall(ledger: Ledger, tenant: TenantContext, call: Parameters<typeof reserveRequest>[0]) {
  return ledger.reserve(tenant, reserveRequest(call));
}

/** What a model call reserves: its estimate's tokens, at the most expensive model it may run. */
function reserveRequest(call: {
  requestId: string;
  model: ResolvedModel;
  estimate: TokenUsage;
  nowMs: number;
  holdMs?: number;
  perMinute?: false;
  targets?: readonly ResolvedModel[];
}) {
  const { model, estimate } = call;
  const costs = [model, ...(call.targets ?? [])].map((target) =>
    costNanoUsd(target, estimate.inputTokens, estimate.outputTokens),
  );
  return {
    requestId: call.requestId,
    model: model.name,
    estimate: { tokens: estimate.inputTokens + estimate.outputTokens, costNanoUsd: Math.max(...costs) },
    nowMs: call.nowMs,
    ...(call.holdMs !== undefined && { holdMs: call.holdMs }),
    ...(call.perMinute === false && { perMinute: call.perMinute }),
  };
}

/** The usage records' model name of answers from the response cache: `<model>:cached`. */
export const CACHED_MODEL_SUFFIX = ':cached';

/**
 * An answer from the tenant's response cache: a request like any other against its limits and
 * budget, at the cache's price and with no model tokens, recorded as `<model>:cached`.
 */
export async function meterCacheHit(
  deps: MeteringDeps,
  tenant: TenantContext,
  hit: {
    requestId: string;
    model: string;
    costNanoUsd: number;
    nowMs: number;
    auditAtSettle?: AuditAtSettle;
    user?: string;
  },
): Promise<void> {
  const request = {
    requestId: hit.requestId,
    model: `${hit.model}${CACHED_MODEL_SUFFIX}`,
    estimate: { tokens: 0, costNanoUsd: hit.costNanoUsd },
    nowMs: hit.nowMs,
  };
  const { reservation, scoped } = await reserveInScopes(deps, tenant, request, hit.user);
  const usage = { inputTokens: 0, outputTokens: 0, costNanoUsd: hit.costNanoUsd };
  await settle(deps, reservation, usage, hit.auditAtSettle);
  await settleScopes(deps, scoped, usage);
}

/**
 * Settles what a call's models used, each at its own price (summed per model when one ran twice),
 * counting any use beyond the reservation (settled all the same).
 */
export async function settleUses(
  deps: MeteringDeps,
  reservation: Reservation,
  uses: readonly ModelUse[],
  auditAtSettle?: AuditAtSettle,
  scoped: readonly Reservation[] = [],
): Promise<void> {
  const byModel = new Map<string, ModelUsage>();
  for (const { model, usage } of uses) {
    const part = byModel.get(model.name);
    const cost = costNanoUsd(model, usage.inputTokens, usage.outputTokens, usage);
    byModel.set(model.name, {
      model: model.name,
      inputTokens: (part?.inputTokens ?? 0) + usage.inputTokens,
      outputTokens: (part?.outputTokens ?? 0) + usage.outputTokens,
      costNanoUsd: (part?.costNanoUsd ?? 0) + cost,
    });
  }
  const parts = [...byModel.values()];
  const sum = (field: 'inputTokens' | 'outputTokens' | 'costNanoUsd') =>
    parts.reduce((total, part) => total + part[field], 0);
  const total = { inputTokens: sum('inputTokens'), outputTokens: sum('outputTokens'), costNanoUsd: sum('costNanoUsd') };
  const overage = total.inputTokens + total.outputTokens - reservation.estimate.tokens;
  if (overage > 0) deps.metrics.reservationOverage(reservation, overage);
  const only = parts.length === 1 && parts[0].model === reservation.model;
  const usage = only ? total : { ...total, byModel: parts };
  await settle(deps, reservation, usage, auditAtSettle);
  await settleScopes(deps, scoped, usage);
}

/**
 * Settles a call's scopes once the tenant's settle has billed it. A scope's settle that fails must
 * not fail the call (its retry would bill it again): its hold is given back as abandoned two epochs
 * on, this call then left out of the scope's count.
 */
async function settleScopes(deps: MeteringDeps, scoped: readonly Reservation[], usage: ActualUsage): Promise<void> {
  await Promise.all(scoped.map((held) => deps.ledger.settle(held, usage).catch(() => undefined)));
}

/** A settled usage by model: its parts, or the whole under the reservation's model. */
export function usageByModel(reservation: Pick<Reservation, 'model'>, usage: ActualUsage): readonly ModelUsage[] {
  const { inputTokens, outputTokens, costNanoUsd } = usage;
  return usage.byModel ?? [{ model: reservation.model, inputTokens, outputTokens, costNanoUsd }];
}

/** Settles a reservation in the ledger (with the request's audit record, if given), then counts what it billed. */
async function settle(
  deps: MeteringDeps,
  reservation: Reservation,
  usage: ActualUsage,
  auditAtSettle?: AuditAtSettle,
): Promise<void> {
  const audit = auditAtSettle?.entry(usage);
  await deps.ledger.settle(reservation, usage, audit);
  if (audit) auditAtSettle?.written(audit);
  deps.metrics.settled(reservation, usage);
}
