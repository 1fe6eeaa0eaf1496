import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TenantLimits } from '../contract/tenancy';
import { shardCount } from '../lambdas/core/ledger-shards';
import type { Ledger, LedgerScope } from '../lambdas/core/ports';
import type { TenantContext } from '../lambdas/core/tenant';
import { platformConfig } from '../lib/config';
import type { KeyCapacity } from '../local/partition-capacity';
import { startLocalPlatform } from '../local/platform';
import { registerTenant } from '../test/support/platform';
import { printTable } from './chat';
import { PRICES } from './pricing';

const MODELS = ['nova-micro', 'nova-lite', 'titan-embed-text-v2'];
const DAY_MS = 86_400_000;
const CONCURRENCY = 32;
const HOT_CALLS = Number(process.env.BENCH_LEDGER_HOT_CALLS ?? 3_000);
const SMALL_TENANTS = Number(process.env.BENCH_LEDGER_TENANTS ?? 1_000);
const SMALL_TENANT_CALLS = 10;

const HOT: TenantLimits = {
  requestsPerMinute: 180_000,
  tokensPerMinute: 1e9,
  monthlyTokens: 1e12,
  monthlyBudgetUsd: 1e6,
};
const STANDARD: TenantLimits = {
  requestsPerMinute: 600,
  tokensPerMinute: 200_000,
  monthlyTokens: 50_000_000,
  monthlyBudgetUsd: 200,
};

function tenant(tenantId: string, limits: TenantLimits): TenantContext {
  return {
    tenantId,
    tier: 'enterprise',
    principal: { type: 'api_key', id: 'bench' },
    limits,
    auditPrompts: false,
    placements: [],
  };
}

let sequence = 0;
/** One metered call: reserve, then settle (or leave in flight); its latency, or its refusal. */
async function call(ledger: Ledger, who: TenantContext, model: string, nowMs: number, settle = true) {
  const started = performance.now();
  try {
    const reservation = await ledger.reserve(who, {
      requestId: `bench-${sequence++}`,
      model,
      estimate: { tokens: 600, costNanoUsd: 70_000 },
      nowMs,
    });
    if (settle) await ledger.settle(reservation, { inputTokens: 40, outputTokens: 60, costNanoUsd: 9_800 });
    return { admitted: true, ms: performance.now() - started };
  } catch (error) {
    if ((error as { status?: number }).status !== 429) throw error;
    return { admitted: false, ms: performance.now() - started };
  }
}

/** A call of a key with limits of its own: reserved and settled on the tenant's ledger, then on the key's. */
async function scopedCall(ledger: Ledger, who: TenantContext, scope: LedgerScope, model: string, nowMs: number) {
  const started = performance.now();
  const request = { requestId: `bench-${sequence++}`, model, estimate: { tokens: 600, costNanoUsd: 70_000 }, nowMs };
  const usage = { inputTokens: 40, outputTokens: 60, costNanoUsd: 9_800 };
  const reservation = await ledger.reserve(who, request);
  const held = await ledger.reserveScope(who, scope, request);
  await ledger.settle(reservation, usage);
  await ledger.settle(held, usage);
  return { admitted: true, ms: performance.now() - started };
}

/** Runs `calls` with `CONCURRENCY` in flight at once. */
async function pool<T>(calls: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < calls.length) {
        const index = next++;
        results[index] = await calls[index]();
      }
    }),
  );
  return results;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/**
 * `npm run bench -- ledger`: the production ledger (tenant-scoped sessions, transactions) against
 * the local DynamoDB front, which enforces DynamoDB's per-partition-key limits (1,000 write and
 * 3,000 read units a second) on a simulated clock and counts the capacity each request consumes,
 * per partition key, from what DynamoDB reports. Each scenario runs within one simulated second
 * (or minute, for the tenant at its limit), so its calls are what one second would carry.
 */
