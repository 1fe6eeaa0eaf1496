import { chunkText } from '../../lambdas/core/retrieval';
import { countTokens } from '../../lambdas/core/tokens';
import corpus from '../fixtures/retrieval-corpus.json';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { fillerText } from '../support/text';

type Platform = Awaited<ReturnType<typeof startTestPlatform>>;
const retrieve = (platform: Platform, credential: string, query: string, topK = 3) =>
  call(platform, 'POST', '/v1/retrieve', { credential, body: { query, top_k: topK } });

describe('retrieval over HTTP against the local platform (local OpenSearch, local Titan embedder)', () => {
  let platform: Platform;
  const clock = new ManualClock();
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    // standard tenants get their own index; basic tenants share one
    for (const [id, tier] of [
      ['std-alpha', 'standard'],
      ['std-bravo', 'standard'],
      ['basic-alpha', 'basic'],
      ['basic-bravo', 'basic'],
    ] as const) {
      keys[id] = (await onboard(platform, id, { tier })).apiKey;
    }
    for (const tenant of ['std-alpha', 'basic-alpha']) {
      for (const document of corpus.documents) {
        const created = await call(platform, 'POST', '/v1/documents', { credential: keys[tenant], body: document });
        expect(created.status).toBe(201);
      }
    }
  });
  afterAll(() => platform.close());

  it.each(['std-alpha', 'basic-alpha'])(
    'finds the right document in the top 3 for at least 9 of 10 questions (%s)',
    async (tenant) => {
      let hits = 0;
      for (const { question, expected } of corpus.questions) {
        const answer = await retrieve(platform, keys[tenant], question);
        expect(answer.status).toBe(200);
        if (answer.body.data.some((passage: { document_id: string }) => passage.document_id === expected)) hits++;
      }
      expect(hits).toBeGreaterThanOrEqual(9);
    },
  );

  it.each([
    ['std-bravo', 'std-alpha'],
    ['basic-bravo', 'basic-alpha'],
  ])('never returns %s a chunk of %s, even for queries quoting it verbatim', async (attacker) => {
    for (const document of corpus.documents) {
      const answer = await retrieve(platform, keys[attacker], document.text, 50);
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual([]);
    }
    const chat = await call(platform, 'POST', '/v1/chat/completions', {
      credential: keys[attacker],
      body: {
        model: 'nova-micro',
        messages: [{ role: 'user', content: corpus.documents[0].text }],
        retrieval: { top_k: 5 },
      },
    });
    expect(chat.status).toBe(200);
    expect(chat.body.citations).toEqual([]);
  });

  it.each([
    ['std-bravo', 'std-alpha'],
    ['basic-bravo', 'basic-alpha'],
  ])('keeps ids crafted to collide apart: %s reusing an id of %s', async (attacker, victim) => {
    // GIVEN the attacker stores a document under the victim's id
    const own = await call(platform, 'POST', '/v1/documents', {
      credential: keys[attacker],
      body: { id: 'refunds', title: 'Mine', text: 'Attacker notes about refunds and returns.' },
    });
    expect(own.status).toBe(201);
    // THEN each sees only its own document under that id, and deleting the attacker's leaves the victim's
    expect((await call(platform, 'GET', '/v1/documents/refunds', { credential: keys[attacker] })).body.title).toBe(
      'Mine',
    );
    expect((await call(platform, 'GET', '/v1/documents/refunds', { credential: keys[victim] })).body.title).toBe(
      'Refund policy',
    );
    const deleted = await call(platform, 'DELETE', '/v1/documents/refunds', { credential: keys[attacker] });
    expect(deleted.body).toMatchObject({ deleted: true, chunks_deleted: 1 });
    const victimHits = await retrieve(platform, keys[victim], corpus.questions[0].question);
    expect(victimHits.body.data[0].document_id).toBe('refunds');
    // and the victim's other ids answer 404 to the attacker, like ids that exist nowhere
    expect((await call(platform, 'GET', '/v1/documents/shipping', { credential: keys[attacker] })).status).toBe(404);
    expect((await call(platform, 'DELETE', '/v1/documents/shipping', { credential: keys[attacker] })).status).toBe(404);
  });

  it('indexes a large document through the ingest queue and reports its status', async () => {
    const sends = platform.sqs.requests.length;
    // about 80 chunks: more than one job of 32, so the document is queued
    const words = fillerText(80 * 160 + 40, 'glacier');
    const chunks = chunkText(words, 200, 40).length;
    expect(Math.ceil(chunks / 32)).toBe(3);
    const queued = await call(platform, 'POST', '/v1/documents', {
      credential: keys['std-bravo'],
      body: { id: 'big', text: words },
    });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({
      id: 'big',
      status: 'queued',
      chunks,
      indexed_chunks: 0,
      status_url: '/v1/documents/big',
    });
    // the queue carries ids only; the chunks wait in the tenant's partition of the documents table
    const jobs = platform.sqs.requests.slice(sends).map((r) => JSON.parse(String(r.MessageBody)));
    expect(jobs.map((job) => job.batch)).toEqual([0, 1, 2]);
    expect(Object.keys(jobs[0]).sort()).toEqual([
      'batch',
      'documentId',
      'principal',
      'requestId',
      'tenantId',
      'version',
    ]);
    expect(jobs[0]).toMatchObject({ documentId: 'big', tenantId: 'std-bravo' });
    expect(JSON.stringify(jobs)).not.toContain('glacier');
    let status = queued.body;
    // the in-process worker runs between requests: ask until it is done, no timer involved
    for (let i = 0; i < 500 && status.status !== 'indexed'; i++) {
      status = (await call(platform, 'GET', '/v1/documents/big', { credential: keys['std-bravo'] })).body;
    }
    expect(status).toMatchObject({ status: 'indexed', indexed_chunks: chunks });
    const bravo = { ...(await platform.deps.registry.getTenant('std-bravo')), principal: jobs[0].principal };
    for (const job of jobs) expect(await platform.deps.documents.getJob(bravo as never, job)).toBeUndefined();
    expect(platform.sqs.deadLetters).toEqual([]);
    const hits = await retrieve(platform, keys['std-bravo'], 'glacier', 50);
    expect(hits.body.data.filter((p: { document_id: string }) => p.document_id === 'big').length).toBeGreaterThan(30);
    expect(
      (await call(platform, 'DELETE', '/v1/documents/big', { credential: keys['std-bravo'] })).body.chunks_deleted,
    ).toBe(chunks);
  });

  it('removes every chunk of a deleted document', async () => {
    const long = Array.from({ length: 60 }, (_, i) => `Paragraph ${i} about the orbital mechanics of comet ${i}.`).join(
      ' ',
    );
    const created = await call(platform, 'POST', '/v1/documents', {
      credential: keys['std-bravo'],
      body: { id: 'comets', text: long },
    });
    expect(created.body.chunks).toBeGreaterThan(2);
    const before = await retrieve(platform, keys['std-bravo'], 'orbital mechanics of comets', 50);
    expect(before.body.data.filter((p: { document_id: string }) => p.document_id === 'comets')).toHaveLength(
      created.body.chunks,
    );
    const deleted = await call(platform, 'DELETE', '/v1/documents/comets', { credential: keys['std-bravo'] });
    expect(deleted.body.chunks_deleted).toBe(created.body.chunks);
    const after = await retrieve(platform, keys['std-bravo'], 'orbital mechanics of comets', 50);
    expect(after.body.data.filter((p: { document_id: string }) => p.document_id === 'comets')).toEqual([]);
  });

  it('answers a chat from the documents with numbered citations, and meters the embedding tokens', async () => {
    const chat = await call(platform, 'POST', '/v1/chat/completions', {
      credential: keys['std-alpha'],
      body: {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'When does the password reset link expire?' }],
        retrieval: { top_k: 2 },
      },
    });
    expect(chat.status).toBe(200);
    expect(chat.body.citations[0]).toMatchObject({ index: 1, document_id: 'password', chunk: 0 });
    expect(chat.body.choices[0].message.content).toContain('[1]');
    const usage = await call(platform, 'GET', '/v1/usage?group_by=model', { credential: keys['std-alpha'] });
    const models = Object.fromEntries(usage.body.data.map((line: { model: string }) => [line.model, line]));
    expect(models['titan-embed-text-v2'].input_tokens).toBeGreaterThan(0);
    expect(models['titan-embed-text-v2'].output_tokens).toBe(0);
    expect(models['nova-micro'].requests).toBe(1);
  });

  it('lists documents with pagination and serves OpenAI-shaped embeddings', async () => {
    const first = await call(platform, 'GET', '/v1/documents?limit=4', { credential: keys['std-alpha'] });
    const second = await call(platform, 'GET', `/v1/documents?limit=10&cursor=${first.body.next_cursor}`, {
      credential: keys['std-alpha'],
    });
    const ids = [...first.body.data, ...second.body.data].map((d: { id: string }) => d.id);
    expect(new Set(ids)).toEqual(new Set(corpus.documents.map((d) => d.id)));
    const embeddings = await call(platform, 'POST', '/v1/embeddings', {
      credential: keys['basic-bravo'],
      body: { model: 'titan-embed-text-v2', input: ['first text', 'second text'] },
    });
    expect(embeddings.body).toMatchObject({ object: 'list', data: [{ object: 'embedding', index: 0 }, { index: 1 }] });
    expect(embeddings.body.data[0].embedding).toHaveLength(1024);
    expect(embeddings.body.usage.prompt_tokens).toBe(countTokens('first text') + countTokens('second text'));
  });

  it('deletes the index (standard) or the chunks in the shared index (basic) when a tenant is offboarded', async () => {
    const standard = await offboardCompletely(platform, clock, 'std-alpha');
    expect(standard.offboarding.deleted).toMatchObject({ documents: 10, chunks: 10 });
    const basic = await offboardCompletely(platform, clock, 'basic-alpha');
    expect(basic.offboarding.deleted).toMatchObject({ documents: 10, chunks: 10 });
    // the other basic tenant's chunks in the shared index are untouched
    const stillThere = await call(platform, 'POST', '/v1/documents', {
      credential: keys['basic-bravo'],
      body: { id: 'kept', text: 'A note about lighthouse maintenance schedules.' },
    });
    expect(stillThere.status).toBe(201);
    expect((await retrieve(platform, keys['basic-bravo'], 'lighthouse maintenance')).body.data[0].document_id).toBe(
      'kept',
    );
  });
});
