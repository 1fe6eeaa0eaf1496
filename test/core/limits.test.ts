import { tenantLimitsSchema } from '../../contract/tenancy';
import { PlatformError } from '../../lambdas/core/errors';
import {
  admissionThresholds,
  budgetNanoUsd,
  dayKey,
  minuteWindow,
  monthKey,
  refusal,
  secondsUntilNextMinute,
  secondsUntilNextMonth,
} from '../../lambdas/core/limits';

const limits = { requestsPerMinute: 10, tokensPerMinute: 1000, monthlyTokens: 5000, monthlyBudgetUsd: 1 };
const estimate = { tokens: 100, costNanoUsd: 2_000 };
const now = Date.UTC(2026, 10, 24, 12, 30, 15, 500);

describe('admissionThresholds', () => {
  it('leaves room for exactly this request under every limit', () => {
    expect(admissionThresholds(limits, estimate)).toEqual({
      maxWindowRequestsBefore: 9,
      maxWindowTokensBefore: 900,
      maxMonthTokensBefore: 4900,
      maxMonthCostNanoUsdBefore: 1_000_000_000 - 2_000,
    });
  });

  it('refuses a request no window could ever admit', () => {
    expect(() => admissionThresholds(limits, { tokens: 1001, costNanoUsd: 0 })).toThrow(/lower max_tokens/);
    expect(() => admissionThresholds(limits, { tokens: 10, costNanoUsd: 2e9 })).toThrow(/monthly budget/);
  });

  it('holds a request to the month alone to the monthly limits, beyond a minute, and says so', () => {
    expect(admissionThresholds(limits, { tokens: 5000, costNanoUsd: 0 }, false)).toMatchObject({
      maxMonthTokensBefore: 0,
    });
    expect(() => admissionThresholds(limits, { tokens: 5001, costNanoUsd: 0 }, false)).toThrow(
      new PlatformError('invalid_request', 'request needs up to 5001 tokens but your monthly limit is 5000'),
    );
    expect(() => admissionThresholds(limits, { tokens: 10, costNanoUsd: 2e9 }, false)).toThrow(
      new PlatformError('invalid_request', 'request could cost more than your monthly budget'),
    );
  });
});

describe('refusal', () => {
  const counters = {
    window: minuteWindow(now),
    windowRequests: 0,
    windowTokens: 0,
    monthTokens: 0,
    monthCostNanoUsd: 0,
  };

  it.each([
    ['quota_exceeded', { monthTokens: 4901 }, secondsUntilNextMonth(now)],
    ['budget_exceeded', { monthCostNanoUsd: 999_998_001 }, secondsUntilNextMonth(now)],
    ['rate_limited', { windowRequests: 10 }, 45],
    ['tokens_per_minute_exceeded', { windowTokens: 901 }, 45],
  ])('names %s with its Retry-After', (code, over, retryAfter) => {
    const error = refusal(limits, estimate, { ...counters, ...over }, now);
    expect(error).toBeInstanceOf(PlatformError);
    expect(error).toMatchObject({ code, status: 429, retryAfterSeconds: retryAfter });
  });

  it('names no limit when the counters have room (they moved since the refused write)', () => {
    expect(
      refusal(limits, estimate, { ...counters, window: minuteWindow(now) - 1, windowRequests: 99 }, now),
    ).toBeUndefined();
    expect(refusal(limits, estimate, { ...counters, monthTokens: 4900, windowRequests: 9 }, now)).toBeUndefined();
  });

  it('names no limit of the minute for a request held to the month alone', () => {
    expect(
      refusal(limits, estimate, { ...counters, windowRequests: 10, windowTokens: 1000 }, now, false),
    ).toBeUndefined();
    expect(refusal(limits, estimate, { ...counters, monthTokens: 4901 }, now, false)).toMatchObject({
      code: 'quota_exceeded',
    });
  });
});

describe('time keys', () => {
  it('derives UTC windows, months and days', () => {
    expect(monthKey(now)).toBe('2026-11');
    expect(dayKey(now)).toBe('2026-11-24');
    expect(minuteWindow(now + 44_500)).toBe(minuteWindow(now) + 1);
    expect(secondsUntilNextMinute(now)).toBe(45);
    expect(secondsUntilNextMonth(Date.UTC(2026, 11, 31, 23, 59, 59))).toBe(1);
  });
});

describe('tenantLimitsSchema', () => {
  it('keeps budgets small enough to stay exact in nano-dollars', () => {
    expect(tenantLimitsSchema.safeParse({ ...limits, monthlyBudgetUsd: 1_000_000 }).success).toBe(true);
    expect(tenantLimitsSchema.safeParse({ ...limits, monthlyBudgetUsd: 1_000_001 }).success).toBe(false);
    expect(Number.isSafeInteger(budgetNanoUsd({ ...limits, monthlyBudgetUsd: 1_000_000 }))).toBe(true);
  });
});
