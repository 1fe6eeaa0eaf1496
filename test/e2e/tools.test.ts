import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import * as z from 'zod';
import { countTokens } from '../../lambdas/core/tokens';
import { platformConfig } from '../../lib/config';
import { call, onboard, startTestPlatform } from '../support/platform';

/**
 * Agents through the official OpenAI SDK, unchanged, against the local platform: tool calls plain,
 * streamed, parallel, forced and refused, the tool-result round trip, structured outputs with
 * `.parse()`, prompt caching, and each call on the bill exactly as answered.
 */
describe('tool calling and structured outputs with the OpenAI SDK', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let client: OpenAI;
  let apiKey: string;

  const weather: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
      strict: true,
    },
  };
  const forecast: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_forecast',
      description: 'Tomorrow weather forecast for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, days: { type: 'integer' } },
        required: ['city', 'days'],
      },
    },
  };
  const clock: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The time now in a timezone',
      parameters: { type: 'object', properties: {} },
    },
  };
  const question: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

  /** The newest Converse request the local Bedrock received (guardrail checks come after it). */
  const lastConverse = () => platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body;
  const totals = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, 'agent-co', { tier: 'standard' }));
    client = new OpenAI({ apiKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  it('calls the tool that fits, with arguments valid against its schema, and bills the call as answered', async () => {
    const before = await totals();
    const completion = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [clock, weather],
      parallel_tool_calls: false,
    });
    const [choice] = completion.choices;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toEqual([
      {
        id: expect.any(String),
        type: 'function',
        function: { name: 'get_weather', arguments: JSON.stringify({ city: 'Paris', unit: 'celsius' }) },
      },
    ]);
    // The ledger holds exactly what the answer reported.
    const after = await totals();
    expect(after.input_tokens - before.input_tokens).toBe(completion.usage?.prompt_tokens);
    expect(after.output_tokens - before.output_tokens).toBe(completion.usage?.completion_tokens);
  });

  it('sends Bedrock the tools as Converse toolConfig, and the tool definitions are billed as input', async () => {
    const plain = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tool_choice: undefined,
    });
    const withTools = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [weather],
    });
    const converse = lastConverse() as {
      toolConfig: { tools: { toolSpec: { name: string; description: string; inputSchema: { json: unknown } } }[] };
    };
    expect(converse.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'get_weather',
            description: 'Get the current weather for a city',
            inputSchema: { json: weather.function.parameters },
          },
        },
      ],
      toolChoice: { auto: {} },
    });
    const { toolSpec } = converse.toolConfig.tools[0];
    const definitionTokens = countTokens(
      JSON.stringify({ name: toolSpec.name, description: toolSpec.description, schema: toolSpec.inputSchema.json }),
    );
    expect((withTools.usage?.prompt_tokens ?? 0) - (plain.usage?.prompt_tokens ?? 0)).toBe(definitionTokens);
  });

  it('calls every fitting tool in parallel, and only one when parallel_tool_calls is false', async () => {
    const parallel = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [weather, forecast, clock],
    });
    expect(parallel.choices[0].message.tool_calls?.map((c) => c.type === 'function' && c.function.name)).toEqual([
      'get_weather',
      'get_forecast',
    ]);
    const single = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [weather, forecast, clock],
      parallel_tool_calls: false,
    });
    expect(single.choices[0].message.tool_calls).toHaveLength(1);
  });

  it('calls a named tool when forced, and none with tool_choice none', async () => {
    const forced = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [weather, clock],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    expect(forced.choices[0].message.tool_calls?.[0]).toMatchObject({
      function: { name: 'get_time', arguments: '{}' },
    });
    expect(lastConverse()).toMatchObject({ toolConfig: { toolChoice: { tool: { name: 'get_time' } } } });

    const required = await client.chat.completions.create({
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'Hello there' }],
      tools: [weather, clock],
      tool_choice: 'required',
    });
    expect(required.choices[0].finish_reason).toBe('tool_calls');

    const none = await client.chat.completions.create({
      model: 'nova-micro',
      messages: question,
      tools: [weather],
      tool_choice: 'none',
    });
    expect(none.choices[0]).toMatchObject({
      finish_reason: 'stop',
      message: { content: expect.stringContaining('Paris') },
    });
    expect(none.choices[0].message.tool_calls).toBeUndefined();
  });

  it('runs the agent loop: the tool result goes back, and the model answers from it', async () => {
    const first = await client.chat.completions.create({ model: 'nova-micro', messages: question, tools: [weather] });
    const toolCall = first.choices[0].message.tool_calls?.[0];
    if (toolCall?.type !== 'function') throw new Error('expected a function call');
    const second = await client.chat.completions.create({
      model: 'nova-micro',
      tools: [weather],
      messages: [
        ...question,
        first.choices[0].message,
        { role: 'tool', tool_call_id: toolCall.id, content: '{"temp_c": 21}' },
      ],
    });
    expect(second.choices[0].finish_reason).toBe('stop');
    expect(second.choices[0].message.content).toBe(
      'Local answer from 1 tool result(s): get_weather said {"temp_c": 21}',
    );
    // Converse got the call as a toolUse block and the result as a toolResult block of the user's turn.
    expect((lastConverse() as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: [{ text: 'What is the weather in Paris?' }] },
      {
        role: 'assistant',
        content: [
          { toolUse: { toolUseId: toolCall.id, name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } } },
        ],
      },
      { role: 'user', content: [{ toolResult: { toolUseId: toolCall.id, content: [{ text: '{"temp_c": 21}' }] } }] },
    ]);
    // The audit record names the tool called, never its arguments.
    const audit = await call(platform, 'GET', `/v1/audit/${first.id.replace(/^chatcmpl-/, '')}`, {
      credential: apiKey,
    });
    expect(audit.body.tools).toEqual(['get_weather']);
    expect(JSON.stringify(audit.body)).not.toContain('Paris');
  });

  it('refuses a tool message that answers no call, naming the message', async () => {
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages: [...question, { role: 'tool', tool_call_id: 'call_x', content: '1' }] },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toMatch(/^messages\.1: a tool message must answer a tool call/);
  });

  it('streams tool calls as delta.tool_calls that the SDK assembles into the buffered answer', async () => {
    const request = { model: 'nova-micro', messages: question, tools: [weather, forecast] };
    const buffered = await client.chat.completions.create(request);
    const before = await totals();
    const stream = client.chat.completions.stream({ ...request, stream_options: { include_usage: true } });
    const assembled = await stream.finalChatCompletion();
    expect(assembled.choices[0].finish_reason).toBe('tool_calls');
    const calls = (message: OpenAI.ChatCompletionMessage) =>
      message.tool_calls?.map((c) => c.type === 'function' && [c.id, c.function.name, c.function.arguments]);
    expect(calls(assembled.choices[0].message)).toEqual(calls(buffered.choices[0].message));
    // Billed the same as the buffered call.
    expect(assembled.usage).toMatchObject({
      prompt_tokens: buffered.usage?.prompt_tokens,
      completion_tokens: buffered.usage?.completion_tokens,
    });
    const after = await totals();
    expect(after.input_tokens - before.input_tokens).toBe(buffered.usage?.prompt_tokens);
  });

  it('answers a zod schema through .parse(): JSON valid against it, in content', async () => {
    const Weather = z.object({ city: z.string(), temp_c: z.number(), sunny: z.boolean() });
    const completion = await client.chat.completions.parse({
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'Report the weather in Paris' }],
      response_format: zodResponseFormat(Weather, 'weather_report'),
    });
    const message = completion.choices[0].message;
    expect(message.parsed).toEqual({ city: 'Paris', temp_c: 1, sunny: true });
    expect(JSON.parse(message.content ?? '')).toEqual(message.parsed);
    expect(message.refusal).toBeNull();
    // Bedrock got the schema as a tool it had to call.
    expect(lastConverse()).toMatchObject({
      toolConfig: {
        tools: [{ toolSpec: { name: 'weather_report' } }],
        toolChoice: { tool: { name: 'weather_report' } },
      },
    });

    const streamed = await client.chat.completions
      .stream({
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'Report the weather in Paris' }],
        response_format: zodResponseFormat(Weather, 'weather_report'),
      })
      .finalChatCompletion();
    expect(streamed.choices[0].message.parsed).toEqual(message.parsed);
  });

  it('streams an answer with no text with its role first, as the SDK needs', async () => {
    const request = { model: 'nova-micro', messages: question, stop: ['Local'] };
    const buffered = await client.chat.completions.create(request);
    expect(buffered.choices[0].message.content).toBe('');
    const streamed = await client.chat.completions.stream(request).finalChatCompletion();
    expect(streamed.choices[0].message).toMatchObject({ role: 'assistant', content: '' });
  });

  it('answers json_object with a JSON object', async () => {
    const completion = await client.chat.completions.create({
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'List the weather in Paris as JSON' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(completion.choices[0].message.content ?? '')).toEqual({});
  });

  it('tries a strict answer that breaks its schema once more, then answers 502 naming the mismatch, billed both tries', async () => {
    const before = await totals();
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'Give the code for Paris' }],
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'postal',
            strict: true,
            schema: {
              type: 'object',
              properties: { code: { type: 'string', pattern: '^[0-9]{5}$' } },
              required: ['code'],
            },
          },
        },
      },
    });
    expect(answer.status).toBe(502);
    expect(answer.body.error).toMatchObject({ code: 'upstream_error' });
    expect(answer.body.error.message).toMatch(
      /broke response_format: the answer does not match the schema at '#\/code'/,
    );
    const converseCalls = platform.bedrock.requests.slice(-2).map((r) => r.path);
    expect(converseCalls).toEqual([
      '/model/amazon.nova-micro-v1%3A0/converse',
      '/model/amazon.nova-micro-v1%3A0/converse',
    ]);
    const after = await totals();
    expect(after.requests - before.requests).toBe(1);
    // Each try called the schema's tool with the message's first free word, counted as the local model counts.
    expect(after.output_tokens - before.output_tokens).toBe(2 * countTokens('postal {"code":"Give"}'));
  });

  it("runs a schema's patterns in linear time: one that would backtrack for ages is checked at once", async () => {
    // JavaScript's engine would take about 2^40 steps to refuse this word; RE2 takes one pass.
    const word = `${'a'.repeat(40)}b`;
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: {
        model: 'nova-micro',
        messages: [{ role: 'user', content: word }],
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'x',
            strict: true,
            schema: {
              type: 'object',
              properties: { code: { type: 'string', pattern: '^(a|a)*$' } },
              required: ['code'],
            },
          },
        },
      },
    });
    expect(answer.status).toBe(502);
    expect(answer.body.error.message).toMatch(/does not match the schema at '#\/code'/);

    // and a zod email field's pattern (nested quantifiers) is served, and checked
    const Contact = z.object({ email: z.string().email() });
    const schema = z.toJSONSchema(Contact) as Record<string, unknown>;
    const served = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'Write to bob@example.com' }],
        response_format: { type: 'json_schema', json_schema: { name: 'contact', strict: true, schema } },
      },
    });
    expect(served.status).toBe(502);
    expect(served.body.error.message).toMatch(/at '#\/email'/);
  });
});

