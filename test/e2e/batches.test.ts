import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { MAX_INLINE_CONTENT_BYTES } from '../../contract/files';
import { atBatchPrices, costNanoUsd, resolveModel } from '../../lambdas/core/catalog';
import { startLocalPlatform } from '../../local/platform';
import { chatLines, jsonLines } from '../support/batches';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/** OpenAI's batches through the official SDK: run off the request path, billed once at batch prices, each tenant's own. */
describe('batches', () => {
  // A clock that stands still: the runner's minute turns over only when a test moves it.
  const clock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
  });
  afterAll(() => platform.close());

  const client = (apiKey: string) => new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
  const upload = async (openai: OpenAI, text: string) =>
    openai.files.create({ file: await toFile(Buffer.from(text), 'lines.jsonl'), purpose: 'batch' });
  /**
   * Reads the batch until it reaches a status that ends it (the worker runs beside the test, on its
   * own), delivering each step whose wait the clock has passed: a step may queue its wait just after
   * the test moved the clock.
   */
  const settled = async (openai: OpenAI, id: string, until: readonly string[] = ['completed']) => {
    for (let read = 0; read < 20_000; read++) {
      const batch = await openai.batches.retrieve(id);
      if (until.includes(batch.status) || ['failed', 'expired', 'cancelled', 'completed'].includes(batch.status)) {
        return batch;
      }
      platform.sqs.releaseDue();
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error(`batch ${id} never ended`);
  };

  it('runs a 1,000-line batch with the stock SDK: output file, exact bill at batch prices, nothing for another tenant', async () => {
    const { apiKey } = await onboard(platform, 'batch-acme', {
      limits: { requestsPerMinute: 10_000, tokensPerMinute: 2_000_000 },
    });
    const { apiKey: otherKey } = await onboard(platform, 'batch-globex');
    const acme = client(apiKey);
    const globex = client(otherKey);
    const input = await upload(acme, chatLines(1000));

    const { data: created, request_id: requestId } = await acme.batches
      .create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { job: 'nightly' },
      })
      .withResponse();
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      input_file_id: input.id,
      request_counts: { total: 1000, completed: 0, failed: 0 },
      metadata: { job: 'nightly' },
      output_file_id: null,
    });
    // 1,000 plain lines of one model: one Bedrock batch inference job. Once Bedrock (locally: at once)
    // ran it, the runner's next look, a minute on, collects its output.
    const acmeTenant = { tenantId: 'batch-acme' } as Parameters<typeof platform.deps.batches.get>[0];
    let arn: string | undefined;
    for (let turn = 0; turn < 50_000 && !arn; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      arn = (await platform.deps.batches.get(acmeTenant, created.id))?.job?.arn;
    }
    const jobs = platform.bedrock.requests.filter((request) => request.path === '/model-invocation-job');
    expect(jobs).toEqual([
      expect.objectContaining({
        method: 'POST',
        body: expect.objectContaining({
          jobName: created.id.replace('_', '-'),
          modelId: 'amazon.nova-micro-v1:0',
          tags: [{ key: 'tenantId', value: 'batch-acme' }],
          inputDataConfig: {
            s3InputDataConfig: {
              s3Uri: expect.stringMatching(new RegExp(`^s3://[^/]+/batch-acme/parts/${created.id}/job/input.jsonl$`)),
              s3InputFormat: 'JSONL',
            },
          },
        }),
      }),
    ]);
    const inference = platform.deps.batchInference as NonNullable<typeof platform.deps.batchInference>;
    for (let turn = 0; turn < 50_000 && (await inference.state(arn as string)).status !== 'Completed'; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    clock.advance(61_000);
    platform.sqs.releaseDue();
    const done = await settled(acme, created.id);

    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 1000, completed: 1000, failed: 0 } });
    expect(done.completed_at).toEqual(expect.any(Number));
    expect(done.error_file_id).toBeNull();

    const output = jsonLines(await (await acme.files.content(done.output_file_id as string)).text());
    expect(output).toHaveLength(1000);
    expect(new Set(output.map((line) => line.custom_id)).size).toBe(1000);
    const first = output.find((line) => line.custom_id === 'request-7');
    expect(first).toMatchObject({
      custom_id: 'request-7',
      error: null,
      response: { status_code: 200, body: { object: 'chat.completion', model: 'nova-micro' } },
    });
    expect(first.response.body.choices[0].message.content).toEqual(expect.any(String));
    expect(await acme.files.retrieve(done.output_file_id as string)).toMatchObject({ purpose: 'batch_output' });

    // Billed once, at batch prices: each line's usage at the catalog's batch price, summed.
    const model = resolveModel(atBatchPrices(platform.deps.settings.catalog), 'nova-micro', 'chat');
    const expectedNanoUsd = output.reduce((sum, line) => {
      const { prompt_tokens, completion_tokens } = line.response.body.usage;
      return sum + costNanoUsd(model, prompt_tokens, completion_tokens);
    }, 0);
    const onDemand = resolveModel(platform.deps.settings.catalog, 'nova-micro', 'chat');
    const onDemandNanoUsd = output.reduce((sum, line) => {
      const { prompt_tokens, completion_tokens } = line.response.body.usage;
      return sum + costNanoUsd(onDemand, prompt_tokens, completion_tokens);
    }, 0);
    const usage = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: apiKey })).body;
    expect(usage.totals).toMatchObject({
      requests: 1000,
      input_tokens: output.reduce((sum, line) => sum + line.response.body.usage.prompt_tokens, 0),
      output_tokens: output.reduce((sum, line) => sum + line.response.body.usage.completion_tokens, 0),
      cost_usd: expectedNanoUsd / 1e9,
    });
    expect(expectedNanoUsd).toBeLessThan(onDemandNanoUsd * 0.51);

    // Nothing of it for another tenant.
    await expect(globex.batches.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.batches.cancel(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.files.content(done.output_file_id as string)).rejects.toMatchObject({ status: 404 });
    expect((await globex.batches.list()).data).toEqual([]);
    expect((await globex.files.list()).data).toEqual([]);
    const listed = [];
    for await (const batch of acme.batches.list()) listed.push(batch.id);
    expect(listed).toEqual([created.id]);

    // The audit log records the batch and its line count.
    const audit = await call(platform, 'GET', `/v1/audit/${requestId}`, { credential: apiKey });
    expect(audit.body).toMatchObject({
      route: 'POST /v1/batches',
      status: 200,
      batch: { id: created.id, lines: 1000 },
    });
  });

  it('fails a line that names a model the catalog lacks, alone, in the error file, unbilled', async () => {
    const { apiKey } = await onboard(platform, 'batch-mixed');
    const acme = client(apiKey);
    const rows = chatLines(3).split('\n');
    rows[1] = rows[1].replace('nova-micro', 'no-such-model');
    const input = await upload(acme, rows.join('\n'));
    const created = await acme.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await settled(acme, created.id);
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 2, failed: 1 } });
    const errors = jsonLines(await (await acme.files.content(done.error_file_id as string)).text());
    expect(errors).toEqual([
      expect.objectContaining({
        custom_id: 'request-1',
        response: expect.objectContaining({
          status_code: 400,
          body: { error: expect.objectContaining({ code: 'unknown_model' }) },
        }),
      }),
    ]);
    const usage = (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body;
    expect(usage.totals.requests).toBe(2);
  });

  it('refuses a batch whose file is not a batch input, or calls another endpoint, with a 400; another tenant’s file with a 404', async () => {
    const { apiKey } = await onboard(platform, 'batch-refused');
    const acme = client(apiKey);
    const input = await upload(acme, chatLines(2));
    await expect(
      acme.batches.create({ input_file_id: input.id, endpoint: '/v1/embeddings', completion_window: '24h' }),
    ).rejects.toMatchObject({ status: 400 });
    const { apiKey: otherKey } = await onboard(platform, 'batch-refused-other');
    await expect(
      client(otherKey).batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    ).rejects.toMatchObject({ status: 404 });
    const wrongWindow = await call(platform, 'POST', '/v1/batches', {
      credential: apiKey,
      body: { input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '48h' },
    });
    expect(wrongWindow.status).toBe(400);
  });

  it('admits a batch whole against the month: one larger than the monthly limit is a 400, one the month has no room left for a 429', async () => {
    const { apiKey } = await onboard(platform, 'batch-poor', { limits: { monthlyTokens: 10_000 } });
    const acme = client(apiKey);
    const tooLarge = await upload(acme, chatLines(400));
    const refused = await acme.batches
      .create({ input_file_id: tooLarge.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((error: { status: number; message: string }) => error);
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as { message: string }).message).toMatch(/monthly limit is 10000/);
    const input = await upload(acme, chatLines(200));
    const admitted = await acme.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    // The first batch holds its estimate (more than half the month) until it ends: the second does not fit.
    const noRoom = await acme.batches
      .create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((error: { status: number; error: { code: string } }) => error);
    expect(noRoom).toMatchObject({ status: 429, error: { code: 'quota_exceeded' } });
    expect((await acme.batches.list()).data.map((batch) => batch.id)).toEqual([admitted.id]);
  });

  it('runs at a share of the rate limit and stops at a cancel: lines run so far kept and billed, the rest listed as cancelled', async () => {
    const { apiKey } = await onboard(platform, 'batch-cancel', { limits: { requestsPerMinute: 10 } });
    const acme = client(apiKey);
    const input = await upload(acme, chatLines(20));
    const created = await acme.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    // Half of 10 requests a minute: 5 lines, then the runner waits for the next minute.
    let batch = await acme.batches.retrieve(created.id);
    for (let read = 0; batch.request_counts?.completed !== 5 && read < 20_000; read++) {
      batch = await acme.batches.retrieve(created.id);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(batch).toMatchObject({ status: 'in_progress', request_counts: { total: 20, completed: 5 } });
    const cancelling = await acme.batches.cancel(created.id);
    expect(cancelling).toMatchObject({ status: 'cancelling', cancelling_at: expect.any(Number) });
    clock.advance(60_000);
    platform.sqs.releaseDue();
    const cancelled = await settled(acme, created.id, ['cancelled']);
    expect(cancelled).toMatchObject({ status: 'cancelled', request_counts: { total: 20, completed: 5, failed: 0 } });
    expect(jsonLines(await (await acme.files.content(cancelled.output_file_id as string)).text())).toHaveLength(5);
    const notRun = jsonLines(await (await acme.files.content(cancelled.error_file_id as string)).text());
    expect(notRun).toHaveLength(15);
    expect(notRun[0]).toMatchObject({ custom_id: 'request-5', response: null, error: { code: 'batch_cancelled' } });
    const usage = (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body;
    expect(usage.totals.requests).toBe(5);
    // A cancelled batch cannot be cancelled into anything else: it answers as it is.
    expect(await acme.batches.cancel(created.id)).toMatchObject({ status: 'cancelled' });
  });

  it("holds a batch to its API key's own monthly limit too, naming the key's scope, and bills the key its lines", async () => {
    const { apiKey: open } = await onboard(platform, 'batch-keyed', { limits: { requestsPerMinute: 1_000 } });
    const limited = await call(platform, 'POST', '/admin/tenants/batch-keyed/api-keys', {
      credential: platform.operatorToken,
      body: { limits: { monthlyTokens: 5_000 } },
    });
    const keyed = client(limited.body.api_key as string);
    // 90 lines (on demand): about 3,000 tokens estimated, more than half the key's month.
    const input = await upload(keyed, chatLines(90));
    const request = { input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' } as const;
    const first = await keyed.batches.create(request);
    const refused = await keyed.batches.create(request).catch((error: { status: number; error: unknown }) => error);
    expect(refused).toMatchObject({ status: 429, error: { code: 'quota_exceeded', scope: 'key' } });
    // The tenant's other key is not held back by it.
    const other = await upload(client(open), chatLines(90));
    await client(open).batches.create({ ...request, input_file_id: other.id });
    expect(await settled(keyed, first.id)).toMatchObject({ status: 'completed', request_counts: { completed: 90 } });
    const byKey = (await call(platform, 'GET', '/v1/usage?group_by=key', { credential: open })).body;
    expect(byKey.data).toEqual([expect.objectContaining({ key: limited.body.key_id, requests: 90 })]);
  });

  it('runs embeddings lines too', async () => {
    const { apiKey } = await onboard(platform, 'batch-embed');
    const acme = client(apiKey);
    const rows = Array.from({ length: 3 }, (_, i) =>
      JSON.stringify({
        custom_id: `e-${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'titan-embed-text-v2', input: `text ${i}` },
      }),
    );
    const input = await upload(acme, rows.join('\n'));
    const created = await acme.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
    });
    const done = await settled(acme, created.id);
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    const output = jsonLines(await (await acme.files.content(done.output_file_id as string)).text());
    expect(output[0].response.body.data[0].embedding).toHaveLength(1024);
  });

  it('hands over an output file larger than a Lambda answers through a presigned S3 URL the stock SDK follows; another tenant gets a 404', async () => {
    const { apiKey } = await onboard(platform, 'batch-large', {
      limits: { requestsPerMinute: 10_000, tokensPerMinute: 2_000_000 },
    });
    const { apiKey: otherKey } = await onboard(platform, 'batch-large-other');
    const acme = client(apiKey);
    // 500 distinct words an input: about 11 KB of floats an embedding, 10 inputs a line, 40 lines (run on demand).
    const text = Array.from({ length: 500 }, (_, i) => `w${i}`).join(' ');
    const rows = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({
        custom_id: `large-${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'titan-embed-text-v2', input: Array(10).fill(text), encoding_format: 'float' },
      }),
    );
    const input = await upload(acme, rows.join('\n'));
    const created = await acme.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
    });
    const done = await settled(acme, created.id);
    expect(done.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
    const id = done.output_file_id as string;
    const file = await acme.files.retrieve(id);
    expect(file.bytes).toBeGreaterThan(MAX_INLINE_CONTENT_BYTES);

    // The API answers a redirect to the tenant's own object, for no cache to keep.
    const redirect = await fetch(`${platform.url}/v1/files/${id}/content`, {
      headers: { authorization: `Bearer ${apiKey}` },
      redirect: 'manual',
    });
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('cache-control')).toBe('no-store');
    const location = new URL(redirect.headers.get('location') as string);
    expect(location.origin).toBe(platform.s3.endpoint);
    expect(location.pathname).toMatch(new RegExp(`^/[^/]+/batch-large/${id}/batch_output/`));
    expect(location.searchParams.get('X-Amz-Expires')).toBe('300');

    // The SDK follows it to S3 (another origin, so fetch drops the API key's Authorization header: S3
    // would refuse a request with two auth mechanisms), and reads the whole file.
    const content = await (await acme.files.content(id)).text();
    expect(Buffer.byteLength(content)).toBe(file.bytes);
    expect(platform.s3.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: location.pathname,
      query: { 'X-Amz-Signature': expect.any(String) },
    });
    const output = jsonLines(content);
    expect(output).toHaveLength(40);
    expect(output.every((line) => line.response.body.data.length === 10)).toBe(true);
    expect(output[0].response.body.data[0].embedding).toHaveLength(1024);

    // Another tenant: a 404, never a URL.
    const other = await fetch(`${platform.url}/v1/files/${id}/content`, {
      headers: { authorization: `Bearer ${otherKey}` },
      redirect: 'manual',
    });
    expect(other.status).toBe(404);
    expect(other.headers.get('location')).toBeNull();
    await expect(client(otherKey).files.content(id)).rejects.toMatchObject({ status: 404 });
  });

  it('ends a batch in flight when its tenant is offboarded: its batch, files and parts purged, nothing run after', async () => {
    const { apiKey } = await onboard(platform, 'batch-leaving', { limits: { requestsPerMinute: 4 } });
    const leaving = client(apiKey);
    const input = await upload(leaving, chatLines(10));
    const created = await leaving.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    for (let read = 0; read < 20_000; read++) {
      if ((await leaving.batches.retrieve(created.id)).request_counts?.completed === 2) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const tombstone = await offboardCompletely(platform, clock, 'batch-leaving');
    // The input file and the running batch's part.
    expect(tombstone.offboarding.deleted.files).toBe(2);
    // Its next step finds the tenant gone and writes nothing.
    platform.sqs.releaseDue();
    const tenant = await platform.deps.registry.getTenant('batch-leaving');
    expect(tenant?.status).toBe('offboarded');
    expect(await platform.deps.files.list({ ...actingAs('batch-leaving') }, { limit: 10 })).toEqual({
      files: [],
      hasMore: false,
    });
  });
});

