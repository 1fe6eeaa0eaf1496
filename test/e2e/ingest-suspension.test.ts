import { monthKey } from '../../lambdas/core/limits';
import { create as createIngestWorker } from '../../lambdas/handlers/ingest-worker';
import { platformConfig } from '../../lib/config';
import { lambdaContext } from '../../local/lambda-context';
import { ledgerState } from '../support/ledger';
import { call, localDynamoDb, ManualClock, onboard, startTestPlatform } from '../support/platform';
import { fillerText } from '../support/text';

describe("a suspended tenant's queued ingest (local SQS with delays, the production worker)", () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  const clock = new ManualClock();
  const config = platformConfig();

  beforeAll(async () => {
    // The worker is attached by the test, once the tenant is suspended.
    platform = await startTestPlatform(config, { now: clock.now, ingestWorker: false });
  });
  afterAll(() => platform.close());

  const admin = () => ({ credential: platform.operatorToken });
  const delayedSends = (delaySeconds: number) =>
    platform.sqs.requests.filter((request) => request.DelaySeconds === delaySeconds);
  /** Lets the in-process worker run until `done` holds, with requests in between and no timer. */
  async function until(done: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !done(); i++) await call(platform, 'GET', '/admin/tenants', admin());
    expect(done()).toBe(true);
  }

  it('waits, with a growing delay and its reservation given back, and is indexed once after resume', async () => {
    const { apiKey } = await onboard(platform, 'paused-co');
    const queued = await call(platform, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'big', text: fillerText(80 * 160, 'fjord') },
    });
    expect(queued.status).toBe(202);
    const jobs = platform.sqs.requests.length;
    expect(jobs).toBeGreaterThan(2);
    const inFlight = async () =>
      (await ledgerState(localDynamoDb(platform).scoped('paused-co'), 'paused-co', monthKey(clock.now()))).inFlight;
    expect(await inFlight()).toHaveLength(jobs);

    expect(
      (await call(platform, 'PATCH', '/admin/tenants/paused-co', { ...admin(), body: { status: 'suspended' } })).status,
    ).toBe(200);
    const embeddingsBefore = platform.bedrock.requests.length;
    const worker = createIngestWorker(platform.deps);
    platform.sqs.consume((event) => worker(event, lambdaContext()));

    // Every job waits 15 s, unembedded, none dead-lettered; still suspended after the wait: 30 s.
    await until(() => delayedSends(15).length === jobs);
    expect(platform.bedrock.requests.length).toBe(embeddingsBefore);
    expect(JSON.parse(String(delayedSends(15)[0].MessageBody))).toMatchObject({ documentId: 'big', pauses: 1 });
    expect(await inFlight()).toEqual([]);
    clock.advance(15_000);
    platform.sqs.releaseDue();
    await until(() => delayedSends(30).length === jobs);
    expect(platform.sqs.deadLetters).toHaveLength(0);

    expect(
      (await call(platform, 'PATCH', '/admin/tenants/paused-co', { ...admin(), body: { status: 'active' } })).status,
    ).toBe(200);
    // Past the wait, and past any suspended decision the authorizer cached.
    clock.advance(Math.max(30, config.authorizerCacheTtlSeconds + 1) * 1000);
    platform.sqs.releaseDue();
    let document = queued.body;
    for (let i = 0; i < 500 && document.status !== 'indexed'; i++) {
      document = (await call(platform, 'GET', '/v1/documents/big', { credential: apiKey })).body;
    }
    expect(document).toMatchObject({ status: 'indexed', indexed_chunks: queued.body.chunks });
    // Each job billed once, each chunk embedded once (Titan takes one text per call).
    const usage = await call(platform, 'GET', '/v1/usage', { credential: apiKey });
    expect(usage.body.totals.requests).toBe(jobs);
    expect(platform.bedrock.requests.length - embeddingsBefore).toBe(queued.body.chunks);
    expect(platform.sqs.deadLetters).toHaveLength(0);
  });
});
