import { LONGEST_HANDLER_TIMEOUT_SECONDS } from '../../contract/lambda';
import {
  HOLD_EPOCH_MS,
  HOLD_SLOTS,
  holdEpoch,
  isStale,
  leaseTerms,
  nextAdmissionStep,
  type ShardState,
  shardCount,
  shareOf,
  slotOf,
} from '../../lambdas/core/ledger-shards';
import { minuteWindow, secondsUntilNextMonth } from '../../lambdas/core/limits';

const now = Date.UTC(2026, 10, 24, 12, 0, 10);
const window = minuteWindow(now);
const limits = { requestsPerMinute: 12_000, tokensPerMinute: 1_000_000, monthlyTokens: 100_000, monthlyBudgetUsd: 1 };
const terms = leaseTerms(limits);
const estimate = { tokens: 100, costNanoUsd: 1000 };

function shard(index: number, state: Partial<ShardState> = {}): ShardState {
  return {
    shard: index,
    window,
    windowRequests: 0,
    windowTokens: 0,
    leaseTokens: 0,
    leaseCostNanoUsd: 0,
    terms,
    open: 0,
    holds: [],
    ...state,
  };
}
const epoch = 100;
const step = (shards: ShardState[], grant = { tokens: 0, costNanoUsd: 0 }, releasedAbandoned = false, home = 0) =>
  nextAdmissionStep({
    limits,
    estimate,
    shards,
    grant,
    nowMs: now,
    home,
    releasedAbandoned,
    epoch,
    byRecord: false,
    perMinute: true,
  });