describe('prompt caching, billed at the cache prices', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let client: OpenAI;
  let apiKey: string;
  const costUsd = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals.cost_usd;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, 'cache-co', { tier: 'standard' }));
    client = new OpenAI({ apiKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  it('caches a long system prompt automatically: the second call reads it, streamed or not, at the read price', async () => {
    // nova-micro caches prefixes from 1,024 tokens: this system prompt holds 1,200 (one a word).
    const system = `You are a concise assistant.${' policy'.repeat(1200)}`;
    const systemTokens = countTokens(system);
    const request = {
      model: 'nova-micro',
      messages: [
        { role: 'system' as const, content: system },
        { role: 'user' as const, content: 'Hello there' },
      ],
      max_tokens: 50,
    };
    const start = await costUsd();
    const first = await client.chat.completions.create(request);
    const afterFirst = await costUsd();
    const second = await client.chat.completions.create(request);
    const afterSecond = await costUsd();
    const streamed = await client.chat.completions
      .stream({ ...request, stream_options: { include_usage: true } })
      .finalChatCompletion();
    const afterStreamed = await costUsd();

    const converse = platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body;
    expect(converse).toMatchObject({ system: [{ text: system }, { cachePoint: { type: 'default' } }] });
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(systemTokens);
    expect(streamed.usage).toEqual(second.usage);
    // Nano-dollars a token: input 35, output 140; written to the cache 35, read from it 8.75.
    const output = second.usage?.completion_tokens ?? 0;
    const uncached = (second.usage?.prompt_tokens ?? 0) - systemTokens;
    const expectedSecond = Math.round(uncached * 35 + systemTokens * 8.75 + output * 140) / 1e9;
    expect(afterSecond - afterFirst).toBeCloseTo(expectedSecond, 12);
    expect(afterStreamed - afterSecond).toBeCloseTo(expectedSecond, 12);
    expect(afterFirst - start).toBeCloseTo(((first.usage?.prompt_tokens ?? 0) * 35 + output * 140) / 1e9, 12);
  });

  it('puts a cache point where the caller marks cache_control', async () => {
    const long = `Reference text.${' policy'.repeat(1100)}`;
    await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: {
        model: 'nova-micro',
        messages: [
          { role: 'user', content: [{ type: 'text', text: long, cache_control: { type: 'ephemeral' } }] },
          { role: 'assistant', content: 'Noted.' },
          { role: 'user', content: 'Summarize it' },
        ],
      },
    });
    const converse = platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body as {
      messages: { content: unknown[] }[];
    };
    expect(converse.messages[0].content).toEqual([{ text: long }, { cachePoint: { type: 'default' } }]);
    expect(converse.messages[2].content).toEqual([{ text: 'Summarize it' }]);
  });
});

