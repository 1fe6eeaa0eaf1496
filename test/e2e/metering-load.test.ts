import { createHash } from 'node:crypto';
import type { TenantLimits } from '../../contract/tenancy';
import { DynamoDbLedger } from '../../lambdas/adapters/dynamodb-ledger';
import { HOLD_EPOCH_MS } from '../../lambdas/core/ledger-shards';
import { budgetNanoUsd, minuteWindow, monthKey } from '../../lambdas/core/limits';
import { DEFAULT_MODELS } from '../../lib/config';
import type { DynamoDbFaultInjector } from '../../local/dynamodb-front';
import { ledgerState } from '../support/ledger';
import { call, localDynamoDb, onboard, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

/**
 * Proof under load: 4 tenants, each bound by a different limit, 64 concurrent clients sending a
 * mix of requests that fit and that do not. Then the same under injected DynamoDB faults
 * (throttling, a settle failing twice before it succeeds, lost responses, timeouts) and with
 * reservations left behind by calls that crashed between reserve and settle.
 *
 * Invariants: never admitted past a limit; the ledger's settled totals equal exactly the usage in
 * the answers each tenant received; no 5xx; no reservation left behind.
 */

/**
 * It runs beside the other suites on a 2-core machine that may be busy: it asserts exactness and
 * isolation, not speed. A starved platform answers 503 "retry shortly" (a store still busy after its
 * retries, before the model ran) or a contended 429, and the clients retry those, a bounded number of
 * times; a settle, which comes after the model answered, keeps trying rather than answer 503.
 */
const LOAD_TEST_TIMEOUT_MS = 180_000;
const CLIENTS = 64;
const REQUESTS_PER_CLIENT = 3;
const MAX_TOKENS = [8, 32, 64, 200, 600];
const PRICE = DEFAULT_MODELS['nova-micro'];
const nanoPerToken = (usdPerMillion: number) => Math.round(usdPerMillion * 1000);

const unlimited: TenantLimits = {
  requestsPerMinute: 100_000,
  tokensPerMinute: 10_000_000,
  monthlyTokens: 100_000_000,
  monthlyBudgetUsd: 1000,
};
/**
 * Each tenant's binding limit is met by what its 48 requests use, not by how many happen to run at once:
 * the rpm and tpm limits in any one of the 4 minute windows a run on a starved machine may span (a local
 * answer echoes the prompt: about 25 tokens in, 24 out, 4,200 nano-USD), the month's tokens and budget
 * by about half the requests.
 */
const TENANTS: { name: string; limits: TenantLimits; refusal: string }[] = [
  { name: 'rpm', limits: { ...unlimited, requestsPerMinute: 10 }, refusal: 'rate_limited' },
  { name: 'tpm', limits: { ...unlimited, tokensPerMinute: 2_000 }, refusal: 'tokens_per_minute_exceeded' },
  { name: 'quota', limits: { ...unlimited, monthlyTokens: 1_200 }, refusal: 'quota_exceeded' },
  { name: 'budget', limits: { ...unlimited, monthlyBudgetUsd: 0.00012 }, refusal: 'budget_exceeded' },
];

const CONTENDED_MESSAGE = 'too many concurrent requests, retry shortly';
const isContended = (body: Answer['body']) => body.error?.message === CONTENDED_MESSAGE;
/**
 * What a client retries, as the platform tells it to: the 429 of a contended limit and a 503 (a
 * store that stayed busy through the platform's own retries), each with its Retry-After. At most
 * this many times a request; how many it took is reported with the run.
 */
const RETRIES_PER_REQUEST = 5;
const saysRetry = (response: { status: number; body: Answer['body'] }) =>
  response.status === 503 || (response.status === 429 && isContended(response.body));

interface Answer {
  readonly tenant: string;
  readonly maxTokens: number;
  readonly status: number;
  /** How many answers before this one said to retry. */
  readonly retries: number;
  readonly body: {
    created?: number;
    usage?: { prompt_tokens: number; completion_tokens: number };
    error?: { code: string; message: string };
  };
}

describe('metering under load and faults', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let db: ReturnType<typeof localDynamoDb>;

  beforeAll(async () => {
    platform = await startTestPlatform();
    db = localDynamoDb(platform);
  });
  afterAll(() => platform.close());

  /**
   * Onboards the four tenants under `prefix` and fires 64 clients at them through `faults`; returns every
   * answer, the keys, and how many reserves were sent more than once (a try whose answer was lost or late,
   * or a later round of the same admission): only such a reserve can hold its call twice.
   */
  async function runLoad(
    prefix: string,
    faults?: DynamoDbFaultInjector,
    before?: () => Promise<void>,
  ): Promise<{ answers: Answer[]; keys: Map<string, string>; resentReserves: number }> {
    const keys = new Map<string, string>();
    for (const tenant of TENANTS)
      keys.set(
        `${prefix}-${tenant.name}`,
        (await onboard(platform, `${prefix}-${tenant.name}`, { limits: tenant.limits })).apiKey,
      );
    await before?.();
    const reserves = new Set<string>();
    let resentReserves = 0;
    platform.injectDynamoDbFaults((request) => {
      if (request.operation === 'UpdateItem' && request.body.includes('":rid"')) {
        if (reserves.has(request.body)) resentReserves++;
        reserves.add(request.body);
      }
      return faults?.(request);
    });
    const ids = [...keys.keys()];
    const answers: Answer[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let i = 0; i < REQUESTS_PER_CLIENT; i++) {
          const tenant = ids[(client + i) % ids.length];
          const maxTokens = MAX_TOKENS[(client * 7 + i) % MAX_TOKENS.length];
          const words = Array.from({ length: 1 + ((client + 3 * i) % 20) }, (_, w) => `word${w}`).join(' ');
          const ask = () =>
            call(platform, 'POST', '/v1/chat/completions', {
              credential: keys.get(tenant),
              body: { model: 'nova-micro', messages: [{ role: 'user', content: words }], max_tokens: maxTokens },
            });
          // A client does what "retry shortly" says, a bounded number of times: on a starved machine
          // a tenant's every refusal could otherwise be that one, and its binding limit never named.
          let response = await ask();
          let retries = 0;
          for (; retries < RETRIES_PER_REQUEST && saysRetry(response); retries++) response = await ask();
          answers.push({ tenant, maxTokens, status: response.status, body: response.body, retries });
        }
      }),
    );
    platform.injectDynamoDbFaults(undefined);
    return { answers, keys, resentReserves };
  }

  async function assertInvariants(
    prefix: string,
    { answers, keys, resentReserves }: Awaited<ReturnType<typeof runLoad>>,
  ): Promise<void> {
    expect(answers).toHaveLength(CLIENTS * REQUESTS_PER_CLIENT);
    const retried = answers.filter((a) => a.retries > 0);
    process.stdout.write(
      `${prefix}: ${retried.length} of ${answers.length} requests retried what the platform said to retry, ${retried.reduce((sum, a) => sum + a.retries, 0)} retries (at most ${RETRIES_PER_REQUEST} each)\n`,
    );
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    for (const tenant of TENANTS) {
      const id = `${prefix}-${tenant.name}`;
      const mine = answers.filter((a) => a.tenant === id);
      const admitted = mine.filter((a) => a.status === 200);
      const refused = mine.filter((a) => a.status !== 200);
      // every refusal is a 429 naming this tenant's binding limit, or, when concurrent reservations
      // and settles keep moving the counters, the plain "retry shortly" of a contended limit
      expect(refused.every((a) => a.status === 429)).toBe(true);
      const contended = refused.filter((a) => isContended(a.body));
      expect({
        id,
        codes: [...new Set(refused.filter((a) => !contended.includes(a)).map((a) => a.body.error?.code))],
      }).toEqual({
        id,
        codes: [tenant.refusal],
      });
      expect(contended.every((a) => a.body.error?.code === 'rate_limited')).toBe(true);
      expect(admitted.length).toBeGreaterThan(0);

      // 0 over-admission: per minute window (from `created`, the reserve time) and per month
      const windows = new Map<number, { requests: number; reservedTokens: number }>();
      for (const a of admitted) {
        const window = minuteWindow((a.body.created ?? 0) * 1000);
        const w = windows.get(window) ?? { requests: 0, reservedTokens: 0 };
        w.requests += 1;
        w.reservedTokens += (a.body.usage?.prompt_tokens ?? 0) + a.maxTokens;
        windows.set(window, w);
      }
      for (const w of windows.values()) {
        expect(w.requests).toBeLessThanOrEqual(tenant.limits.requestsPerMinute);
        expect(w.reservedTokens).toBeLessThanOrEqual(tenant.limits.tokensPerMinute);
      }
      const input = admitted.reduce((sum, a) => sum + (a.body.usage?.prompt_tokens ?? 0), 0);
      const output = admitted.reduce((sum, a) => sum + (a.body.usage?.completion_tokens ?? 0), 0);
      const costNano =
        input * nanoPerToken(PRICE.inputUsdPerMillionTokens) + output * nanoPerToken(PRICE.outputUsdPerMillionTokens);
      expect(input + output).toBeLessThanOrEqual(tenant.limits.monthlyTokens);
      expect(costNano).toBeLessThanOrEqual(budgetNanoUsd(tenant.limits));

      // the ledger holds exactly what the tenant was told it used, and nothing still reserved
      const report = await call(platform, 'GET', '/v1/usage', { credential: keys.get(id) });
      expect(report.body.totals).toEqual({
        requests: admitted.length,
        input_tokens: input,
        output_tokens: output,
        cost_usd: costNano / 1e9,
      });
      // (a reserve whose answer was lost, sent again after another call on its shard took the shard's last
      // mark, holds twice: never billed, its extra hold released two epochs on like a crashed call's)
      const state = await ledgerState(db.scoped(id), id, monthKey(Date.now()));
      expect({
        tok: state.tok - state.heldTokens,
        nusd: state.nusd - state.heldCost,
        reservations: state.inFlight,
      }).toEqual({
        tok: input + output,
        nusd: costNano,
        reservations: [],
      });
      expect(state.held).toBeLessThanOrEqual(resentReserves);
    }
  }

  it(
    'admits no tenant past any limit and bills exactly what it answered, under load',
    async () => {
      await assertInvariants('load', await runLoad('load'));
    },
    LOAD_TEST_TIMEOUT_MS,
  );

  it(
    'keeps the same invariants with DynamoDB faults and calls that crashed between reserve and settle',
    async () => {
      const attempts = new Map<string, number>();
      const counts = { throttle: 0, 'server-error': 0, 'lost-response': 0, timeout: 0 };
      const faults: DynamoDbFaultInjector = ({ operation, body }) => {
        // The reserves (one update of a shard item, marked with the request) and the settles (a transaction of it)
        const isReserve = operation === 'UpdateItem' && body.includes('":rid"');
        const isSettle = operation === 'TransactWriteItems' && body.includes('"#hn"');
        if (!isReserve && !isSettle) return undefined;
        // One logical write, whatever idempotency token this try of it carries.
        const write = body.replace(/"ClientRequestToken":"[^"]*",?/, '');
        const attempt = (attempts.get(write) ?? 0) + 1;
        attempts.set(write, attempt);
        const bucket = createHash('sha256').update(write).digest()[0] % 10;
        const fault =
          isSettle && bucket < 3 && attempt <= 2
            ? 'server-error' // a settle that fails twice, then succeeds
            : attempt > 1
              ? undefined
              : bucket === 3
                ? 'throttle'
                : bucket === 4
                  ? 'lost-response' // applied, but the answer never arrives: the retry must not count twice
                  : bucket === 5 && counts.timeout < 6
                    ? 'timeout'
                    : undefined;
        if (fault) counts[fault]++;
        return fault;
      };

      const run = await runLoad('fault', faults, async () => {
        // Calls that crashed after reserving: 900 of the quota tenant's 1,200 tokens held, made two
        // epochs ago, so they are abandoned already: no waiting for it.
        const crashedLedger = new DynamoDbLedger(db.scoped, 'ledger', { reservationTtlMs: 360_000 });
        const quotaTenant = tenantContext('fault-quota', TENANTS[2].limits);
        for (let i = 0; i < 3; i++) {
          await crashedLedger.reserve(quotaTenant, {
            requestId: `crashed-${i}`,
            model: 'nova-micro',
            estimate: { tokens: 300, costNanoUsd: 0 },
            nowMs: Date.now() - 2 * HOLD_EPOCH_MS,
          });
        }
      });

      expect(counts.throttle).toBeGreaterThan(10);
      expect(counts['server-error']).toBeGreaterThan(20);
      expect(counts['lost-response']).toBeGreaterThan(10);
      expect(counts.timeout).toBe(6);
      await assertInvariants('fault', run);
      // the quota tenant used more than the 300 tokens the crashed reservations left it
      const quotaAdmitted = run.answers.filter((a) => a.tenant === 'fault-quota' && a.status === 200);
      expect(
        quotaAdmitted.reduce((sum, a) => sum + (a.body.usage?.prompt_tokens ?? 0) + a.maxTokens, 0),
      ).toBeGreaterThan(300);
    },
    LOAD_TEST_TIMEOUT_MS,
  );
});
