import OpenAI from 'openai';
import { countTokens } from '../../lambdas/core/tokens';
import { call, dynamodbRequestsFromNow, ManualClock, onboard, startTestPlatform } from '../support/platform';

/**
 * Streamed chat completions through the local platform: server-sent events from the production
 * handler, the local API Gateway front passing bytes through as they come, the production Bedrock
 * adapter reading `ConverseStream`'s event stream from the local Bedrock. Billing is checked in the
 * ledger for streams that finish, that the client cuts, and that the provider breaks.
 */
const QUESTION = 'Tell me about the northern lights over the fjords tonight';
const body = (extra: Record<string, unknown> = {}) => ({
  model: 'nova-micro',
  messages: [{ role: 'user', content: QUESTION }],
  max_tokens: 64,
  stream: true,
  ...extra,
});

/** The `data:` payloads of a server-sent event stream. */
function events(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}

// Frozen at the start of this minute: a rate limit's calls fall in one minute window, however long
// the machine takes between them.
const minuteClock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000);

describe('streamed chat completions', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  const usageOf = async (credential: string) =>
    (await call(platform, 'GET', '/v1/usage', { credential })).body.data as {
      requests: number;
      input_tokens: number;
      output_tokens: number;
    }[];
  /** Waits, without a clock, until the tenant's usage shows `requests` calls. */
  const settledUsage = async (credential: string, requests: number) => {
    for (let i = 0; i < 500; i++) {
      const usage = await usageOf(credential);
      if (usage.reduce((sum, row) => sum + row.requests, 0) >= requests) return usage;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error('the stream was never settled');
  };

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: minuteClock.now });
    ({ apiKey } = await onboard(platform, 'stream-co', { tier: 'standard' }));
  });
  afterAll(() => platform.close());

  it('sends chat.completion.chunk events word by word, then [DONE], billed as the provider counted', async () => {
    const streamedAnswer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: body({ stream_options: { include_usage: true } }),
    });
    expect(streamedAnswer.status).toBe(200);
    expect(streamedAnswer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const data = events(streamedAnswer.text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((line) => JSON.parse(line));
    expect(chunks[0]).toMatchObject({
      object: 'chat.completion.chunk',
      model: 'nova-micro',
      choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }],
    });
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    const whole = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: body({ stream: false }),
    });
    expect(text).toBe(whole.body.choices[0].message.content);
    expect(chunks.filter((chunk) => chunk.choices[0]?.delta.content).length).toBeGreaterThan(3);
    expect(chunks.at(-2).choices[0]).toEqual({ index: 0, delta: {}, finish_reason: 'stop' });
    const usage = chunks.at(-1);
    expect(usage).toMatchObject({ choices: [], usage: whole.body.usage });
    const ledger = await usageOf(apiKey);
    expect(ledger).toEqual([
      expect.objectContaining({
        requests: 2,
        input_tokens: 2 * whole.body.usage.prompt_tokens,
        output_tokens: 2 * whole.body.usage.completion_tokens,
      }),
    ]);
  });

  it("writes a finished stream's audit record in its settle's transaction, with the tokens it billed", async () => {
    const dynamodbRequests = dynamodbRequestsFromNow(platform);
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: body({ stream_options: { include_usage: true } }),
    });
    expect(answer.status).toBe(200);
    // the reserve (the shard item: counters and the call's hold), then the settle (the shard item) with the audit record
    expect(dynamodbRequests()).toEqual([
      ['UpdateItem', ['ledger']],
      ['TransactWriteItems', ['ledger', 'audit']],
    ]);
    const { usage } = JSON.parse(events(answer.text).at(-2) ?? '');
    const record = await call(platform, 'GET', `/v1/audit/${answer.headers.get('x-request-id')}`, {
      credential: apiKey,
    });
    expect(record.body).toMatchObject({
      status: 200,
      route: 'POST /v1/chat/completions',
      model: 'nova-micro',
      input_tokens: usage.prompt_tokens,
      output_tokens: usage.completion_tokens,
    });
    expect(record.body).not.toHaveProperty('error_code');
  });

  it('keeps the JSON error shape and status for failures before the first byte', async () => {
    const unknown = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: body({ model: 'no-such-model' }),
    });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/json/);
    expect(unknown.body.error.code).toBe('unknown_model');
    const { apiKey: slow } = await onboard(platform, 'slow-stream-co', { limits: { requestsPerMinute: 1 } });
    await call(platform, 'POST', '/v1/chat/completions', { credential: slow, body: body() });
    const limited = await call(platform, 'POST', '/v1/chat/completions', { credential: slow, body: body() });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it.each([
    ['/v1/chat/completions', body()],
    ['/v1/responses', { model: 'nova-micro', input: QUESTION, max_output_tokens: 64, stream: true }],
    [
      '/v1/messages',
      { model: 'nova-micro', max_tokens: 64, messages: [{ role: 'user', content: QUESTION }], stream: true },
    ],
  ])(
    'bills a stream on %s the client cuts after its first event with the tokens generated until then',
    async (path, request) => {
      const id = `cut-${path.split('/').at(-1)}-co`;
      const { apiKey: cutter } = await onboard(platform, id, { tier: 'standard' });
      const releases: (() => void)[] = [];
      platform.bedrock.misbehave({ streamGate: () => new Promise<void>((resolve) => releases.push(resolve)) });
      const controller = new AbortController();
      const response = await fetch(`${platform.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cutter}`, 'content-type': 'application/json' },
        body: JSON.stringify(request),
        signal: controller.signal,
      });
      expect(response.status).toBe(200);
      await response.body?.getReader().read();
      controller.abort();
      for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
      const usagePromise = settledUsage(cutter, 1);
      for (let turn = 0; turn < 200 && releases.length > 0; turn++) {
        releases.shift()?.();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const usage = await usagePromise;
      platform.bedrock.misbehave(undefined);
      expect(usage).toEqual([expect.objectContaining({ requests: 1 })]);
      expect(usage[0].output_tokens).toBeGreaterThan(0);
      expect(usage[0].output_tokens).toBeLessThan(countTokens(`Local echo of 1 message(s): ${QUESTION}`));
    },
  );

  it('ends a stream the provider breaks midway with an error event, billing the words it made', async () => {
    const { apiKey: broken } = await onboard(platform, 'broken-stream-co', { tier: 'standard' });
    platform.bedrock.misbehave({ failStreamAfterWords: 2 });
    const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: broken, body: body() });
    platform.bedrock.misbehave(undefined);
    expect(answer.status).toBe(200);
    const data = events(answer.text);
    expect(data).not.toContain('[DONE]');
    const chunks = data.map((line) => JSON.parse(line));
    expect(chunks.slice(0, 2).map((chunk) => chunk.choices[0].delta.content)).toEqual(['Local ', 'echo ']);
    expect(chunks[2]).toEqual({ error: expect.objectContaining({ code: 'upstream_error' }) });
    const [usage] = await settledUsage(broken, 1);
    expect(usage.output_tokens).toBe(countTokens('Local echo '));
    // its audit record tells how it ended, under the status it was sent with
    const record = await call(platform, 'GET', `/v1/audit/${answer.headers.get('x-request-id')}`, {
      credential: broken,
    });
    expect(record.body).toMatchObject({
      status: 200,
      error_code: 'upstream_error',
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
    });
  });

  it('works with the stock OpenAI SDK: streaming with usage, models, base64 embeddings, and its error classes', async () => {
    const client = new OpenAI({ apiKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'hello there' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe('Local echo of 1 message(s): hello there');
    expect(usage?.completion_tokens).toBe(countTokens(text));

    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models).toContain('nova-micro');

    // the SDK asks for base64 unless told otherwise, and decodes it: the same numbers as floats
    const [base64, floats] = await Promise.all([
      client.embeddings.create({ model: 'titan-embed-text-v2', input: 'aurora borealis' }),
      client.embeddings.create({ model: 'titan-embed-text-v2', input: 'aurora borealis', encoding_format: 'float' }),
    ]);
    expect(base64.data[0].embedding).toHaveLength(1024);
    // float32 on the wire: equal to the float answer within float32's precision
    expect(base64.data[0].embedding.every((value, i) => Math.abs(value - floats.data[0].embedding[i]) < 1e-6)).toBe(
      true,
    );

    const stranger = new OpenAI({ apiKey: 'mt_0000000000000000_nope', baseURL: `${platform.url}/v1`, maxRetries: 0 });
    await expect(stranger.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(
      client.chat.completions.create({ model: 'nova-micro', messages: [{ role: 'user', content: 'x' }], seed: 1 }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/seed/) });
    const { apiKey: limitedKey } = await onboard(platform, 'sdk-limited-co', { limits: { requestsPerMinute: 1 } });
    const limited = new OpenAI({ apiKey: limitedKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
    await limited.chat.completions.create({ model: 'nova-micro', messages: [{ role: 'user', content: 'x' }] });
    const refusal = await limited.chat.completions
      .create({ model: 'nova-micro', messages: [{ role: 'user', content: 'x' }] })
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number((refusal as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'))).toBeGreaterThan(
      0,
    );
  });
});
