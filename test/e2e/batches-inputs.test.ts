import OpenAI, { toFile } from 'openai';
import { runBatchStep } from '../../lambdas/core/batches';
import { modelDeps } from '../../lambdas/runtime';
import { chatLines } from '../support/batches';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

/** What `/v1/batches` answers to inputs it must refuse: a 4xx in the error shape, never a 5xx. */
describe('batch inputs', () => {
  const clock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now, ingestWorker: false });
  });
  afterAll(() => platform.close());

  it('admits lines that name one of the tenant’s routes against the month like the models it routes to', async () => {
    const { apiKey } = await onboard(platform, 'inputs-routed', { limits: { monthlyTokens: 10_000 } });
    const routes = { cheap: { targets: [{ model: 'nova-micro' }] } };
    const routed = await call(platform, 'PUT', '/admin/tenants/inputs-routed/routing', {
      credential: platform.operatorToken,
      body: { routes },
    });
    expect(routed.status).toBe(200);
    const openai = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
    // One line of the model itself, 399 through the route: the batch is as large as 400 of the model's.
    const rows = chatLines(400, 'cheap').split('\n');
    rows[0] = rows[0].replace('"cheap"', '"nova-micro"');
    const input = await openai.files.create({
      file: await toFile(Buffer.from(rows.join('\n')), 'lines.jsonl'),
      purpose: 'batch',
    });
    const refused = await openai.batches
      .create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((error: { status: number; message: string }) => error);
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as { message: string }).message).toMatch(/monthly limit is 10000/);
  });

  it('admits a batch whose every line names a model there is not, and fails each line alone, unbilled', async () => {
    const { apiKey } = await onboard(platform, 'inputs-unknown');
    const openai = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
    const input = await openai.files.create({
      file: await toFile(Buffer.from(chatLines(3, 'no-such-model')), 'lines.jsonl'),
      purpose: 'batch',
    });
    const created = await openai.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const ref = { kind: 'batch' as const, tenantId: 'inputs-unknown', batchId: created.id };
    const deps = { ...modelDeps(platform.deps), siloTenantId: platform.deps.settings.siloTenantId };
    expect(await runBatchStep(deps, ref, () => 600_000)).toBe('ended');
    expect(await openai.batches.retrieve(created.id)).toMatchObject({
      status: 'completed',
      request_counts: { total: 3, completed: 0, failed: 3 },
    });
    expect((await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals.requests).toBe(0);
  });

  it('answers every malformed request with a 4xx in the error shape', async () => {
    const { apiKey } = await onboard(platform, 'inputs-bad');
    const openai = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
    const input = await openai.files.create({
      file: await toFile(Buffer.from(chatLines(2, 'nova-micro')), 'lines.jsonl'),
      purpose: 'batch',
    });
    const create = (body: unknown) => ({ method: 'POST', path: '/v1/batches', body });
    const valid = { input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' };
    const requests: { method: string; path: string; body?: unknown; rawBody?: string }[] = [
      create({ ...valid, input_file_id: 5 }),
      create({ ...valid, input_file_id: 'file-../x' }),
      create({ ...valid, endpoint: '/v1/responses' }),
      create({ ...valid, metadata: { a: 1 } }),
      create({ ...valid, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }),
      create({ ...valid, metadata: { ['k'.repeat(65)]: 'v' } }),
      create({ ...valid, metadata: { k: 'v'.repeat(513) } }),
      create({ ...valid, metadata: [] }),
      create({ ...valid, extra: true }),
      create([]),
      create(null),
      { method: 'POST', path: '/v1/batches', rawBody: '{"input_file_id":' },
      { method: 'GET', path: '/v1/batches?after=batch_../x' },
      { method: 'GET', path: '/v1/batches?after=file-abc' },
      { method: 'GET', path: '/v1/batches?after=' },
      { method: 'GET', path: '/v1/batches?limit=0' },
      { method: 'GET', path: '/v1/batches?limit=1e400' },
      { method: 'GET', path: '/v1/batches?limit=abc' },
      { method: 'GET', path: '/v1/batches?cursor=x' },
      { method: 'GET', path: '/v1/batches/batch_..%2Fx' },
      { method: 'GET', path: `/v1/batches/batch_${'a'.repeat(65)}` },
      { method: 'GET', path: '/v1/batches/%ZZ' },
      { method: 'POST', path: '/v1/batches/batch_..%2Fx/cancel' },
      { method: 'POST', path: '/v1/batches/batch_nosuch/cancel' },
    ];
    const answers = [];
    for (const request of requests) {
      const answer = await call(platform, request.method, request.path, {
        credential: apiKey,
        ...(request.body !== undefined && { body: request.body }),
        ...(request.rawBody !== undefined && { rawBody: request.rawBody }),
      });
      answers.push({ request, status: answer.status, code: answer.body?.error?.code });
    }
    for (const answer of answers) {
      expect({ request: answer.request, ok: answer.status >= 400 && answer.status < 500 && !!answer.code }).toEqual({
        request: answer.request,
        ok: true,
      });
    }
  });
});
