import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import * as z from 'zod';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/**
 * The Responses API through the official OpenAI SDK, unchanged: plain, streamed, a function-tool
 * round trip, structured output, `previous_response_id` over stored responses, read back and
 * deleted; stored responses kept apart by tenant and principal, and deleted at offboarding.
 */
describe('the Responses API with the OpenAI SDK', () => {
  // Frozen (at the start of this minute): the rate-limit test's two calls fall in one minute window,
  // however long the machine takes between them.
  const clock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000);
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  let client: OpenAI;
  const weather: OpenAI.Responses.FunctionTool = {
    type: 'function',
    name: 'get_weather',
    description: 'Get the current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  };
  const totals = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
  const clientFor = (key: string) => new OpenAI({ apiKey: key, baseURL: `${platform.url}/v1`, maxRetries: 0 });

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    ({ apiKey } = await onboard(platform, 'responses-co', { tier: 'standard' }));
    client = clientFor(apiKey);
  });
  afterAll(() => platform.close());

  it('answers a response whose output_text the SDK reads, billed as its usage says, and stores it', async () => {
    const before = await totals();
    const response = await client.responses.create({
      model: 'nova-micro',
      instructions: 'Be brief.',
      input: 'Hello there',
    });
    expect(response).toMatchObject({ object: 'response', status: 'completed', model: 'nova-micro', store: true });
    expect(response.output_text).toBe('Local echo of 1 message(s): Hello there');
    const after = await totals();
    expect(after.input_tokens - before.input_tokens).toBe(response.usage?.input_tokens);
    expect(after.output_tokens - before.output_tokens).toBe(response.usage?.output_tokens);
    // Read back as answered.
    expect(await client.responses.retrieve(response.id)).toEqual(response);
  });

  it('streams the documented event sequence, assembled by the SDK into the buffered answer', async () => {
    const buffered = await client.responses.create({ model: 'nova-micro', input: 'Stream this please' });
    const stream = client.responses.stream({ model: 'nova-micro', input: 'Stream this please' });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const final = await stream.finalResponse();
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(1);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(final.output_text).toBe(buffered.output_text);
    expect(final.usage).toEqual(buffered.usage);
  });

  it('runs a function-tool round trip, buffered and streamed', async () => {
    const first = await client.responses.create({
      model: 'nova-micro',
      input: 'What is the weather in Paris?',
      tools: [weather],
    });
    const [call_] = first.output;
    expect(call_).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Paris"}' });
    if (call_.type !== 'function_call') throw new Error('expected a function call');
    const input: OpenAI.Responses.ResponseInput = [
      { role: 'user', content: 'What is the weather in Paris?' },
      call_,
      { type: 'function_call_output', call_id: call_.call_id, output: '{"temp_c": 21}' },
    ];
    const second = await client.responses.create({ model: 'nova-micro', input, tools: [weather] });
    expect(second.output_text).toBe('Local answer from 1 tool result(s): get_weather said {"temp_c": 21}');

    const stream = client.responses.stream({
      model: 'nova-micro',
      input: 'What is the weather in Paris?',
      tools: [weather],
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toContain('response.function_call_arguments.delta');
    expect(types).toContain('response.function_call_arguments.done');
    const streamed = await stream.finalResponse();
    expect(streamed.output).toEqual([
      expect.objectContaining({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Paris"}' }),
    ]);
  });

  it('answers a zod text format through responses.parse', async () => {
    const parsed = await client.responses.parse({
      model: 'nova-micro',
      input: 'Report the weather in Paris',
      text: { format: zodTextFormat(z.object({ city: z.string(), temp_c: z.number() }), 'weather_report') },
    });
    expect(parsed.output_parsed).toEqual({ city: 'Paris', temp_c: 1 });
  });

  it('continues from previous_response_id: the earlier turns are input, billed; input_items lists its own input', async () => {
    const first = await client.responses.create({ model: 'nova-micro', input: 'My name is Ada.' });
    const alone = await client.responses.create({ model: 'nova-micro', input: 'What is my name?', store: false });
    const next = await client.responses.create({
      model: 'nova-micro',
      input: 'What is my name?',
      previous_response_id: first.id,
    });
    expect(next.output_text).toBe('Local echo of 3 message(s): What is my name?');
    expect(next.previous_response_id).toBe(first.id);
    // The earlier user turn and answer are read again, as OpenAI bills them.
    expect(next.usage?.input_tokens).toBeGreaterThan(alone.usage?.input_tokens ?? Infinity);
    const items = await client.responses.inputItems.list(next.id);
    expect(items).toMatchObject({ has_more: false });
    expect(items.data).toEqual([
      expect.objectContaining({
        type: 'message',
        role: 'user',
        content: [{ type: 'input_text', text: 'What is my name?' }],
      }),
    ]);
    // Not stored: cannot be continued or read.
    await expect(client.responses.retrieve(alone.id)).rejects.toMatchObject({ status: 404 });
  });

  it("resolves item_reference input items from stored responses, the caller's own only", async () => {
    const first = await client.responses.create({ model: 'nova-micro', input: 'My name is Ada.' });
    const next = await client.responses.create({
      model: 'nova-micro',
      input: [
        { role: 'user', content: 'My name is Ada.' },
        { type: 'item_reference', id: first.output[0].id ?? '' },
        { role: 'user', content: 'What is my name?' },
      ],
    });
    expect(next.output_text).toBe('Local echo of 3 message(s): What is my name?');
    const converse = platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body as {
      messages: { role: string; content: { text: string }[] }[];
    };
    expect(converse.messages[1]).toEqual({ role: 'assistant', content: [{ text: first.output_text }] });
    const { apiKey: otherKey } = await onboard(platform, 'responses-referrer-co');
    await expect(
      clientFor(otherKey).responses.create({
        model: 'nova-micro',
        input: [
          { type: 'item_reference', id: first.output[0].id ?? '' },
          { role: 'user', content: 'Hi' },
        ],
      }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('pages input items as the SDKs page them: newest first by default, has_more, first_id, last_id, after', async () => {
    const response = await client.responses.create({
      model: 'nova-micro',
      input: [
        { role: 'user', content: 'One' },
        { role: 'assistant', content: 'Two' },
        { role: 'user', content: 'Three' },
      ],
    });
    const all = await client.responses.inputItems.list(response.id);
    const texts = (page: { data: unknown[] }) =>
      page.data.map((item) => (item as { content: { text: string }[] }).content[0].text);
    expect(texts(all)).toEqual(['Three', 'Two', 'One']);
    const first = await client.responses.inputItems.list(response.id, { order: 'asc', limit: 2 });
    expect(first.has_more).toBe(true);
    const raw = await call(platform, 'GET', `/v1/responses/${response.id}/input_items?order=asc&limit=2`, {
      credential: apiKey,
    });
    expect(raw.body).toMatchObject({
      object: 'list',
      has_more: true,
      first_id: first.data[0].id,
      last_id: first.data[1].id,
    });
    const rest = await client.responses.inputItems.list(response.id, {
      order: 'asc',
      limit: 2,
      after: first.data[1].id,
    });
    expect([...texts(first), ...texts(rest)]).toEqual(['One', 'Two', 'Three']);
    expect(rest.has_more).toBe(false);
  });

  it('deletes a stored response', async () => {
    const response = await client.responses.create({ model: 'nova-micro', input: 'Forget me' });
    await client.responses.delete(response.id);
    await expect(client.responses.retrieve(response.id)).rejects.toMatchObject({ status: 404 });
    await expect(
      client.responses.create({ model: 'nova-micro', input: 'And?', previous_response_id: response.id }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it("keeps stored responses apart: another tenant's id, or another principal's where principals are apart, is not found", async () => {
    const mine = await client.responses.create({ model: 'nova-micro', input: 'Private thoughts' });
    const { apiKey: otherKey } = await onboard(platform, 'responses-other-co', { tier: 'standard' });
    const other = clientFor(otherKey);
    await expect(other.responses.retrieve(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.inputItems.list(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.responses.delete(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(
      other.responses.create({ model: 'nova-micro', input: 'Continue', previous_response_id: mine.id }),
    ).rejects.toMatchObject({ status: 404 });
    expect(await client.responses.retrieve(mine.id)).toMatchObject({ id: mine.id });

    const { apiKey: alice } = await onboard(platform, 'responses-apart-co', { session_scope: 'principal' });
    const bob = (
      await call(platform, 'POST', '/admin/tenants/responses-apart-co/api-keys', { credential: platform.operatorToken })
    ).body.api_key;
    const alices = await clientFor(alice).responses.create({ model: 'nova-micro', input: 'Alice speaking' });
    await expect(clientFor(bob).responses.retrieve(alices.id)).rejects.toMatchObject({ status: 404 });
    expect(await clientFor(alice).responses.retrieve(alices.id)).toMatchObject({ id: alices.id });
  });

  it('is deleted at offboarding, counted', async () => {
    const { apiKey: leaving } = await onboard(platform, 'responses-leaving-co');
    await clientFor(leaving).responses.create({ model: 'nova-micro', input: 'One' });
    await clientFor(leaving).responses.create({ model: 'nova-micro', input: 'Two', store: false });
    const tombstone = await offboardCompletely(platform, clock, 'responses-leaving-co');
    expect(tombstone.offboarding.deleted.stored_responses).toBe(1);
  });

  it('refuses a stream over the limit before its first event: an ordinary 429', async () => {
    const { apiKey: slow } = await onboard(platform, 'responses-slow-co', { limits: { requestsPerMinute: 1 } });
    await clientFor(slow).responses.create({ model: 'nova-micro', input: 'One' });
    const refused = await call(platform, 'POST', '/v1/responses', {
      credential: slow,
      body: { model: 'nova-micro', input: 'Two', stream: true },
    });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
  });

  it('answers an id of any length as not found, never a 500', async () => {
    const long = `resp_${'x'.repeat(2000)}`;
    for (const path of [`/v1/responses/${long}`, `/v1/responses/${long}/input_items`]) {
      expect((await call(platform, 'GET', path, { credential: apiKey })).status).toBe(404);
    }
    expect((await call(platform, 'DELETE', `/v1/responses/${long}`, { credential: apiKey })).status).toBe(404);
  });

  it('refuses what it does not serve, naming it', async () => {
    const answer = await call(platform, 'POST', '/v1/responses', {
      credential: apiKey,
      body: { model: 'nova-micro', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
  });
});