describe('ledger shards', () => {
  it('gives one shard to all but the busiest tenants, and enough for 3,000 calls a second', () => {
    expect(shardCount({ ...limits, requestsPerMinute: 12_000, tokensPerMinute: 2_000_000 })).toBe(2);
    expect(shardCount({ ...limits, requestsPerMinute: 6_000, tokensPerMinute: 2_000_000 })).toBe(1);
    expect(shardCount({ ...limits, requestsPerMinute: 600, tokensPerMinute: 200_000 })).toBe(1);
    // 3 write units a call, 500 a shard and second: 3,000 calls a second on 18 keys.
    expect(shardCount({ ...limits, requestsPerMinute: 180_000, tokensPerMinute: 1e9 })).toBe(18);
    // Each share must hold a 200k-token call: few tokens per minute keep few shards.
    expect(shardCount({ ...limits, requestsPerMinute: 180_000, tokensPerMinute: 400_000 })).toBe(2);
    expect(shardCount({ ...limits, requestsPerMinute: 1e9, tokensPerMinute: 1e12 })).toBe(64);
  });

  it('splits a per-minute limit into shares that differ by at most one and sum to it', () => {
    for (const [limit, shards] of [
      [10, 3],
      [180_000, 60],
      [7, 8],
    ]) {
      const shares = Array.from({ length: shards }, (_, s) => shareOf(limit, shards, s));
      expect(shares.reduce((a, b) => a + b, 0)).toBe(limit);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
  });

  it('admits on its home shard, leasing to it if need be; elsewhere when the month has nothing left to lease', () => {
    const leased = { leaseTokens: 500, leaseCostNanoUsd: 5000 };
    expect(step([shard(0, leased), shard(1, leased)], undefined, false, 1)).toEqual({
      kind: 'reserve',
      shard: 1,
      byRecord: false,
    });
    expect(step([shard(0), shard(1, leased)])).toMatchObject({ kind: 'lease', shard: 0 });
    const allGranted = { tokens: 100_000, costNanoUsd: 5000 };
    expect(step([shard(0), shard(1, leased)], allGranted)).toEqual({ kind: 'reserve', shard: 1, byRecord: false });
  });

  it('leases to the home shard when it has room in its share, so requests stay spread', () => {
    expect(step([shard(0), shard(1), shard(2)], undefined, false, 2)).toMatchObject({ kind: 'lease', shard: 2 });
  });

  it("leases a sixteenth of the month's share to a shard with room, or what the call needs if more", () => {
    expect(step([shard(0, { terms: undefined }), shard(1)])).toEqual({
      kind: 'lease',
      shard: 0,
      tokens: Math.ceil(100_000 / 32),
      costNanoUsd: Math.ceil(1e9 / 32),
    });
  });

  it('never leases past the month: the last lease is what is left', () => {
    const grant = { tokens: 99_950, costNanoUsd: 0 };
    // 50 tokens are left to grant and the call needs 100: the 80 in shard 1's lease are stranded
    // where no minute share is left, so they are given back first.
    const full = { windowRequests: shareOf(12_000, 2, 1) };
    expect(step([shard(0), shard(1, { ...full, leaseTokens: 80, leaseCostNanoUsd: 10 })], grant)).toEqual({
      kind: 'return-leases',
      shards: [1],
    });
    expect(step([shard(0), shard(1, full)], { tokens: 99_890, costNanoUsd: 0 })).toMatchObject({
      kind: 'lease',
      shard: 0,
      tokens: 110,
    });
  });

  it('gives back leases granted under other limits before anything else', () => {
    const old = { monthlyTokens: 1_000_000, budgetNanoUsd: terms.budgetNanoUsd };
    expect(step([shard(0, { terms: old, leaseTokens: 900 }), shard(1)])).toEqual({
      kind: 'return-leases',
      shards: [0],
    });
  });

  it('refuses a full month with quota_exceeded, after releasing what crashed calls hold', () => {
    const grant = { tokens: 100_000, costNanoUsd: 0 };
    expect(step([shard(0, { open: 3 }), shard(1)], grant)).toEqual({ kind: 'release-abandoned' });
    expect(step([shard(0, { open: 3 }), shard(1)], grant, true)).toMatchObject({
      kind: 'refuse',
      error: { code: 'quota_exceeded' },
    });
  });

  it('refuses when no share of the minute is left, even with room in total: at most one request per shard early', () => {
    // 12,000 a minute over 2 shards: 5,999 + 6,000 used, one request left in total but in no share.
    const shards = [shard(0, { windowRequests: 5_999 }), shard(1, { windowRequests: 6_000 })];
    const tight = [shard(0, { windowRequests: 6_000 }), shard(1, { windowRequests: 6_000 })];
    expect(step(shards)).toMatchObject({ kind: 'lease', shard: 0 });
    expect(step(tight)).toMatchObject({ kind: 'refuse', error: { code: 'rate_limited', retryAfterSeconds: 50 } });
  });

  it('tells a call whose clock is behind a shard to retry, not that a limit was reached', () => {
    const ahead = shard(0, { window: window + 1, windowRequests: 1, leaseTokens: 500, leaseCostNanoUsd: 5000 });
    expect(step([ahead])).toMatchObject({
      kind: 'refuse',
      error: { code: 'rate_limited', message: 'too many concurrent requests, retry shortly' },
    });
  });

  it('counts a shard last seen in an earlier minute as empty', () => {
    const stale = shard(0, { window: window - 1, windowRequests: 6_000, leaseTokens: 500, leaseCostNanoUsd: 5000 });
    expect(step([stale, shard(1, { windowRequests: 6_000 })])).toEqual({ kind: 'reserve', shard: 0, byRecord: false });
  });

  describe('calls held by epoch', () => {
    it('counts epochs longer than any call may run, with a minute to spare for clocks apart', () => {
      expect(HOLD_EPOCH_MS).toBeGreaterThanOrEqual((LONGEST_HANDLER_TIMEOUT_SECONDS + 60) * 1000);
      expect(holdEpoch(HOLD_EPOCH_MS * 7 + 1)).toBe(7);
    });

    const leased = { leaseTokens: 500, leaseCostNanoUsd: 5000 };
    const hold = (slot: number, holdEpoch: number, requests = 1) => ({
      slot,
      epoch: holdEpoch,
      requests,
      tokens: requests * 100,
      costNanoUsd: requests * 1000,
    });

    it("holds a call in its epoch's slot while the slot is that epoch's or empty", () => {
      expect(slotOf(epoch)).toBe(epoch % HOLD_SLOTS);
      const live = [hold(slotOf(epoch), epoch, 4), hold(slotOf(epoch - 1), epoch - 1, 2)];
      expect(step([shard(0, { ...leased, holds: live })])).toEqual({ kind: 'reserve', shard: 0, byRecord: false });
      const emptied = [hold(slotOf(epoch), epoch - HOLD_SLOTS, 0)];
      expect(step([shard(0, { ...leased, holds: emptied })])).toEqual({ kind: 'reserve', shard: 0, byRecord: false });
    });

    it('releases a slot two epochs old that still holds calls: they crashed', () => {
      expect(isStale(hold(0, epoch - 1), epoch)).toBe(false);
      expect(isStale(hold(0, epoch - 2), epoch)).toBe(true);
      expect(isStale(hold(0, epoch - 2, 0), epoch)).toBe(false);
      const crashed = [hold(slotOf(epoch - 2), epoch - 2, 3)];
      expect(step([shard(0, { ...leased, holds: crashed })])).toEqual({ kind: 'release-abandoned' });
    });

    it('holds by a record when the slot cannot be released (a copy not caught up) or the call asked for its own hold', () => {
      const blocked = [hold(slotOf(epoch), epoch - HOLD_SLOTS, 2)];
      expect(step([shard(0, { ...leased, holds: blocked })], undefined, true)).toEqual({
        kind: 'reserve',
        shard: 0,
        byRecord: true,
      });
      expect(
        nextAdmissionStep({
          limits,
          estimate,
          shards: [shard(0, leased)],
          grant: { tokens: 0, costNanoUsd: 0 },
          nowMs: now,
          home: 0,
          releasedAbandoned: false,
          epoch,
          byRecord: true,
          perMinute: true,
        }),
      ).toEqual({ kind: 'reserve', shard: 0, byRecord: true });
    });
  });

  describe('calls held to the month alone (a batch admitted whole)', () => {
    const monthly = { ...limits, monthlyTokens: 10_000_000, monthlyBudgetUsd: 100 };
    const monthlyTerms = leaseTerms(monthly);
    // Five times the tokens a minute allows, half the month.
    const batch = { tokens: 5_000_000, costNanoUsd: 50e9 };
    // Both shares of the minute used up, one shard's window even a minute ahead of this call's clock.
    const full = { windowRequests: 6_000, windowTokens: 500_000, terms: monthlyTerms };
    const shards = [shard(0, { ...full, window: window + 1 }), shard(1, full)];
    const monthStep = (states: ShardState[], grant = { tokens: 0, costNanoUsd: 0 }) =>
      nextAdmissionStep({
        limits: monthly,
        estimate: batch,
        shards: states,
        grant,
        nowMs: now,
        home: 1,
        releasedAbandoned: false,
        epoch,
        byRecord: true,
        perMinute: false,
      });

    it('finds room in every shard whatever its minute, and leases all it needs at once', () => {
      expect(monthStep(shards)).toEqual({ kind: 'lease', shard: 1, tokens: 5_000_000, costNanoUsd: 50e9 });
      const leased = { leaseTokens: 5_000_000, leaseCostNanoUsd: 50e9 };
      expect(monthStep([shards[0], shard(1, { ...full, ...leased })])).toEqual({
        kind: 'reserve',
        shard: 1,
        byRecord: true,
      });
      // Its home's lease cannot be granted (the month is all in leases): the shard a minute ahead takes it.
      const allGranted = { tokens: 10_000_000, costNanoUsd: 100e9 };
      expect(monthStep([shard(0, { ...full, window: window + 1, ...leased }), shards[1]], allGranted)).toEqual({
        kind: 'reserve',
        shard: 0,
        byRecord: true,
      });
    });

    it('is refused by the month alone, until the next month, never by a rate limit', () => {
      const nextMonth = { retryAfterSeconds: secondsUntilNextMonth(now) };
      expect(monthStep(shards, { tokens: 5_000_001, costNanoUsd: 0 })).toMatchObject({
        kind: 'refuse',
        error: { code: 'quota_exceeded', ...nextMonth },
      });
      expect(monthStep(shards, { tokens: 0, costNanoUsd: 50e9 + 1 })).toMatchObject({
        kind: 'refuse',
        error: { code: 'budget_exceeded', ...nextMonth },
      });
    });
  });
});
