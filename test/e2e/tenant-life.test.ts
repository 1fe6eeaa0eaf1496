import type { SQSEvent } from 'aws-lambda';
import { deleteDocument, indexQueuedJob, ingestDocument } from '../../lambdas/core/documents';
import { monthKey } from '../../lambdas/core/limits';
import type { IngestJobRef } from '../../lambdas/core/ports';
import type { TenantContext } from '../../lambdas/core/tenant';
import { create as createIngestWorker } from '../../lambdas/handlers/ingest-worker';
import { create as createOffboardingSteps } from '../../lambdas/handlers/offboarding';
import { modelDeps } from '../../lambdas/runtime';
import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import { lambdaContext } from '../../local/lambda-context';
import { ledgerState } from '../support/ledger';
import { call, localDynamoDb, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';
import { fillerText } from '../support/text';

/**
 * A tenant walked through its life over HTTP: tier changes, offboarding with credentials still
 * cached, queued jobs delivered late, upserts that fail, tokens that expire. Time is a manual clock:
 * the suite steps past cache TTLs and the offboarding drain instead of waiting for them.
 */
const CACHE_TTL_SECONDS = 300;
const defaults = platformConfig();
/** The standard tier on OpenSearch, the others on S3 Vectors: a tier change moves a tenant between stores. */
const config = {
  ...defaults,
  authorizerCacheTtlSeconds: CACHE_TTL_SECONDS,
  retrieval: {
    ...defaults.retrieval,
    vectorStores: { basic: 's3vectors', standard: 'opensearch', enterprise: 's3vectors' } as const,
  },
};
const DRAIN_MS = offboardingDrainSeconds(config) * 1000;
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'status?' }], max_tokens: 8 };