describe('everything a chat gets, tool turns get too', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  const weatherTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };
  const lastConverse = () =>
    platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body as { messages: unknown[] };
  const chat = (apiKey: string, body: unknown, headers: Record<string, string> = {}) =>
    call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body, headers });

  beforeAll(async () => {
    platform = await startTestPlatform();
  });
  afterAll(() => platform.close());

  it('redacts PII in tool calls and tool results before the model, and restores it in the answer', async () => {
    const { apiKey } = await onboard(platform, 'pii-agent-co', {
      pii_redaction: { entities: ['email'], restore: true },
    });
    const answer = await chat(apiKey, {
      model: 'nova-micro',
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather for bob@example.com in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"bob@example.com"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'Sunny for bob@example.com' },
      ],
    });
    expect(answer.status).toBe(200);
    // The model saw placeholders only, in the call's arguments and in the result.
    expect(JSON.stringify(lastConverse())).not.toContain('bob@example.com');
    expect(lastConverse().messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: [{ toolUse: { toolUseId: 'c1', name: 'get_weather', input: { city: '[EMAIL_1]' } } }],
      },
      { role: 'user', content: [{ toolResult: { toolUseId: 'c1', content: [{ text: 'Sunny for [EMAIL_1]' }] } }] },
    ]);
    // The tier restores: the answer quoting the result has the address back.
    expect(answer.body.choices[0].message.content).toBe(
      'Local answer from 1 tool result(s): get_weather said Sunny for bob@example.com',
    );
  });

  it('screens tool results with the tier guardrail, which Converse does not apply to them', async () => {
    const { apiKey } = await onboard(platform, 'guarded-agent-co', { tier: 'standard' });
    const answer = await chat(apiKey, {
      model: 'nova-micro',
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'Which stocks should I buy this week?' },
      ],
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toBe('blocked by the content policy: topic:Investment advice');
  });

  it('keeps tool turns in a session, and keys the response cache on the tools', async () => {
    const { apiKey } = await onboard(platform, 'memory-agent-co', { cache_ttl_seconds: 300 });
    const first = await chat(apiKey, {
      model: 'nova-micro',
      session_id: 'trip',
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    const toolCall = first.body.choices[0].message.tool_calls[0];
    await chat(apiKey, {
      model: 'nova-micro',
      session_id: 'trip',
      tools: [weatherTool],
      messages: [{ role: 'tool', tool_call_id: toolCall.id, content: '21 C' }],
    });
    const session = await call(platform, 'GET', '/v1/sessions/trip', { credential: apiKey });
    expect(session.body.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [
          { id: toolCall.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', content: '21 C', tool_call_id: toolCall.id },
      { role: 'assistant', content: 'Local answer from 1 tool result(s): get_weather said 21 C' },
    ]);

    const deterministic = {
      model: 'nova-micro',
      temperature: 0,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    };
    const withTools = await chat(apiKey, { ...deterministic, tools: [weatherTool] });
    const again = await chat(apiKey, { ...deterministic, tools: [weatherTool] });
    const without = await chat(apiKey, deterministic);
    expect([withTools.headers.get('x-cache'), again.headers.get('x-cache'), without.headers.get('x-cache')]).toEqual([
      'miss',
      'hit',
      'miss',
    ]);
    expect(again.body.choices[0].message.tool_calls).toEqual(withTools.body.choices[0].message.tool_calls);
    expect(without.body.choices[0].message.tool_calls).toBeUndefined();
  });
});

describe("tool calls on the GPU endpoint, through the container's OpenAI tool support", () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let client: OpenAI;

  beforeAll(async () => {
    platform = await startTestPlatform(platformConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge' })[key]));
    const { apiKey } = await onboard(platform, 'gpu-agent-co', { tier: 'standard' });
    client = new OpenAI({ apiKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  it('passes tools to the container in OpenAI form and reads its tool_calls, buffered and streamed alike', async () => {
    const request = {
      model: 'qwen2.5-7b',
      messages: [{ role: 'user' as const, content: 'What is the weather in Paris?' }],
      tools: [
        {
          type: 'function' as const,
          function: {
            name: 'get_weather',
            description: 'Get the current weather for a city',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
    };
    const buffered = await client.chat.completions.create(request);
    expect(buffered.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: { tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    });
    const invocation = platform.sagemaker?.requests.findLast((r) => r.path.endsWith('/invocations'))?.body;
    expect(invocation).toMatchObject({ tools: request.tools, messages: request.messages });
    const streamed = await client.chat.completions.stream(request).finalChatCompletion();
    expect(streamed.choices[0].message.tool_calls).toEqual(buffered.choices[0].message.tool_calls);
    expect(streamed.choices[0].finish_reason).toBe('tool_calls');

    const parsed = await client.chat.completions.parse({
      model: 'qwen2.5-7b',
      messages: [{ role: 'user', content: 'Report the weather in Paris' }],
      response_format: zodResponseFormat(z.object({ city: z.string(), temp_c: z.number() }), 'weather_report'),
    });
    expect(parsed.choices[0].message.parsed).toEqual({ city: 'Paris', temp_c: 1 });
  });
});

describe('tools and schemas an attacker sends', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  const chat = (body: unknown) => call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body });
  const ask = { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }] };

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, 'attacked-co'));
  });
  afterAll(() => platform.close());

  it.each([
    [
      'a schema nested 20,000 deep',
      `{"type":"object","properties":{"a":${'{"items":'.repeat(20_000)}{}${'}'.repeat(20_000)}}}`,
    ],
    [
      'a pattern that does not compile',
      JSON.stringify({ type: 'object', properties: { a: { type: 'string', pattern: '(' } } }),
    ],
    [
      'a patternProperties name that does not compile',
      JSON.stringify({ type: 'object', patternProperties: { '[': {} } }),
    ],
  ])('answers %s with a 400, before any model call', async (_name, schema) => {
    const calls = platform.bedrock.requests.length;
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      // Sent as text: a client's JSON.stringify would overflow its own stack on the deepest.
      rawBody: `{"model":"nova-micro","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`,
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
    expect(platform.bedrock.requests.length).toBe(calls);
  });

  it('refuses a schema whose references expand without bound, and answers one that refers to itself with a 502, billed', async () => {
    // Each definition is an allOf of two references to the next: 2^24 nodes once followed.
    const defs = Object.fromEntries(
      Array.from({ length: 24 }, (_, i) => [
        `d${i}`,
        { allOf: [{ $ref: `#/$defs/d${i + 1}` }, { $ref: `#/$defs/d${i + 1}` }] },
      ]),
    );
    const format = (schema: unknown) => ({
      ...ask,
      response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema } },
    });
    const expanding = await chat(format({ $defs: { ...defs, d24: { type: 'string' } }, $ref: '#/$defs/d0' }));
    expect(expanding.status).toBe(400);
    expect(expanding.body.error.message).toMatch(/references expand past 20000 nodes/);
    const selfReferring = await chat(format({ $ref: '#' }));
    expect(selfReferring.status).toBe(502);
    expect(selfReferring.body.error.message).toMatch(/could not be checked/);
  });

  it('refuses a body nested deeper than 64 levels with a 400, before anything reads it', async () => {
    const answer = await call(platform, 'POST', '/v1/responses', {
      credential: apiKey,
      rawBody: `{"model":"nova-micro","input":"hi","context_management":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toBe('request body nests deeper than 64 levels');
  });

  it.each([
    [
      '129 tools',
      { tools: Array.from({ length: 129 }, (_, i) => ({ type: 'function', function: { name: `f${i}` } })) },
    ],
    ['two tools of one name', { tools: [1, 2].map(() => ({ type: 'function', function: { name: 'f' } })) }],
    [
      'a tool_choice naming no tool',
      {
        tools: [{ type: 'function', function: { name: 'f' } }],
        tool_choice: { type: 'function', function: { name: 'g' } },
      },
    ],
    ['a tool name with a space', { tools: [{ type: 'function', function: { name: 'get weather' } }] }],
    ['a non-function tool', { tools: [{ type: 'web_search' }] }],
    [
      'tool calls without their results',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'user', content: 'and?' },
        ],
      },
    ],
    [
      'five cache_control marks',
      {
        messages: Array.from({ length: 5 }, () => ({
          role: 'user',
          content: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral' } }],
        })),
      },
    ],
  ])('answers %s with a 400 naming it', async (_name, extra) => {
    const answer = await chat({ ...ask, ...extra });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
  });
});
