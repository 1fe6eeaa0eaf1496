import type { TenantLimits } from '../../contract/tenancy';
import { PlatformError } from './errors';

/** What a request is expected to cost, before the model runs. */
export interface Estimate {
  readonly tokens: number;
  readonly costNanoUsd: number;
}

/** Counters of one tenant for the current minute window and month, as the ledger holds them. */
export interface LedgerCounters {
  readonly window: number;
  readonly windowRequests: number;
  readonly windowTokens: number;
  readonly monthTokens: number;
  readonly monthCostNanoUsd: number;
}

/**
 * Thresholds the ledger's conditional write compares against: a counter at or below its threshold
 * still has room for this request. DynamoDB conditions cannot add, so the subtraction happens here.
 */
export interface AdmissionThresholds {
  readonly maxWindowRequestsBefore: number;
  readonly maxWindowTokensBefore: number;
  readonly maxMonthTokensBefore: number;
  readonly maxMonthCostNanoUsdBefore: number;
}

export function budgetNanoUsd(limits: TenantLimits): number {
  return Math.round(limits.monthlyBudgetUsd * 1e9);
}

/**
 * Throws when no window could ever admit the request: retrying would not help. `perMinute` false:
 * the request is held to the month's limits alone (a batch admitted whole), not the minute's.
 */
export function admissionThresholds(limits: TenantLimits, estimate: Estimate, perMinute = true): AdmissionThresholds {
  // A request held to the month alone sums many calls: a lower max_tokens is not what makes it fit.
  const advice = perMinute ? ': lower max_tokens' : '';
  const tokenCeiling = perMinute ? Math.min(limits.tokensPerMinute, limits.monthlyTokens) : limits.monthlyTokens;
  if (estimate.tokens > tokenCeiling) {
    throw new PlatformError(
      'invalid_request',
      `request needs up to ${estimate.tokens} tokens but your ${perMinute ? '' : 'monthly '}limit is ${tokenCeiling}${advice}`,
    );
  }
  if (estimate.costNanoUsd > budgetNanoUsd(limits)) {
    throw new PlatformError('invalid_request', `request could cost more than your monthly budget${advice}`);
  }
  return {
    maxWindowRequestsBefore: limits.requestsPerMinute - 1,
    maxWindowTokensBefore: limits.tokensPerMinute - estimate.tokens,
    maxMonthTokensBefore: limits.monthlyTokens - estimate.tokens,
    maxMonthCostNanoUsdBefore: budgetNanoUsd(limits) - estimate.costNanoUsd,
  };
}

export function minuteWindow(nowMs: number): number {
  return Math.floor(nowMs / 60_000);
}

/** `yyyy-mm` in UTC. */
export function monthKey(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 7);
}

/** `yyyy-mm-dd` in UTC. */
export function dayKey(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10);
}

export function secondsUntilNextMinute(nowMs: number): number {
  return Math.max(1, Math.ceil(((minuteWindow(nowMs) + 1) * 60_000 - nowMs) / 1000));
}

export function startOfNextMonthMs(nowMs: number): number {
  const now = new Date(nowMs);
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
}

export function secondsUntilNextMonth(nowMs: number): number {
  return Math.max(1, Math.ceil((startOfNextMonthMs(nowMs) - nowMs) / 1000));
}

/**
 * Which limit refuses the request, given the counters as they are now; `undefined` when none does
 * (the counters moved since the refused write, so it may be tried again). Month limits come first:
 * waiting a minute does not lift them, so their Retry-After is the honest one. `perMinute` false:
 * the month's limits alone (`admissionThresholds`).
 */
export function refusal(
  limits: TenantLimits,
  estimate: Estimate,
  counters: LedgerCounters,
  nowMs: number,
  perMinute = true,
): PlatformError | undefined {
  const t = admissionThresholds(limits, estimate, perMinute);
  if (counters.monthTokens > t.maxMonthTokensBefore) {
    return new PlatformError('quota_exceeded', `monthly token quota of ${limits.monthlyTokens} reached`, {
      retryAfterSeconds: secondsUntilNextMonth(nowMs),
    });
  }
  if (counters.monthCostNanoUsd > t.maxMonthCostNanoUsdBefore) {
    return new PlatformError('budget_exceeded', `monthly budget of ${limits.monthlyBudgetUsd} USD reached`, {
      retryAfterSeconds: secondsUntilNextMonth(nowMs),
    });
  }
  if (!perMinute) return undefined;
  const sameWindow = counters.window === minuteWindow(nowMs);
  if (sameWindow && counters.windowRequests > t.maxWindowRequestsBefore) {
    return new PlatformError('rate_limited', `rate limit of ${limits.requestsPerMinute} requests per minute reached`, {
      retryAfterSeconds: secondsUntilNextMinute(nowMs),
    });
  }
  if (sameWindow && counters.windowTokens > t.maxWindowTokensBefore) {
    return new PlatformError(
      'tokens_per_minute_exceeded',
      `rate limit of ${limits.tokensPerMinute} tokens per minute reached`,
      { retryAfterSeconds: secondsUntilNextMinute(nowMs) },
    );
  }
  return undefined;
}