export async function benchLedger(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-ledger-'));
  const monthStart = Date.UTC(2026, 0, 1, 12);
  let nowMs = monthStart;
  /** A call made at `at` on the simulated clock (which the front's per-second limits follow too). */
  const callAt =
    (at: number, ...args: Parameters<typeof call>) =>
    () => {
      nowMs = Math.max(nowMs, at);
      return call(...args);
    };
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config: platformConfig(),
    now: () => nowMs,
  });
  try {
    const { ledger } = platform.deps;
    /** Units on each of these tenants' ledger keys, as a map of key to units. */
    const unitsOf = (tenantIds: readonly string[]) => {
      const prefixes = tenantIds.map((id) => `ledger/TENANT#${id}`);
      const keys = new Map<string, KeyCapacity>();
      for (const [key, units] of platform.dynamodbCapacity.totals) {
        if (prefixes.some((prefix) => key === prefix || key.startsWith(`${prefix}#`))) keys.set(key, { ...units });
      }
      return keys;
    };
    const consumedSince = (before: Map<string, KeyCapacity>, tenantIds: readonly string[]) => {
      const after = unitsOf(tenantIds);
      return [...after].map(([key, units]) => ({
        write: units.writeUnits - (before.get(key)?.writeUnits ?? 0),
        read: units.readUnits - (before.get(key)?.readUnits ?? 0),
      }));
    };
    const rows: string[][] = [];
    /** Write units and admitted calls over every scenario, for the average. */
    const overall = { write: 0, admitted: 0 };
    /** Runs one scenario's calls and adds its row; returns the hottest key's units per admitted call. */
    const scenario = async (
      name: string,
      tenantIds: string[],
      calls: (() => ReturnType<typeof call>)[],
      seconds: number,
      /** Counted in the average line: a tenant's calls alone (a scoped call's extra writes are shown apart). */
      inAverage = true,
    ) => {
      const before = unitsOf(tenantIds);
      const outcomes = await pool(calls);
      const admitted = outcomes.filter((o) => o.admitted).length;
      const perKey = consumedSince(before, tenantIds);
      const total = perKey.reduce((sum, k) => ({ write: sum.write + k.write, read: sum.read + k.read }), {
        write: 0,
        read: 0,
      });
      const hottest = {
        write: Math.max(...perKey.map((k) => k.write)) / admitted,
        read: Math.max(...perKey.map((k) => k.read)) / admitted,
      };
      const per = { write: total.write / admitted, read: total.read / admitted };
      if (inAverage) {
        overall.write += total.write;
        overall.admitted += admitted;
      }
      rows.push([
        name,
        String(Math.round(admitted / seconds)),
        String(outcomes.length - admitted),
        percentile(
          outcomes.map((o) => o.ms),
          50,
        ).toFixed(1),
        percentile(
          outcomes.map((o) => o.ms),
          99,
        ).toFixed(1),
        per.write.toFixed(2),
        per.read.toFixed(2),
        hottest.write.toFixed(3),
        hottest.read.toFixed(3),
        (per.write * PRICES.dynamodbUsdPerMillionWriteUnits + per.read * PRICES.dynamodbUsdPerMillionReadUnits).toFixed(
          2,
        ),
      ]);
      return { hottest, per };
    };

    // One hot tenant: 3,000 calls within one second, against the per-key limits.
    const hot = tenant('hot-co', HOT);
    const small = Array.from({ length: SMALL_TENANTS }, (_, i) => tenant(`small-${i}`, STANDARD));
    const capped = tenant('capped-co', STANDARD);
    const fresh = tenant('day-one-co', STANDARD);
    const busy = tenant('day-thirty-one-co', STANDARD);
    // The local STS gives sessions only to tenants the registry holds.
    for (const t of [hot, ...small, capped, fresh, busy]) await registerTenant(platform, t);
    const hotRun = await scenario(
      `one hot tenant (${shardCount(HOT)} shards), ${HOT_CALLS} calls in 1 s`,
      ['hot-co'],
      Array.from({ length: HOT_CALLS }, (_, i) => () => call(ledger, hot, MODELS[i % 3], nowMs)),
      1,
    );

    // 1,000 tenants at 10 calls a second each, the next second.
    nowMs += 1000;
    await scenario(
      `${SMALL_TENANTS} tenants at ${SMALL_TENANT_CALLS} calls/s`,
      small.map((t) => t.tenantId),
      // Each tenant's calls spread over the second, as ten a second are: interleaved with the others'.
      Array.from({ length: SMALL_TENANT_CALLS }, (_, i) =>
        small.map((t) => () => call(ledger, t, MODELS[i % 3], nowMs)),
      ).flat(),
      1,
    );

    // A tenant at its limit: 900 calls in a minute against 600 a minute.
    nowMs += 60_000;
    const minuteStart = nowMs - (nowMs % 60_000);
    await scenario(
      'a tenant at its limits (600 req, 200k tokens a minute), 900 calls in 1 min',
      ['capped-co'],
      Array.from({ length: 900 }, (_, i) =>
        callAt(minuteStart + i * 50, ledger, capped, MODELS[i % 3], minuteStart + i * 50),
      ),
      60,
    );

    // Day 1 and day 31 of a month: the same calls, a fresh tenant and one with a month of history.
    const month = Date.UTC(2026, 2, 1, 12);
    nowMs = month;
    const dayOne = await scenario(
      'day 1, nothing in flight',
      ['day-one-co'],
      Array.from({ length: 100 }, (_, i) => callAt(month + i * 100, ledger, fresh, MODELS[i % 3], month + i * 100)),
      1,
    );
    for (let day = 0; day < 30; day++) {
      nowMs = month + day * DAY_MS;
      for (const model of MODELS) await call(ledger, busy, model, nowMs);
    }
    nowMs = month + 30 * DAY_MS;
    for (let i = 0; i < 128; i++) {
      nowMs += 100;
      await call(ledger, busy, MODELS[i % 3], nowMs, false);
    }
    const lastDayStart = nowMs + 60_000;
    const lastDay = await scenario(
      'day 31, 3 models daily, 128 in flight',
      ['day-thirty-one-co'],
      Array.from({ length: 100 }, (_, i) =>
        callAt(lastDayStart + i * 100, ledger, busy, MODELS[i % 3], lastDayStart + i * 100),
      ),
      1,
    );

    // A key with limits of its own: each call admitted and settled on the tenant's ledger and the key's.
    const scoped = tenant('scoped-co', STANDARD);
    await registerTenant(platform, scoped);
    const key = { kind: 'key' as const, id: 'bench-key', limits: STANDARD };
    const keyStart = nowMs + 60_000;
    const scopedRun = await scenario(
      'a key with limits of its own, 100 calls (tenant and key)',
      ['scoped-co'],
      Array.from({ length: 100 }, (_, i) => async () => {
        nowMs = Math.max(nowMs, keyStart + i * 100);
        return scopedCall(ledger, scoped, key, MODELS[i % 3], nowMs);
      }),
      1,
      false,
    );

    printTable(
      [
        'scenario',
        'admitted/s',
        'refused',
        'p50 ms',
        'p99 ms',
        'WRU/call',
        'RRU/call',
        'hottest key WRU/call',
        'hottest key RRU/call',
        '$ per million calls',
      ],
      rows,
    );
    const { hottest } = hotRun;
    const ceiling = Math.floor(
      Math.min(1000 / hottest.write, hottest.read > 0 ? 3000 / hottest.read : Number.POSITIVE_INFINITY),
    );
    console.log(
      `\nsingle-tenant ceiling: ${ceiling} calls/s (hottest partition key: ${hottest.write.toFixed(3)} WRU and ${hottest.read.toFixed(3)} RRU per admitted call)`,
    );
    console.log(
      `write units per admitted call: ${(overall.write / overall.admitted).toFixed(2)} on average over every scenario (${overall.admitted} admitted calls), day 1 ${dayOne.per.write.toFixed(2)}, day 31 ${lastDay.per.write.toFixed(2)}`,
    );
    console.log(
      `write units per call of a key with limits of its own: ${scopedRun.per.write.toFixed(2)} (the tenant's and the key's ledgers)`,
    );
    console.log(
      '\nUnits as the local front counts them from DynamoDB-reported consumed capacity (dynalite; transactions at twice the units of each item; a write refused by its condition at one unit), per partition key, with the per-key limits enforced on the simulated clock. Latencies are wall-clock on this machine against dynalite, not DynamoDB. Cancelled transactions (a refused try) are not counted.',
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
