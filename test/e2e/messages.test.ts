import Anthropic from '@anthropic-ai/sdk';
import { countTokens } from '../../lambdas/core/tokens';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

/**
 * Anthropic's Messages API through the official `@anthropic-ai/sdk`, unchanged but for its base URL:
 * create, stream, a tool round trip, count_tokens, its error shape and both credential headers;
 * each call on the bill exactly as answered.
 */
// Frozen at the start of this minute: a rate limit's calls fall in one minute window, however long
// the machine takes between them.
const minuteClock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000);

describe('the Messages API with the Anthropic SDK', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  let client: Anthropic;
  const tools: Anthropic.Tool[] = [
    {
      name: 'get_weather',
      description: 'Get the current weather for a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  ];
  const question: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const totals = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
  const lastConverse = () => platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: minuteClock.now });
    ({ apiKey } = await onboard(platform, 'messages-co', { tier: 'standard' }));
    client = new Anthropic({ apiKey, baseURL: platform.url, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  it('answers a message, billed as its usage says', async () => {
    const before = await totals();
    const message = await client.messages.create({
      model: 'nova-micro',
      max_tokens: 64,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect(message).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'nova-micro',
      content: [{ type: 'text', text: 'Local echo of 1 message(s): Hello there' }],
      stop_reason: 'end_turn',
    });
    expect(lastConverse()).toMatchObject({ system: [{ text: 'Be brief.' }], inferenceConfig: { maxTokens: 64 } });
    const after = await totals();
    expect(after.input_tokens - before.input_tokens).toBe(message.usage.input_tokens);
    expect(after.output_tokens - before.output_tokens).toBe(message.usage.output_tokens);
  });

  it('runs a tool round trip: tool_use, then tool_result, then the answer', async () => {
    const first = await client.messages.create({ model: 'nova-micro', max_tokens: 64, tools, messages: question });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((block) => block.type === 'tool_use');
    expect(use).toEqual({ type: 'tool_use', id: expect.any(String), name: 'get_weather', input: { city: 'Paris' } });
    if (use?.type !== 'tool_use') throw new Error('expected a tool_use block');
    const answer = await client.messages.create({
      model: 'nova-micro',
      max_tokens: 64,
      tools,
      messages: [
        ...question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 C' }] },
      ],
    });
    expect(answer.content).toEqual([
      { type: 'text', text: 'Local answer from 1 tool result(s): get_weather said 21 C' },
    ]);
  });

  it('streams the event sequence the SDK assembles into the buffered message, text and tool use alike', async () => {
    for (const request of [
      { model: 'nova-micro', max_tokens: 64, messages: [{ role: 'user' as const, content: 'Stream this please' }] },
      { model: 'nova-micro', max_tokens: 64, tools, messages: question },
    ]) {
      const buffered = await client.messages.create(request);
      const stream = client.messages.stream(request);
      const types: string[] = [];
      stream.on('streamEvent', (event) => types.push(event.type));
      const final = await stream.finalMessage();
      expect(types[0]).toBe('message_start');
      expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(types).toContain('content_block_delta');
      expect(final.content).toEqual(buffered.content);
      expect(final.stop_reason).toBe(buffered.stop_reason);
      expect(final.usage).toMatchObject({
        input_tokens: buffered.usage.input_tokens,
        output_tokens: buffered.usage.output_tokens,
      });
    }
  });

  it('counts tokens without a model call, as admission bounds them', async () => {
    const calls = platform.bedrock.requests.length;
    const counted = await client.messages.countTokens({
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    // 'Hello there': 2 tokens, 4 for the message, 3 for the reply.
    expect(counted).toEqual({ input_tokens: countTokens('Hello there') + 7 });
    // tool definitions count as they are estimated at admission: their JSON
    const withTools = await client.messages.countTokens({
      model: 'nova-micro',
      tools,
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    const [tool] = tools as Anthropic.Tool[];
    const definition = { name: tool.name, description: tool.description, parameters: tool.input_schema };
    expect(withTools.input_tokens - counted.input_tokens).toBe(countTokens(JSON.stringify(definition)));
    expect(platform.bedrock.requests.length).toBe(calls);
  });

  it("answers errors in Anthropic's shape, which the SDK turns into its error classes", async () => {
    const unknown = await call(platform, 'POST', '/v1/messages', {
      headers: { 'x-api-key': apiKey },
      body: { model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: "unknown_model: chat model 'no-such-model' does not exist" },
    });
    await expect(
      client.messages.create({ model: 'nova-micro', messages: [{ role: 'user', content: 'x' }] } as never),
    ).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });

  it("refuses a stream over the limit before its first event, in Anthropic's shape", async () => {
    const { apiKey: slow } = await onboard(platform, 'messages-slow-co', { limits: { requestsPerMinute: 1 } });
    const body = { model: 'nova-micro', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
    expect((await call(platform, 'POST', '/v1/messages', { headers: { 'x-api-key': slow }, body })).status).toBe(200);
    const refused = await call(platform, 'POST', '/v1/messages', {
      headers: { 'x-api-key': slow },
      body: { ...body, stream: true },
    });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(refused.headers.get('retry-after')).not.toBeNull();
  });

  it('takes the key as x-api-key or as a Bearer token, and refuses a wrong one with 401', async () => {
    const body: Anthropic.MessageCreateParamsNonStreaming = {
      model: 'nova-micro',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'x' }],
    };
    const bearer = new Anthropic({ authToken: apiKey, apiKey: null, baseURL: platform.url, maxRetries: 0 });
    expect((await bearer.messages.create(body)).type).toBe('message');
    const wrong = new Anthropic({ apiKey: 'mt_wrong_key', baseURL: platform.url, maxRetries: 0 });
    await expect(wrong.messages.create(body)).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    // x-api-key authenticates only Anthropic's routes, as API Gateway's identity sources have it.
    expect((await call(platform, 'GET', '/v1/models', { headers: { 'x-api-key': apiKey } })).status).toBe(401);
  });
});