describe('batches across a restart of local mode', () => {
  it('go on where they were: steps queued, parts, usage and reservation on disk, each line billed once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'platform-batches-'));
    const clock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
    const options = { dataDir, port: 0, now: clock.now, workflowPollMs: 0 };
    let platform = await startLocalPlatform(options);
    try {
      const { apiKey } = await onboard(platform, 'batch-restart', { limits: { requestsPerMinute: 10 } });
      const lines = Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({
          custom_id: `r-${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'nova-micro', messages: [{ role: 'user', content: `item ${i}` }], max_tokens: 8 },
        }),
      );
      const client = () => new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
      const input = await client().files.create({
        file: await toFile(Buffer.from(lines.join('\n')), 'r.jsonl'),
        purpose: 'batch',
      });
      const { id } = await client().batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      /** Reads the batch until `done` holds of it (the worker runs beside the test), delivering the steps now due. */
      const until = async (done: (batch: OpenAI.Batches.Batch) => boolean) => {
        for (let read = 0; read < 20_000; read++) {
          const batch = await client().batches.retrieve(id);
          if (done(batch)) return batch;
          platform.sqs.releaseDue();
          await new Promise((resolve) => setImmediate(resolve));
        }
        throw new Error(`batch ${id} never got there`);
      };
      // Half of 10 requests a minute: 5 lines, then its runner waits for the next minute...
      await until((batch) => batch.request_counts?.completed === 5);
      // ...when the platform stops, and starts again on the same data.
      await platform.close();
      platform = await startLocalPlatform(options);
      for (let minute = 0; minute < 3; minute++) {
        clock.advance(61_000);
        platform.sqs.releaseDue();
        await until(
          (batch) => batch.request_counts?.completed === Math.min(12, 10 + minute * 5) || batch.status === 'completed',
        );
      }
      const done = await until((batch) => batch.status === 'completed');
      expect(done.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
      const output = (await (await client().files.content(done.output_file_id as string)).text()).trim().split('\n');
      expect(output.map((row) => JSON.parse(row).custom_id).sort()).toEqual(lines.map((_, i) => `r-${i}`).sort());
      expect((await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals.requests).toBe(12);
    } finally {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

function actingAs(tenantId: string) {
  return {
    tenantId,
    tier: 'standard' as const,
    principal: { type: 'user' as const, id: 'test' },
    limits: { requestsPerMinute: 1, tokensPerMinute: 1, monthlyTokens: 1, monthlyBudgetUsd: 1 },
    auditPrompts: false,
    placements: [],
  };
}
