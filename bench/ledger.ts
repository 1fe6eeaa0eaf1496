import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ledger } from '../lambdas/core/ports';
import type { TenantContext } from '../lambdas/core/tenant';
import { platformConfig } from '../lib/config';
import { startLocalPlatform } from '../local/platform';
import { printTable } from './chat';

const CALLS = Number(process.env.BENCH_LEDGER_CALLS ?? 100);
const MODELS = ['nova-micro', 'nova-lite', 'titan-embed-text-v2'];
const DAY_MS = 86_400_000;
/** On-demand prices (us-east-1): USD per million write and read request units. */
const USD_PER_MILLION = { write: 0.625, read: 0.125 };

function tenant(tenantId: string): TenantContext {
  return {
    tenantId,
    tier: 'enterprise',
    principal: { type: 'api_key', id: 'bench' },
    limits: { requestsPerMinute: 1e9, tokensPerMinute: 1e12, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 },
    auditPrompts: false,
    placements: [],
  };
}

async function call(ledger: Ledger, who: TenantContext, model: string, nowMs: number, settle = true) {
  const reservation = await ledger.reserve(who, {
    requestId: randomUUID(),
    model,
    estimate: { tokens: 600, costNanoUsd: 70_000 },
    nowMs,
  });
  if (settle) await ledger.settle(reservation, { inputTokens: 40, outputTokens: 60, costNanoUsd: 9_800 });
}

/**
 * `npm run bench -- ledger`: the production ledger (tenant-scoped sessions) against the local
 * DynamoDB front, which counts the capacity each request consumes by DynamoDB's size rules per
 * partition key. Measures write and read units per admitted call (reserve + settle) on a tenant's
 * hottest key on day 1 and on day 31 of a realistic month (3 models used daily, 128 calls in
 * flight), and the single-tenant ceiling that follows from DynamoDB's per-key limits.
 */
export async function benchLedger(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-ledger-'));
  const monthStart = Date.UTC(2026, 0, 1, 12);
  let nowMs = monthStart;
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config: platformConfig(),
    now: () => nowMs,
    // Measuring, not throttling: the per-key limits are what the ceiling is computed against.
    partitionLimits: { writeUnitsPerSecond: Number.POSITIVE_INFINITY, readUnitsPerSecond: Number.POSITIVE_INFINITY },
  });
  try {
    const { ledger } = platform.deps;
    const unitsOf = (tenantId: string) => {
      const totals = platform.dynamodbCapacity.totals.get(`ledger/TENANT#${tenantId}`);
      return { write: totals?.writeUnits ?? 0, read: totals?.readUnits ?? 0 };
    };
    /** `CALLS` admitted calls at `at`; units per call on the tenant's ledger key. */
    const measure = async (who: TenantContext, at: number) => {
      const before = unitsOf(who.tenantId);
      for (let i = 0; i < CALLS; i++) await call(ledger, who, MODELS[i % MODELS.length], at);
      const after = unitsOf(who.tenantId);
      return { write: (after.write - before.write) / CALLS, read: (after.read - before.read) / CALLS };
    };

    const fresh = tenant('day-one-co');
    const dayOne = await measure(fresh, monthStart);

    // A month of history: each model used every day, then 128 calls in flight on day 31.
    const busy = tenant('day-thirty-one-co');
    for (let day = 0; day < 30; day++) {
      for (const model of MODELS) await call(ledger, busy, model, monthStart + day * DAY_MS);
    }
    const dayThirtyOne = monthStart + 30 * DAY_MS;
    nowMs = dayThirtyOne;
    for (let i = 0; i < 128; i++) await call(ledger, busy, MODELS[i % MODELS.length], dayThirtyOne, false);
    const lastDay = await measure(busy, dayThirtyOne);

    const ceiling = (units: { write: number; read: number }) =>
      Math.floor(Math.min(1000 / units.write, units.read > 0 ? 3000 / units.read : Number.POSITIVE_INFINITY));
    const dollars = (units: { write: number; read: number }) =>
      (units.write * USD_PER_MILLION.write + units.read * USD_PER_MILLION.read).toFixed(2);
    const row = (name: string, units: { write: number; read: number }) => [
      name,
      String(CALLS),
      units.write.toFixed(2),
      units.read.toFixed(2),
      String(ceiling(units)),
      dollars(units),
    ];
    printTable(
      ['tenant', 'admitted calls', 'WRU/call', 'RRU/call', 'ceiling calls/s', '$ per million calls'],
      [row('day 1, nothing in flight', dayOne), row('day 31, 3 models daily, 128 in flight', lastDay)],
    );
    const hottest = lastDay.write >= dayOne.write ? lastDay : dayOne;
    console.log(
      `\nsingle-tenant ceiling: ${ceiling(hottest)} calls/s (hottest partition key: ${hottest.write.toFixed(2)} WRU and ${hottest.read.toFixed(2)} RRU per admitted call)`,
    );
    console.log(`write units per admitted call: day 1 ${dayOne.write.toFixed(2)}, day 31 ${lastDay.write.toFixed(2)}`);
    console.log(
      '\nUnits as the local front counts them from DynamoDB-reported consumed capacity (dynalite), per partition key; ceiling = min(1000/WRU, 3000/RRU).',
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
