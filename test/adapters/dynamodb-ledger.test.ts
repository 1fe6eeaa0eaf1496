import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbAuditLog } from '../../lambdas/adapters/dynamodb-audit-log';
import { DynamoDbLedger, DynamoDbLedgerReports } from '../../lambdas/adapters/dynamodb-ledger';
import { batchWrite } from '../../lambdas/adapters/dynamodb-partition';
import type { AuditEntry } from '../../lambdas/core/audit';
import { PlatformError } from '../../lambdas/core/errors';
import { HOLD_EPOCH_MS, shardCount } from '../../lambdas/core/ledger-shards';
import { secondsUntilNextMonth } from '../../lambdas/core/limits';
import type { TenantContext } from '../../lambdas/core/tenant';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';
import { dynamoDbItemBytes, ledgerState } from '../support/ledger';
import { tenantContext } from '../support/tenant';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const now = Date.UTC(2026, 10, 24, 12, 0, 10);
const RESERVATION_TTL_MS = 300_000;

describe('DynamoDbLedger against dynalite', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  let ledger: DynamoDbLedger;

  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }, { name: 'audit' }], credentials });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    // The ledger's logic alone, on one client; tenant scoping is tested in tenant-scoped-access.test.ts.
    ledger = new DynamoDbLedger(() => db, 'ledger', {
      reservationTtlMs: RESERVATION_TTL_MS,
      audit: { tableName: 'audit', retentionDays: 30 },
    });
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  const quota = (id: string) => ledgerState(db, id);
  const reserve = (t: TenantContext, tokens: number, nowMs = now) =>
    ledger.reserve(t, {
      requestId: `r${Math.random()}`,
      model: 'm',
      estimate: { tokens, costNanoUsd: tokens * 10 },
      nowMs,
    });

  /** A reserve that, told to retry shortly (contention), retries at once: what a client does. */
  const reserveRetrying = async (t: TenantContext, tokens: number): Promise<unknown> => {
    try {
      return await reserve(t, tokens);
    } catch (error) {
      if ((error as Error).message !== 'too many concurrent requests, retry shortly') throw error;
      return reserveRetrying(t, tokens);
    }
  };

  it('admits exactly requestsPerMinute concurrent requests and refuses the rest with rate_limited', async () => {
    // GIVEN a tenant allowed 10 requests per minute
    const t = tenantContext('rpm-tenant', { requestsPerMinute: 10 });
    // WHEN 25 requests race for the same minute
    const outcomes = await Promise.allSettled(Array.from({ length: 25 }, () => reserveRetrying(t, 10)));
    // THEN exactly 10 are admitted and the rest are refused with a Retry-After to the next minute
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);
    expect(new Set(refused.map((o) => o.reason.code))).toEqual(new Set(['rate_limited']));
    expect(refused[0].reason.retryAfterSeconds).toBe(50);
    expect(await quota('rpm-tenant')).toMatchObject({ rr: 10, tok: 100 });
  });

  it('opens a new window each minute but keeps the month', async () => {
    const t = tenantContext('window-tenant', { requestsPerMinute: 1 });
    await reserve(t, 5);
    await expect(reserve(t, 5)).rejects.toMatchObject({ code: 'rate_limited' });
    await reserve(t, 5, now + 60_000);
    expect(await quota('window-tenant')).toMatchObject({ rr: 1, tok: 10 });
  });

  it('refuses past the monthly token quota with quota_exceeded and charges nothing', async () => {
    const t = tenantContext('quota-tenant', { monthlyTokens: 100, tokensPerMinute: 100 });
    await reserve(t, 60);
    await expect(reserve(t, 41)).rejects.toMatchObject({ code: 'quota_exceeded', status: 429 });
    expect(await quota('quota-tenant')).toMatchObject({ tok: 60, rr: 1 });
  });

  it('refuses past tokens per minute with tokens_per_minute_exceeded', async () => {
    const t = tenantContext('tpm-tenant', { tokensPerMinute: 100 });
    await reserve(t, 70);
    await expect(reserve(t, 31)).rejects.toMatchObject({ code: 'tokens_per_minute_exceeded' });
  });

  it('refuses past the monthly budget with budget_exceeded', async () => {
    // 1e-6 USD budget = 1000 nano-USD; each token costs 10 nano-USD here.
    const t = tenantContext('budget-tenant', { monthlyBudgetUsd: 0.000001 });
    await reserve(t, 60);
    await expect(reserve(t, 50)).rejects.toMatchObject({ code: 'budget_exceeded' });
  });

  it('settles the actual usage, releases the rest, and reports it per day and model', async () => {
    const t = tenantContext('settle-tenant');
    const reservation = await reserve(t, 500);
    await ledger.settle(reservation, { inputTokens: 20, outputTokens: 30, costNanoUsd: 777 });
    expect(await quota('settle-tenant')).toMatchObject({ tok: 50, nusd: 777 });
    const failed = await reserve(t, 400);
    await ledger.release(failed);
    expect(await quota('settle-tenant')).toMatchObject({ tok: 50, nusd: 777 });
    expect(await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' })).toEqual([
      { date: '2026-11-24', model: 'm', requests: 1, inputTokens: 20, outputTokens: 30, costNanoUsd: 777 },
    ]);
    expect(await ledger.usage(t, { from: '2026-11-25', to: '2026-11-30' })).toEqual([]);
    expect(await ledger.usage(tenantContext('someone-else'), { from: '2026-11-01', to: '2026-11-30' })).toEqual([]);
  });

  it('settles and releases at most once per request id', async () => {
    const t = tenantContext('idempotent-tenant');
    const reservation = await reserve(t, 100);
    const usage = { inputTokens: 10, outputTokens: 5, costNanoUsd: 150 };
    await Promise.all([ledger.settle(reservation, usage), ledger.settle(reservation, usage)]);
    await ledger.settle(reservation, usage);
    await ledger.release(reservation);
    expect(await quota('idempotent-tenant')).toMatchObject({ tok: 15, nusd: 150 });
    expect(await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' })).toEqual([
      { date: '2026-11-24', model: 'm', requests: 1, inputTokens: 10, outputTokens: 5, costNanoUsd: 150 },
    ]);
  });

  it("writes the request's audit record in the settle's own transaction, and alone when that settle is retried", async () => {
    // GIVEN a reserved call and the audit record of the request it answers
    const t = tenantContext('audited-tenant');
    const reservation = await reserve(t, 100);
    const usage = { inputTokens: 10, outputTokens: 5, costNanoUsd: 150 };
    const entry: AuditEntry = {
      requestId: reservation.requestId,
      at: new Date(now + 900).toISOString(),
      principal: { type: 'api_key', id: 'k1' },
      route: 'POST /v1/chat/completions',
      status: 200,
      model: 'm',
      inputTokens: 10,
      outputTokens: 5,
    };
    const sent = jest.spyOn(db, 'send');
    // WHEN the call is settled with it, then settled again (a retry whose first answer was lost)
    await ledger.settle(reservation, usage, entry);
    await ledger.settle(reservation, usage, entry);
    const commands = sent.mock.calls.map(([command]) => command.constructor.name);
    sent.mockRestore();
    // THEN each settle is one transaction: the retry's client token has DynamoDB answer it success, unapplied
    expect(commands).toEqual(['TransactWriteCommand', 'TransactWriteCommand']);
    // AND the tenant has that one record, and its usage counted once
    const log = new DynamoDbAuditLog(
      () => db,
      'audit',
      30,
      () => now,
    );
    expect((await log.list(t, { limit: 10 })).entries).toEqual([entry]);
    expect(await quota('audited-tenant')).toMatchObject({ tok: 15, nusd: 150, held: 0 });
  });

  it('admits a retried reserve of the same request once', async () => {
    const t = tenantContext('retry-tenant', { requestsPerMinute: 5 });
    const request = { requestId: 'same-request', model: 'm', estimate: { tokens: 40, costNanoUsd: 400 }, nowMs: now };
    await ledger.reserve(t, request);
    await ledger.reserve(t, request);
    expect(await quota('retry-tenant')).toMatchObject({ rr: 1, tok: 40 });
  });

  it('admits a request id again, against the limits, once its earlier call ended, and bills the new call', async () => {
    // GIVEN a queued job's embedding (its request id `<request>:<batch>`) admitted, then released (the
    // provider refused it), in a minute of one request
    const t = tenantContext('again-tenant', { requestsPerMinute: 1 });
    const request = { requestId: 'doc-upload:3', model: 'm', estimate: { tokens: 100, costNanoUsd: 1000 }, nowMs: now };
    await ledger.release(await ledger.reserve(t, request));
    // WHEN the queue delivers the job again, in the same minute: refused, the minute's request is used
    await expect(ledger.reserve(t, { ...request, nowMs: now + 20_000 })).rejects.toMatchObject({
      code: 'rate_limited',
    });
    // AND in the next minute it is admitted, held, and its settle billed
    const again = await ledger.reserve(t, { ...request, nowMs: now + 60_000 });
    expect(await quota('again-tenant')).toMatchObject({ held: 1, heldTokens: 100 });
    await ledger.settle(again, { inputTokens: 10, outputTokens: 5, costNanoUsd: 150 });
    expect(await quota('again-tenant')).toMatchObject({ tok: 15, nusd: 150, held: 0, heldTokens: 0 });
  });

  it('releases an abandoned reservation (its call crashed) when it would block the tenant', async () => {
    // GIVEN a reservation that was never settled, filling the month's quota
    const t = tenantContext('crash-tenant', { monthlyTokens: 100, tokensPerMinute: 100, requestsPerMinute: 100 });
    await reserve(t, 90);
    // WHEN another request comes while the call may still run (its epoch or the next), it is refused
    await expect(reserve(t, 50, now + HOLD_EPOCH_MS)).rejects.toMatchObject({ code: 'quota_exceeded' });
    // THEN two epochs on, the next request releases it and is admitted; the month holds only the live one
    await reserve(t, 50, now + 2 * HOLD_EPOCH_MS);
    expect(await quota('crash-tenant')).toMatchObject({ tok: 50, rr: 1, held: 1 });
  });

  it('bills nothing, and gives nothing back twice, for a call that settles after it was released as abandoned', async () => {
    // GIVEN a call whose clock ran far behind: its slot was released as abandoned two epochs on
    const t = tenantContext('late-tenant', { monthlyTokens: 100, tokensPerMinute: 100, requestsPerMinute: 100 });
    const late = await reserve(t, 90);
    await reserve(t, 50, now + 2 * HOLD_EPOCH_MS);
    // WHEN it settles after all
    await ledger.settle(late, { inputTokens: 10, outputTokens: 10, costNanoUsd: 200 });
    // THEN the month holds the live call alone: the late one neither billed nor given back again
    expect(await quota('late-tenant')).toMatchObject({ tok: 50, held: 1 });
    expect(await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' })).toEqual([]);
  });

  it('releases an abandoned queued job (held by a record, for as long as it asked) past its own hold', async () => {
    const t = tenantContext('crash-job-tenant', { monthlyTokens: 100, tokensPerMinute: 100, requestsPerMinute: 100 });
    const holdMs = 6 * 3600_000;
    await ledger.reserve(t, {
      requestId: 'job-1',
      model: 'm',
      estimate: { tokens: 90, costNanoUsd: 900 },
      nowMs: now,
      holdMs,
    });
    expect(await quota('crash-job-tenant')).toMatchObject({ inFlight: ['job-1'], held: 0 });
    await expect(reserve(t, 50, now + 2 * HOLD_EPOCH_MS)).rejects.toMatchObject({ code: 'quota_exceeded' });
    await reserve(t, 50, now + holdMs + 60_000);
    expect(await quota('crash-job-tenant')).toMatchObject({ tok: 50, inFlight: [], held: 1 });
  });

  describe('a batch admitted whole at submission, held to the month alone', () => {
    const BATCH_HOLD_MS = 25 * 3600_000;
    const reserveBatch = (t: TenantContext, requestId: string, tokens: number, costNanoUsd = tokens * 10) =>
      ledger.reserve(t, {
        requestId,
        model: 'm',
        estimate: { tokens, costNanoUsd },
        nowMs: now,
        holdMs: BATCH_HOLD_MS,
        perMinute: false,
      });

    it('admits far beyond tokens per minute, holding the month but none of the minute', async () => {
      // GIVEN a tenant allowed 2 requests and 1,000 tokens a minute, 61,500 tokens a month
      const t = tenantContext('batch-co', { requestsPerMinute: 2, tokensPerMinute: 1_000, monthlyTokens: 61_500 });
      // WHEN a batch of 60,000 tokens is admitted
      await reserveBatch(t, 'batch-1', 60_000);
      // THEN the month holds it, by its record, and the shard has no minute's counters
      const state = await quota('batch-co');
      expect(state).toMatchObject({ tok: 60_000, nusd: 600_000, rr: 0, held: 0, inFlight: ['batch-1'] });
      expect(state.items.find((item) => String(item.sk).startsWith('SHARD#'))).not.toHaveProperty('w');
      // AND the minute is the calls' own whole: its 2 requests and 1,000 tokens, then a rate limit
      await reserve(t, 500);
      await reserve(t, 500);
      await expect(reserve(t, 1)).rejects.toMatchObject({ code: 'rate_limited' });
      // AND the month is not: the next minute admits what it has left, and no more
      await expect(reserve(t, 501, now + 60_000)).rejects.toMatchObject({ code: 'quota_exceeded' });
      await reserve(t, 500, now + 60_000);
      expect(await quota('batch-co')).toMatchObject({ tok: 61_500 });
    });

    it('is refused by the monthly tokens or budget, until the next month, never by a rate limit', async () => {
      // GIVEN a tenant of 1,000 tokens a minute whose minute is used up, with 100,000 nano-USD a month
      const t = tenantContext('batch-refused-co', {
        requestsPerMinute: 1,
        tokensPerMinute: 1_000,
        monthlyTokens: 100_000,
        monthlyBudgetUsd: 0.0001,
      });
      await reserve(t, 1_000);
      const nextMonth = { status: 429, retryAfterSeconds: secondsUntilNextMonth(now) };
      // WHEN batches come past the budget, then past the month's tokens
      await expect(reserveBatch(t, 'over-budget', 9_000, 90_001)).rejects.toMatchObject({
        code: 'budget_exceeded',
        ...nextMonth,
      });
      await reserveBatch(t, 'fits', 60_000, 60_000);
      await expect(reserveBatch(t, 'over-quota', 40_000, 0)).rejects.toMatchObject({
        code: 'quota_exceeded',
        ...nextMonth,
      });
      // THEN the month holds the one that fits and the call, nothing of the refused
      expect(await quota('batch-refused-co')).toMatchObject({ tok: 61_000, nusd: 70_000, inFlight: ['fits'] });
    });

    it('refuses with a 400 a batch larger than the monthly limit, naming that limit', async () => {
      const t = tenantContext('batch-too-large-co', { tokensPerMinute: 1_000, monthlyTokens: 100_000 });
      const refused = reserveBatch(t, 'too-large', 100_001, 0);
      await expect(refused).rejects.toMatchObject({
        code: 'invalid_request',
        status: 400,
        message: 'request needs up to 100001 tokens but your monthly limit is 100000',
      });
      await expect(reserveBatch(t, 'too-costly', 1_000, 10_000_000_001)).rejects.toMatchObject({
        code: 'invalid_request',
        message: 'request could cost more than your monthly budget',
      });
      expect((await quota('batch-too-large-co')).items).toEqual([]);
    });

    it('must be held by its own record: without holdMs it is a programming error', async () => {
      const t = tenantContext('batch-unheld-co');
      const unheld = ledger.reserve(t, {
        requestId: 'unheld',
        model: 'm',
        estimate: { tokens: 10, costNanoUsd: 100 },
        nowMs: now,
        perMinute: false,
      });
      await expect(unheld).rejects.toThrow(/holdMs/);
      await expect(unheld).rejects.not.toBeInstanceOf(PlatformError);
      expect((await quota('batch-unheld-co')).items).toEqual([]);
    });

    it('admits a retried reserve of the same batch once', async () => {
      const t = tenantContext('batch-retry-co', { tokensPerMinute: 1_000 });
      const first = await reserveBatch(t, 'batch-r', 60_000);
      expect(await reserveBatch(t, 'batch-r', 60_000)).toEqual(first);
      expect(await quota('batch-retry-co')).toMatchObject({ tok: 60_000, inFlight: ['batch-r'] });
    });

    it('settles once at its end: the unused estimate back to the month exactly, its usage by day and model', async () => {
      // GIVEN a batch of 60,000 tokens admitted
      const t = tenantContext('batch-settle-co', { tokensPerMinute: 1_000, monthlyTokens: 100_000 });
      const batch = await reserveBatch(t, 'batch-s', 60_000);
      // WHEN it ends having used 40,000 tokens, and its settle is retried
      const usage = { inputTokens: 30_000, outputTokens: 10_000, costNanoUsd: 400_000 };
      await ledger.settle(batch, usage);
      await ledger.settle(batch, usage);
      // THEN the month holds what it used, once, and the minute was never touched
      expect(await quota('batch-settle-co')).toMatchObject({ tok: 40_000, nusd: 400_000, rr: 0, inFlight: [] });
      expect(await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' })).toEqual([
        { date: '2026-11-24', model: 'm', requests: 1, ...usage },
      ]);
      // AND all the month has left is admitted to the next batch
      await expect(reserveBatch(t, 'batch-over', 60_001)).rejects.toMatchObject({ code: 'quota_exceeded' });
      await reserveBatch(t, 'batch-next', 60_000);
    });

    it('gives everything back when released', async () => {
      const t = tenantContext('batch-release-co', { tokensPerMinute: 1_000, monthlyTokens: 100_000 });
      await ledger.release(await reserveBatch(t, 'batch-x', 60_000));
      expect(await quota('batch-release-co')).toMatchObject({ tok: 0, nusd: 0, rr: 0, inFlight: [] });
      expect(await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' })).toEqual([]);
      await reserveBatch(t, 'batch-y', 100_000);
    });

    it('holds the month of a tenant with several shards, leaving every share of the minute to its calls', async () => {
      // GIVEN a 4-shard tenant (250,000 tokens a minute each) with 16,500,000 tokens a month
      const t = tenantContext('batch-sharded-co', {
        requestsPerMinute: 40_000,
        tokensPerMinute: 1_000_000,
        monthlyTokens: 16_500_000,
        monthlyBudgetUsd: 1e6,
      });
      expect(shardCount(t.limits)).toBe(4);
      // WHEN a batch of 15,000,000 tokens is admitted
      const batch = await reserveBatch(t, 'batch-big', 15_000_000);
      expect(await quota('batch-sharded-co')).toMatchObject({ tok: 15_000_000, rr: 0, inFlight: ['batch-big'] });
      // THEN the minute's 1,000,000 tokens go to calls, one share each, and no more
      for (let i = 0; i < 4; i++) await reserveRetrying(t, 250_000);
      await expect(reserve(t, 250_000)).rejects.toMatchObject({ code: 'tokens_per_minute_exceeded' });
      // AND the month's last 500,000 tokens the next minute, then quota_exceeded
      for (let i = 0; i < 2; i++) await reserve(t, 250_000, now + 60_000);
      await expect(reserve(t, 1, now + 60_000)).rejects.toMatchObject({ code: 'quota_exceeded' });
      // AND its release gives the month back its 15,000,000 tokens
      await ledger.release(batch);
      expect(await quota('batch-sharded-co')).toMatchObject({ tok: 1_500_000, inFlight: [] });
      await reserve(t, 250_000, now + 120_000);
    });
  });

  it("keeps the shard item under 1 KB whatever the models a day settles: their cells move to the day's item", async () => {
    // GIVEN a tenant settling 24 adapters with long names on one day
    const t = tenantContext('many-models-co');
    const models = Array.from({ length: 24 }, (_, i) => `adapter/support-assistant-v${i}`);
    for (const [i, model] of models.entries()) {
      const nowMs = now + i * 1000;
      const r = await ledger.reserve(t, {
        requestId: `mm-${i}`,
        model,
        estimate: { tokens: 100, costNanoUsd: 1000 },
        nowMs,
      });
      await ledger.settle(r, { inputTokens: 10, outputTokens: 20, costNanoUsd: 300 });
    }
    // WHEN the next call comes
    await ledger.reserve(t, {
      requestId: 'mm-next',
      model: 'm',
      estimate: { tokens: 100, costNanoUsd: 1000 },
      nowMs: now + 60_000,
    });
    // THEN the shard item, which every call writes twice, is back under 1 KB (DynamoDB bills a write by the KB)
    const { items } = await quota('many-models-co');
    const shardItem = items.find((item) => String(item.sk).startsWith('SHARD#'));
    expect(dynamoDbItemBytes(shardItem ?? {})).toBeLessThanOrEqual(1024);
    expect(items.some((item) => item.sk === 'USAGE#2026-11-24')).toBe(true);
    // AND the day's usage reads back whole, each model once
    const usage = await ledger.usage(t, { from: '2026-11-24', to: '2026-11-24' });
    expect(usage.map((record) => record.model).sort()).toEqual([...models].sort());
    expect(usage.every((record) => record.requests === 1 && record.inputTokens === 10)).toBe(true);
  });

  it("reports one month of every tenant's settled usage", async () => {
    const records = await new DynamoDbLedgerReports(db, 'ledger').monthOfAllTenants('2026-11');
    expect(records).toEqual(
      expect.arrayContaining([
        {
          tenantId: 'settle-tenant',
          date: '2026-11-24',
          model: 'm',
          requests: 1,
          inputTokens: 20,
          outputTokens: 30,
          costNanoUsd: 777,
        },
        {
          tenantId: 'idempotent-tenant',
          date: '2026-11-24',
          model: 'm',
          requests: 1,
          inputTokens: 10,
          outputTokens: 5,
          costNanoUsd: 150,
        },
      ]),
    );
    expect(records.every((r) => r.requests > 0)).toBe(true);
    expect(await new DynamoDbLedgerReports(db, 'ledger').monthOfAllTenants('2026-10')).toEqual([]);
  });

  describe('a tenant busier than one partition key', () => {
    /**
     * Hundreds of transactions through dynalite, racing: 9 s on a quiet 2-core machine, over 30 s
     * with one core kept busy. Their results do not depend on time; only jest's cap does.
     */
    const RACE_TIMEOUT_MS = 120_000;
    /** 3,000 calls a second: more than one partition key's 1,000 write units can carry. */
    /** About 670 calls a second: four shards. */
    const fourShards = { requestsPerMinute: 40_000, tokensPerMinute: 1_000_000, monthlyBudgetUsd: 1e6 };
    const hot = { requestsPerMinute: 180_000, tokensPerMinute: 1e9, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };

    it(
      'spreads its calls over its shards, in items that stay small with a month of history and calls in flight',
      async () => {
        // GIVEN a tenant whose limits call for many shards
        const t = tenantContext('hot-co', hot);
        expect(shardCount(t.limits)).toBe(18);
        // WHEN 30 days of calls on 3 models are settled, and 128 calls are left in flight
        for (let day = 0; day < 30; day++) {
          for (const model of ['a', 'b', 'c']) {
            const r = await ledger.reserve(t, {
              requestId: `d${day}${model}`,
              model,
              estimate: { tokens: 600, costNanoUsd: 7000 },
              nowMs: Date.UTC(2026, 10, 1 + day, 12),
            });
            await ledger.settle(r, { inputTokens: 40, outputTokens: 60, costNanoUsd: 980 });
          }
        }
        await Promise.all(Array.from({ length: 128 }, (_, i) => reserve(t, 600, Date.UTC(2026, 10, 30, 13) + i)));
        // THEN they used many partition keys, and no item grew past 1 KB
        const { items, held } = await quota('hot-co');
        expect(held).toBe(128);
        expect(new Set(items.map((i) => i.pk)).size).toBeGreaterThan(12);
        const largest = Math.max(...items.map((item) => JSON.stringify(item).length));
        expect(largest).toBeLessThan(1024);
        // AND its usage reads back whole, from every shard that holds some
        const usage = await ledger.usage(t, { from: '2026-11-01', to: '2026-11-30' });
        expect(usage).toHaveLength(90);
        expect(usage.reduce((sum, r) => sum + r.requests, 0)).toBe(90);
      },
      RACE_TIMEOUT_MS,
    );

    it(
      'never admits past the month across its shards: leases never add up to more than the limit',
      async () => {
        // GIVEN a 4-shard tenant allowed 4,000 tokens this month
        const limits = { ...fourShards, monthlyTokens: 4_000 };
        const t = tenantContext('leased-co', limits);
        expect(shardCount(limits)).toBe(4);
        // WHEN 60 calls of 100 tokens race (retrying when told to, as the race goes on)
        const outcomes = await Promise.allSettled(Array.from({ length: 60 }, () => reserveRetrying(t, 100)));
        // THEN exactly 40 are admitted (none refused early), the rest refused with quota_exceeded
        const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(40);
        expect(new Set(refused.map((o) => o.reason.code))).toEqual(new Set(['quota_exceeded']));
        expect(await quota('leased-co')).toMatchObject({ tok: 4_000 });
      },
      RACE_TIMEOUT_MS,
    );

    it(
      'gives back the leases of shards a lowered request rate retired, so the month admits all it allows',
      async () => {
        // GIVEN a 4-shard tenant allowed 6,400 tokens this month whose shards hold leases, 1,200 tokens used
        const limits = { ...fourShards, monthlyTokens: 6_400 };
        const before = tenantContext('retiring-co', limits);
        for (let i = 0; i < 20; i++) await reserve(before, 60);
        const leasedOn = (await quota('retiring-co')).items.filter(
          (item) => String(item.sk).startsWith('SHARD#') && Number(item.lt) > 0,
        );
        expect(new Set(leasedOn.map((item) => item.pk)).size).toBeGreaterThan(1);
        // WHEN its request rate drops to one shard's worth
        const after = tenantContext('retiring-co', { ...limits, requestsPerMinute: 600 });
        expect(shardCount(after.limits)).toBe(1);
        // THEN all the month has left is admitted (5,200 tokens: 86 calls of 60), none kept in the retired shards' leases
        const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => reserveRetrying(after, 60)));
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(86);
        expect(await quota('retiring-co')).toMatchObject({ tok: 6_360 });
      },
      RACE_TIMEOUT_MS,
    );

    it(
      'takes a lowered monthly limit at once: leases granted under the old one are given back first',
      async () => {
        // GIVEN a 4-shard tenant that used 3,000 tokens under a 1,000,000 limit
        const limits = { ...fourShards, monthlyTokens: 1_000_000 };
        const before = tenantContext('downgraded-co', limits);
        for (let i = 0; i < 30; i++) await reserve(before, 100);
        // WHEN its limit drops to 5,000
        const after = tenantContext('downgraded-co', { ...limits, monthlyTokens: 5_000 });
        // THEN exactly 2,000 more tokens are admitted, on any shard
        const outcomes = await Promise.allSettled(Array.from({ length: 40 }, () => reserveRetrying(after, 100)));
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(20);
        expect(await quota('downgraded-co')).toMatchObject({ tok: 5_000 });
      },
      RACE_TIMEOUT_MS,
    );
  });

  it('leaves the calls a move to this silo copied, past their hold, to the catch-up', async () => {
    // GIVEN a month held whole by 10 calls copied from the pool, their shard item with the base the copy leaves
    const t = tenantContext('arrived-co', {
      monthlyTokens: 1_000,
      tokensPerMinute: 1_000_000,
      requestsPerMinute: 1000,
    });
    for (let i = 0; i < 10; i++) await reserve(t, 100);
    const copied = (await quota('arrived-co')).items.filter((item) => String(item.sk).startsWith('SHARD#'));
    expect(copied).toHaveLength(1);
    const bases = copied.map((item) => ({ pk: item.pk, sk: `MOVED#${item.sk}`, h: 'copied', n: {} }));
    await batchWrite(
      db,
      'ledger',
      bases.map((Item) => ({ PutRequest: { Item } })),
    );
    // WHEN a call comes after their hold: whether the pool's calls behind them ended is the catch-up's to say
    const later = now + 2 * HOLD_EPOCH_MS;
    await expect(reserve(t, 100, later)).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(await quota('arrived-co')).toMatchObject({ held: 10 });
    // THEN once caught up (the bases gone), they are released as any abandoned calls
    await batchWrite(
      db,
      'ledger',
      bases.map((base) => ({ DeleteRequest: { Key: { pk: base.pk, sk: base.sk } } })),
    );
    await reserve(t, 100, later);
    expect(await quota('arrived-co')).toMatchObject({ held: 1, tok: 100 });
  });

  it('releases a crowd of abandoned reservations when they would block, instead of locking the tenant out', async () => {
    // GIVEN 150 calls that crashed in flight, holding the whole month
    const t = tenantContext('crowded-co', {
      monthlyTokens: 15_000,
      tokensPerMinute: 1_000_000,
      requestsPerMinute: 1000,
    });
    for (let i = 0; i < 150; i++) await reserve(t, 100);
    await expect(reserve(t, 100, now + 1000)).rejects.toMatchObject({ code: 'quota_exceeded' });
    // WHEN a call comes two epochs later
    await reserve(t, 100, now + 2 * HOLD_EPOCH_MS);
    // THEN they are all released and only the new call is in flight
    const state = await quota('crowded-co');
    expect(state.held).toBe(1);
    expect(state.tok).toBe(100);
  });
});
