import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbLedger, DynamoDbLedgerReports } from '../../lambdas/adapters/dynamodb-ledger';
import type { TenantContext } from '../../lambdas/core/tenant';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';
import { tenantContext } from '../support/tenant';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const now = Date.UTC(2026, 10, 24, 12, 0, 10);
const RESERVATION_TTL_MS = 300_000;

describe('DynamoDbLedger against dynalite', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  let ledger: DynamoDbLedger;

  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }], credentials });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    // The ledger's logic alone, on one client; tenant scoping is tested in tenant-scoped-access.test.ts.
    ledger = new DynamoDbLedger(() => db, 'ledger', { reservationTtlMs: RESERVATION_TTL_MS });
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  const quota = async (id: string) =>
    (await db.send(new GetCommand({ TableName: 'ledger', Key: { pk: `TENANT#${id}`, sk: 'QUOTA#2026-11' } }))).Item;
  const reserve = (t: TenantContext, tokens: number, nowMs = now) =>
    ledger.reserve(t, {
      requestId: `r${Math.random()}`,
      model: 'm',
      estimate: { tokens, costNanoUsd: tokens * 10 },
      nowMs,
    });

  it('admits exactly requestsPerMinute concurrent requests and refuses the rest with rate_limited', async () => {
    // GIVEN a tenant allowed 10 requests per minute
    const t = tenantContext('rpm-tenant', { requestsPerMinute: 10 });
    // WHEN 25 requests race for the same minute
    const outcomes = await Promise.allSettled(Array.from({ length: 25 }, () => reserve(t, 10)));
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

  it('admits a retried reserve of the same request once', async () => {
    const t = tenantContext('retry-tenant', { requestsPerMinute: 5 });
    const request = { requestId: 'same-request', model: 'm', estimate: { tokens: 40, costNanoUsd: 400 }, nowMs: now };
    await ledger.reserve(t, request);
    await ledger.reserve(t, request);
    expect(await quota('retry-tenant')).toMatchObject({ rr: 1, tok: 40 });
  });

  it('releases an abandoned reservation (its call crashed) when it would block the tenant', async () => {
    // GIVEN a reservation that was never settled, filling the month's quota
    const t = tenantContext('crash-tenant', { monthlyTokens: 100, tokensPerMinute: 100, requestsPerMinute: 100 });
    await reserve(t, 90);
    // WHEN another request comes before the reservation expires, it is refused
    await expect(reserve(t, 50, now + 1000)).rejects.toMatchObject({ code: 'quota_exceeded' });
    // THEN once it has expired, the next request releases it and is admitted; the month holds only the live one
    await reserve(t, 50, now + RESERVATION_TTL_MS + 60_000);
    expect(await quota('crash-tenant')).toMatchObject({ tok: 50, rr: 1 });
  });

  it('releases an abandoned reservation on the next admitted reserve, without a refusal or a read', async () => {
    // GIVEN a reservation of a crashed call, far from any limit
    const t = tenantContext('sweep-tenant', { monthlyTokens: 10_000, tokensPerMinute: 10_000, requestsPerMinute: 100 });
    await reserve(t, 90);
    // WHEN the tenant's next call is admitted after the reservation expired
    const sent: string[] = [];
    const countingClient = {
      send: (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        return db.send(command as never);
      },
    };
    const counting = new DynamoDbLedger(() => countingClient as never, 'ledger', {
      reservationTtlMs: RESERVATION_TTL_MS,
    });
    await counting.reserve(t, {
      requestId: 'after-the-crash',
      model: 'm',
      estimate: { tokens: 50, costNanoUsd: 500 },
      nowMs: now + RESERVATION_TTL_MS + 60_000,
    });
    // THEN the crashed call's reservation is gone and its tokens given back: two writes, no read
    const item = await quota('sweep-tenant');
    expect(Object.keys(item ?? {}).filter((name) => name.startsWith('R#'))).toEqual(['R#after-the-crash']);
    expect(item).toMatchObject({ tok: 50 });
    expect(sent).toEqual(['UpdateCommand', 'UpdateCommand']);
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

  describe("a month item full of calls in flight (near DynamoDB's 400 KB item limit)", () => {
    /**
     * Fills the tenant's month item with 1,000 reservations of crashed calls held until `holdUntil`,
     * padded up to DynamoDB's 400 KB item limit: the largest item the table takes (found by trying).
     */
    const fillToLimit = async (id: string, holdUntil: number) => {
      const item: Record<string, unknown> = {
        pk: `TENANT#${id}`,
        sk: 'QUOTA#2026-11',
        rw: Math.floor(now / 60_000),
        rr: 0,
        rt: 0,
        tok: 1_000 * 100,
        nusd: 1_000 * 1000,
      };
      for (let i = 0; i < 1_000; i++) item[`R#crashed-${i}`] = { t: 100, c: 1000, e: holdUntil };
      const fits = (pad: number) =>
        db.send(new PutCommand({ TableName: 'ledger', Item: { ...item, pad: 'x'.repeat(pad) } })).then(
          () => true,
          () => false,
        );
      let [low, high] = [0, 400 * 1024];
      while (high - low > 1) {
        const mid = Math.floor((low + high) / 2);
        if (await fits(mid)) low = mid;
        else high = mid;
      }
      expect(await fits(low)).toBe(true);
    };

    it('releases the abandoned reservations and admits, instead of failing every call for the rest of the month', async () => {
      const t = tenantContext('crowded-co', {
        requestsPerMinute: 1_000_000,
        monthlyTokens: 1e12,
        monthlyBudgetUsd: 1e6,
      });
      await fillToLimit('crowded-co', now - 1);
      await expect(reserve(t, 100)).resolves.toMatchObject({ tenantId: 'crowded-co' });
      const item = await quota('crowded-co');
      expect(Object.keys(item ?? {}).filter((name) => name.startsWith('R#'))).toHaveLength(1);
      expect(item?.tok).toBe(100);
    });

    it('answers 429 with Retry-After while the calls in flight are still held, never a 5xx', async () => {
      const t = tenantContext('busy-co', { requestsPerMinute: 1_000_000, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 });
      await fillToLimit('busy-co', now + RESERVATION_TTL_MS);
      await expect(reserve(t, 100)).rejects.toMatchObject({
        code: 'rate_limited',
        retryAfterSeconds: expect.any(Number),
      });
    });
  });
});
