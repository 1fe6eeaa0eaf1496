import type { AuditEntry } from './audit';
import { costNanoUsd, type ResolvedModel } from './catalog';
import { PlatformError } from './errors';
import type { ActualUsage, Ledger, MeteringMetrics, ModelUsage, PromptCacheUsage, Reservation } from './ports';
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
    super(failure.code, failure.message);
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
    await settleUses(this.deps, this.reservation, [...this.earlier, { model, usage }], this.options.auditAtSettle);
  }

  /** Ends a call whose last attempt, on `model`, failed with `error`; nothing once it has ended. */
  async failed(error: unknown, model: ResolvedModel = this.model, estimate?: TokenUsage): Promise<void> {
    if (!this.end()) return;
    const usage = this.usedBy(error, estimate);
    const uses = usage ? [...this.earlier, { model, usage }] : this.earlier;
    if (uses.length > 0) await settleUses(this.deps, this.reservation, uses);
    else if (!this.options.retriedWhenRefused) await this.deps.ledger.release(this.reservation);
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
  },
  /** Costly checks (an input guardrail) once the call is admitted: a refusal there releases it, unbilled. */
  admitted?: () => Promise<void>,
): Promise<MeteredCall> {
  // Out of time before the model was asked (retrieval took it all): nothing reserved, nothing billed.
  if (call.signal?.aborted) throw new PlatformError('upstream_timeout', 'no time was left for the model call');
  const reservation = await reserveCall(deps.ledger, tenant, call);
  try {
    await admitted?.();
  } catch (error) {
    await deps.ledger.release(reservation);
    throw error;
  }
  return new MeteredCall(deps, call.model, reservation, { estimate: call.estimate, auditAtSettle: call.auditAtSettle });
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
export function reserveCall(
  ledger: Ledger,
  tenant: TenantContext,
  call: {
    requestId: string;
    model: ResolvedModel;
    estimate: TokenUsage;
    nowMs: number;
    holdMs?: number;
    targets?: readonly ResolvedModel[];
  },
): Promise<Reservation> {
  const { model, estimate } = call;
  const costs = [model, ...(call.targets ?? [])].map((target) =>
    costNanoUsd(target, estimate.inputTokens, estimate.outputTokens),
  );
  return ledger.reserve(tenant, {
    requestId: call.requestId,
    model: model.name,
    estimate: { tokens: estimate.inputTokens + estimate.outputTokens, costNanoUsd: Math.max(...costs) },
    nowMs: call.nowMs,
    holdMs: call.holdMs,
  });
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
  hit: { requestId: string; model: string; costNanoUsd: number; nowMs: number; auditAtSettle?: AuditAtSettle },
): Promise<void> {
  const reservation = await deps.ledger.reserve(tenant, {
    requestId: hit.requestId,
    model: `${hit.model}${CACHED_MODEL_SUFFIX}`,
    estimate: { tokens: 0, costNanoUsd: hit.costNanoUsd },
    nowMs: hit.nowMs,
  });
  await settle(deps, reservation, { inputTokens: 0, outputTokens: 0, costNanoUsd: hit.costNanoUsd }, hit.auditAtSettle);
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
  await settle(deps, reservation, only ? total : { ...total, byModel: parts }, auditAtSettle);
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