describe('a tenant across its life', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  const admin = (method: string, path: string, body?: unknown) =>
    call(platform, method, path, { credential: platform.operatorToken, body });
  /** Documents whose retrieved passages quote `word`: the nearest passages, kept only where they hold it. */
  const documentIds = async (credential: string, word: string) =>
    (await call(platform, 'POST', '/v1/retrieve', { credential, body: { query: word, top_k: 50 } })).body.data
      .filter((passage: { text: string }) => passage.text.includes(word))
      .map((passage: { document_id: string }) => passage.document_id);
  const tenantOf = async (id: string): Promise<TenantContext> => {
    const record = await platform.deps.registry.getTenant(id);
    if (!record) throw new Error(`no tenant ${id}`);
    const { tier, limits, placements, auditPrompts } = record;
    return { tenantId: id, tier, limits, placements, auditPrompts, principal: { type: 'api_key', id: 'test' } };
  };

  beforeAll(async () => {
    platform = await startTestPlatform(config, { now: clock.now });
  });
  afterAll(() => platform.close());

  it('a tier change keeps every chunk reachable, across stores: search, delete and offboarding cover all placements', async () => {
    const { apiKey } = await onboard(platform, 'tier-co', { tier: 'standard' });
    const ingest = (id: string, text: string) =>
      call(platform, 'POST', '/v1/documents', { credential: apiKey, body: { id, text } });
    expect((await ingest('aurora', 'The aurora manual explains aurora lights.')).status).toBe(201);
    expect((await admin('PATCH', '/admin/tenants/tier-co', { tier: 'basic' })).body.placements).toEqual([
      's3vectors/t-tier-co',
      't-tier-co',
    ]);
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    expect((await ingest('borealis', 'The borealis guide covers borealis nights.')).status).toBe(201);
    expect(await documentIds(apiKey, 'aurora')).toContain('aurora');
    expect(await documentIds(apiKey, 'borealis')).toContain('borealis');

    // deleted while basic, from the standard index it was written to: it does not come back
    expect((await call(platform, 'DELETE', '/v1/documents/aurora', { credential: apiKey })).body).toMatchObject({
      chunks_deleted: 1,
    });
    await admin('PATCH', '/admin/tenants/tier-co', { tier: 'standard' });
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    expect(await documentIds(apiKey, 'aurora')).not.toContain('aurora');
    expect(await documentIds(apiKey, 'borealis')).toContain('borealis');

    const tombstone = await offboardCompletely(platform, clock, 'tier-co');
    expect(tombstone).toMatchObject({ status: 'offboarded', offboarding: { deleted: { chunks: 1, documents: 1 } } });
    const everyPlacement = { ...(await tenantOf('tier-co')), placements: ['s3vectors/t-tier-co', 't-tier-co'] };
    expect(
      await platform.deps.vectors.search(everyPlacement, { vector: new Array(1024).fill(0.03), topK: 10 }),
    ).toEqual([]);
    expect((await admin('POST', '/admin/tenants', { id: 'tier-co', tier: 'standard' })).status).toBe(409);
  });

  it("reindexes a tenant into its tier's store: every current chunk moves, the other index goes from its record", async () => {
    const { apiKey } = await onboard(platform, 'moving-co', { tier: 'standard' });
    const ingest = (id: string, text: string) =>
      call(platform, 'POST', '/v1/documents', { credential: apiKey, body: { id, text } });
    const glacier = await ingest('glacier', 'The glacier notes describe glacier ice.');
    expect(glacier.status).toBe(201);
    expect((await ingest('stale', 'A stale glacier draft.')).status).toBe(201);
    await admin('PATCH', '/admin/tenants/moving-co', { tier: 'basic' });
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    const fjord = await ingest('fjord', 'The fjord notes describe fjord water.');
    expect(fjord.status).toBe(201);
    expect((await call(platform, 'DELETE', '/v1/documents/stale', { credential: apiKey })).status).toBe(200);

    const reindexed = await admin('POST', '/admin/tenants/moving-co/reindex');
    expect(reindexed.status).toBe(200);
    expect(reindexed.body).toMatchObject({ placements: ['s3vectors/t-moving-co'], dropped: ['t-moving-co'] });
    expect(reindexed.body.moved_chunks).toBe(glacier.body.chunks + fjord.body.chunks);
    expect(await documentIds(apiKey, 'glacier')).toContain('glacier');
    expect(await documentIds(apiKey, 'fjord')).toContain('fjord');
    // The OpenSearch index is gone; a second run finds nothing to move.
    const own = { ...(await tenantOf('moving-co')), placements: ['t-moving-co'], tier: 'standard' as const };
    expect(await platform.deps.vectors.exportChunks(own)).toEqual({ chunks: [] });
    const again = await admin('POST', '/admin/tenants/moving-co/reindex');
    expect(again.body).toMatchObject({ moved_chunks: 0, dropped: [] });
  });

  it('offboarding waits out cached credentials, deletes what they wrote meanwhile, and the id is never reused', async () => {
    const { apiKey } = await onboard(platform, 'leaving-co', { tier: 'standard' });
    expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    // a file it uploaded, in its prefix of the files bucket
    const file = { id: 'file-leaving', filename: 'input.jsonl', purpose: 'batch' } as const;
    await platform.deps.files.put(tenantContext('leaving-co'), file, new Uint8Array(Buffer.from('{}\n')));

    const started = await admin('DELETE', '/admin/tenants/leaving-co');
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ status: 'offboarding', status_url: '/admin/tenants/leaving-co' });
    expect(Date.parse(started.body.offboarding.drain_until) - Date.parse(started.body.offboarding.requested_at)).toBe(
      DRAIN_MS,
    );
    // joining is harmless; changing a tenant on its way out is a conflict
    expect((await admin('DELETE', '/admin/tenants/leaving-co')).body.offboarding).toEqual(started.body.offboarding);
    expect((await admin('PATCH', '/admin/tenants/leaving-co', { status: 'active' })).status).toBe(409);
    expect((await admin('POST', '/admin/tenants/leaving-co/api-keys')).status).toBe(409);

    // the key's decision is still cached: it chats and ingests during the drain...
    expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    const late = await call(platform, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'late', text: 'Written by a cached credential after offboarding began.' },
    });
    expect(late.status).toBe(201);
    // ...while a credential the authorizer has not seen is refused at once
    const token = await platform.issuer.mint({ tenantId: 'leaving-co', userId: 'alice' });
    expect((await call(platform, 'GET', '/v1/usage', { credential: token })).status).toBe(403);

    await platform.offboarding.runDue();
    expect((await admin('GET', '/admin/tenants/leaving-co')).body.status).toBe('offboarding');
    clock.advance(DRAIN_MS + 1000);
    await platform.offboarding.runDue();
    const tombstone = (await admin('GET', '/admin/tenants/leaving-co')).body;
    expect(tombstone).toMatchObject({
      status: 'offboarded',
      offboarding: {
        deleted: { chunks: 1, documents: 1, audit_records: 3, ledger_items: 2, files: 1, api_keys: 1 },
        completed_at: expect.any(String),
      },
    });

    // what the cached credential wrote is gone with the rest; the key names no one
    const leaving = await tenantOf('leaving-co');
    expect((await platform.deps.documents.list(leaving, { limit: 10 })).records).toEqual([]);
    expect((await platform.deps.audit.list(leaving, { limit: 10 })).entries).toEqual([]);
    expect(await platform.deps.ledger.usage(leaving, { from: '2000-01-01', to: '2100-12-31' })).toEqual([]);
    expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(401);
    const again = await admin('POST', '/admin/tenants', { id: 'leaving-co' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'conflict', message: expect.stringMatching(/never reused/) });
  });

  it('offboarding that crashes mid-purge resumes with exact counts, and running a step twice is harmless', async () => {
    const { apiKey } = await onboard(platform, 'crashy-co', { tier: 'basic' });
    await call(platform, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'one', text: 'Crash test text.' },
    });
    expect((await admin('DELETE', '/admin/tenants/crashy-co')).status).toBe(202);
    clock.advance(DRAIN_MS + 1000);
    const crash = jest.spyOn(platform.deps.audit, 'deleteAll').mockRejectedValueOnce(new Error('killed'));
    await platform.offboarding.runDue();
    crash.mockRestore();
    const halfway = (await admin('GET', '/admin/tenants/crashy-co')).body;
    expect(halfway).toMatchObject({ status: 'offboarding', offboarding: { deleted: { chunks: 1, documents: 1 } } });
    expect(halfway.offboarding.deleted.audit_records).toBeUndefined();

    await platform.offboarding.runDue();
    const done = (await admin('GET', '/admin/tenants/crashy-co')).body;
    expect(done).toMatchObject({
      status: 'offboarded',
      offboarding: { deleted: { chunks: 1, documents: 1, audit_records: 1, ledger_items: 2, api_keys: 1 } },
    });
    const steps = createOffboardingSteps(platform.deps);
    await steps({ step: 'purge', tenantId: 'crashy-co' }, lambdaContext());
    await steps({ step: 'tombstone', tenantId: 'crashy-co' }, lambdaContext());
    expect((await admin('GET', '/admin/tenants/crashy-co')).body).toEqual(done);
    expect((await admin('DELETE', '/admin/tenants/crashy-co')).status).toBe(200);
  });

  describe('queued ingest does not trust its snapshot', () => {
    /** Three ingest jobs' worth of text. */
    const bigText = (marker: string) => fillerText(80 * 160 + 40, marker);
    let apiKey: string;
    let worker: ReturnType<typeof createIngestWorker>;
    /** Delivers a job again, as SQS does after a timeout or to a late consumer. */
    const redeliver = (body: string) =>
      worker({ Records: [{ messageId: 'again', body }] } as SQSEvent, lambdaContext());
    const waitIndexed = async (id: string) => {
      for (let i = 0; i < 200; i++) {
        const status = (await call(platform, 'GET', `/v1/documents/${id}`, { credential: apiKey })).body;
        if (status.status === 'indexed') return status;
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error(`${id} was not indexed`);
    };
    const monthTokens = async () =>
      (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.data.reduce(
        (sum: number, row: { input_tokens: number }) => sum + row.input_tokens,
        0,
      );
    const jobsOf = (documentId: string) =>
      platform.sqs.requests
        .map((request) => String(request.MessageBody))
        .filter((body) => (JSON.parse(body) as IngestJobRef).documentId === documentId);

    const monthItem = (tenantId: string) =>
      ledgerState(localDynamoDb(platform).scoped(tenantId), tenantId, monthKey(clock.now()));

    beforeAll(async () => {
      ({ apiKey } = await onboard(platform, 'queue-co', { tier: 'standard' }));
      worker = createIngestWorker(platform.deps);
    });

    it('a redelivered job is neither indexed nor billed again; a stale or deleted version is dropped', async () => {
      expect(
        (
          await call(platform, 'POST', '/v1/documents', {
            credential: apiKey,
            body: { id: 'big', text: bigText('glacier') },
          })
        ).status,
      ).toBe(202);
      const indexed = await waitIndexed('big');
      expect(indexed.indexed_chunks).toBe(indexed.chunks);
      const jobs = jobsOf('big');
      expect(jobs).toHaveLength(3);
      const billed = await monthTokens();

      expect(await redeliver(jobs[0])).toEqual({ batchItemFailures: [] });
      expect(await monthTokens()).toBe(billed);
      expect((await call(platform, 'GET', '/v1/documents/big', { credential: apiKey })).body.indexed_chunks).toBe(
        indexed.chunks,
      );

      // replaced by a small version: the old version's chunks go, and its late job writes nothing
      const small = await call(platform, 'POST', '/v1/documents', {
        credential: apiKey,
        body: { id: 'big', text: 'Now a short note about fjords.' },
      });
      expect(small.status).toBe(201);
      const afterUpsert = await monthTokens();
      await redeliver(jobs[1]);
      expect(await monthTokens()).toBe(afterUpsert);
      expect(await documentIds(apiKey, 'glacier')).not.toContain('big');
      expect(await documentIds(apiKey, 'fjords')).toContain('big');

      expect((await call(platform, 'DELETE', '/v1/documents/big', { credential: apiKey })).status).toBe(200);
      await redeliver(jobs[2]);
      expect(await documentIds(apiKey, 'glacier')).not.toContain('big');
      expect((await call(platform, 'GET', '/v1/documents/big', { credential: apiKey })).status).toBe(404);
    });

    it('a redelivery of a job done before is dropped, unbilled, while its tenant is suspended', async () => {
      await call(platform, 'POST', '/v1/documents', {
        credential: apiKey,
        body: { id: 'late', text: bigText('tundra') },
      });
      await waitIndexed('late');
      await call(platform, 'DELETE', '/v1/documents/late', { credential: apiKey });
      const billed = await monthTokens();
      await admin('PATCH', '/admin/tenants/queue-co', { status: 'suspended' });
      const tenant = await tenantOf('queue-co');
      const job = JSON.parse(jobsOf('late')[0]) as IngestJobRef;
      expect(await indexQueuedJob({ ...modelDeps(platform.deps) }, job)).toBe('dropped: tenant not active');
      await admin('PATCH', '/admin/tenants/queue-co', { status: 'active' });
      expect(await monthTokens()).toBe(billed);
      expect(await platform.deps.vectors.search(tenant, { vector: new Array(1024).fill(0.03), topK: 50 })).toEqual(
        expect.not.arrayContaining([expect.objectContaining({ documentId: 'late' })]),
      );
    });

    it('reserves a queued document at upload: 429 when over the limit, nothing queued, nothing held', async () => {
      const { apiKey: tightKey } = await onboard(platform, 'tight-co', { tier: 'standard' });
      const small = await call(platform, 'POST', '/v1/documents', {
        credential: tightKey,
        body: { id: 'small', text: 'One short note.' },
      });
      const used = small.body.tokens;
      // room for one job of the large document, not for all three
      await admin('PATCH', '/admin/tenants/tight-co', { limits: { monthlyTokens: used + 8000 } });
      clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
      const sends = platform.sqs.requests.length;
      const refused = await call(platform, 'POST', '/v1/documents', {
        credential: tightKey,
        body: { id: 'huge', text: bigText('steppe') },
      });
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('quota_exceeded');
      expect(platform.sqs.requests.length).toBe(sends);
      expect((await call(platform, 'GET', '/v1/documents/huge', { credential: tightKey })).status).toBe(404);
      const month = await monthItem('tight-co');
      expect(month.inFlight).toEqual([]);
      expect(month.tok).toBe(used);
    });

    it("a suspended tenant's queued job waits, its reservation given back, and runs once it is back", async () => {
      const tenant = await tenantOf('queue-co');
      const queued: { ref: IngestJobRef; delaySeconds?: number }[] = [];
      const deps = {
        ...modelDeps(platform.deps),
        queue: {
          enqueue: async (refs: readonly IngestJobRef[], options: { delaySeconds?: number } = {}) =>
            void queued.push(...refs.map((ref) => ({ ref, delaySeconds: options.delaySeconds }))),
        },
      };
      const before = await monthItem('queue-co');
      await ingestDocument(deps, tenant, { id: 'held', text: bigText('savanna') }, { requestId: 'req-held' });
      expect(queued).toHaveLength(3);
      const reserved = await monthItem('queue-co');
      expect(reserved.inFlight).toEqual(['req-held:0', 'req-held:1', 'req-held:2']);
      expect(reserved.tok).toBeGreaterThan(before.tok);

      await admin('PATCH', '/admin/tenants/queue-co', { status: 'suspended' });
      for (const { ref } of queued.splice(0)) {
        expect(await indexQueuedJob(deps, ref)).toBe('paused: tenant suspended');
      }
      expect(queued.map(({ ref, delaySeconds }) => [ref.batch, ref.pauses, delaySeconds])).toEqual([
        [0, 1, 15],
        [1, 1, 15],
        [2, 1, 15],
      ]);
      const paused = await monthItem('queue-co');
      expect(paused.inFlight).toEqual([]);
      expect(paused.tok).toBe(before.tok);
      expect(await platform.deps.documents.getJob(tenant, queued[0].ref)).not.toHaveProperty('reservation');

      await admin('PATCH', '/admin/tenants/queue-co', { status: 'active' });
      const resumed = queued.splice(0);
      for (const { ref } of resumed) expect(await indexQueuedJob(deps, ref)).toBe('indexed');
      expect(await platform.deps.documents.get(tenant, 'held')).toMatchObject({ status: 'indexed' });
      expect(await platform.deps.documents.getJob(tenant, resumed[0].ref)).toBeUndefined();
      // Admitted afresh when it ran, and settled: billed once.
      const billed = await monthItem('queue-co');
      expect(billed.inFlight).toEqual([]);
      expect(billed.tok).toBeGreaterThan(before.tok);
    });

    it('a delete while a job indexes wins: the job removes what it wrote', async () => {
      await call(platform, 'POST', '/v1/documents', {
        credential: apiKey,
        body: { id: 'racing', text: bigText('mesa') },
      });
      await waitIndexed('racing');
      const tenant = await tenantOf('queue-co');
      const stale = JSON.parse(jobsOf('racing')[1]) as IngestJobRef;
      // a fresh version whose first job is in flight when the tenant deletes the document
      await call(platform, 'POST', '/v1/documents', {
        credential: apiKey,
        body: { id: 'racing', text: bigText('mesa') },
      });
      await waitIndexed('racing');
      const current = await platform.deps.documents.get(tenant, 'racing');
      const inFlight = { ...stale, version: current?.version ?? '', batch: 99 };
      await platform.deps.documents.putJobs(tenant, [
        { ...inFlight, chunks: [{ chunk: 99, text: 'mesa chunk in flight' }] },
      ]);
      const deps = modelDeps(platform.deps);
      const vectors = Object.assign(Object.create(deps.vectors), {
        addChunks: async (...args: Parameters<typeof deps.vectors.addChunks>) => {
          await deps.vectors.addChunks(...args);
          await deleteDocument(deps, tenant, 'racing');
        },
      });
      expect(await indexQueuedJob({ ...deps, vectors }, inFlight)).toBe('dropped: stale version');
      expect(await documentIds(apiKey, 'mesa')).not.toContain('racing');
      expect((await call(platform, 'GET', '/v1/documents/racing', { credential: apiKey })).status).toBe(404);
    });
  });

  it('a refused or blank upsert leaves the previous version retrievable', async () => {
    const { apiKey } = await onboard(platform, 'upsert-co', { tier: 'standard' });
    const upsert = (text: string) =>
      call(platform, 'POST', '/v1/documents', { credential: apiKey, body: { id: 'policy', title: 'v1', text } });
    const original = `Returns are accepted within thirty days. ${'Keep the receipt. '.repeat(20)}`;
    expect((await upsert(original)).status).toBe(201);
    expect((await upsert('   ')).status).toBe(400);
    // room for a small request, but not once the first document is counted: refused by the quota
    const used = (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.data[0].input_tokens;
    await admin('PATCH', '/admin/tenants/upsert-co', { limits: { monthlyTokens: used + 5 } });
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    const refused = await upsert('Returns are no longer accepted.');
    expect(refused.status).toBe(429);
    const tenant = await tenantOf('upsert-co');
    const hits = await platform.deps.vectors.search(tenant, { vector: new Array(1024).fill(0.03), topK: 5 });
    expect(hits.map((hit) => hit.text)).toEqual([original.trim()]);
    expect((await call(platform, 'GET', '/v1/documents/policy', { credential: apiKey })).body.title).toBe('v1');
  });

  it('admission counts what a real tokenizer would: text without spaces is not one token', async () => {
    const { apiKey } = await onboard(platform, 'cjk-co', { limits: { tokensPerMinute: 100 } });
    // 100,000 CJK characters: about 100,000 tokens on Bedrock, once admitted as 1
    const chat = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages: [{ role: 'user', content: '客'.repeat(100_000) }], max_tokens: 8 },
    });
    expect(chat.status).toBe(400);
    expect(chat.body.error.message).toMatch(/tokens but your limit is 100/);
    // a 40,000-character base64 string is far over one embedding input's 8,192 tokens
    const embedding = await call(platform, 'POST', '/v1/embeddings', {
      credential: apiKey,
      body: { model: 'titan-embed-text-v2', input: Buffer.alloc(30_000, 7).toString('base64') },
    });
    expect(embedding.status).toBe(400);
    expect(embedding.body.error.message).toMatch(/8192 tokens/);
    // 60,000 characters in 4,000 tokens: under the token limit, over Titan's 50,000 characters
    const wordy = await call(platform, 'POST', '/v1/embeddings', {
      credential: apiKey,
      body: { model: 'titan-embed-text-v2', input: ' recommendations'.repeat(3_750) },
    });
    expect(wordy.status).toBe(400);
    expect(wordy.body.error.message).toMatch(/50000 characters/);
    expect((await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals.requests).toBe(0);
  });

  it('basic tenants cannot change the shared index for each other with their metadata', async () => {
    const { apiKey: first } = await onboard(platform, 'meta-one');
    const { apiKey: second } = await onboard(platform, 'meta-two');
    const post = (credential: string, id: string, metadata: Record<string, string | number | boolean>) =>
      call(platform, 'POST', '/v1/documents', {
        credential,
        body: { id, text: `Harbour report ${id}.`, metadata },
      });
    expect((await post(first, 'typed', { year: 2024, audited: true })).status).toBe(201);
    expect((await post(second, 'typed', { year: 'unknown', audited: 'pending' })).status).toBe(201);
    const filtered = async (credential: string, filter: Record<string, string | number | boolean>) =>
      (
        await call(platform, 'POST', '/v1/retrieve', { credential, body: { query: 'harbour report', filter } })
      ).body.data.map((passage: { document_id: string }) => passage.document_id);
    expect(await filtered(first, { year: 2024 })).toEqual(['typed']);
    expect(await filtered(second, { year: 'unknown' })).toEqual(['typed']);
    expect(await filtered(second, { year: 2024 })).toEqual([]);
  });

  it('an expired JWT is refused even while its authorizer decision is cached', async () => {
    await onboard(platform, 'jwt-co');
    // expiring 60 s from now on the suite's clock, which earlier cases moved ahead of the wall clock
    const expiresInSeconds = Math.round((clock.now() - Date.now()) / 1000) + 60;
    const token = await platform.issuer.mint({ tenantId: 'jwt-co', userId: 'bob', expiresInSeconds });
    expect((await call(platform, 'GET', '/v1/usage', { credential: token })).status).toBe(200);
    clock.advance(61_000);
    const expired = await call(platform, 'GET', '/v1/usage', { credential: token });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('unauthenticated');
  });
});
