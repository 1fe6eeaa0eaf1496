import {
  call,
  dynamodbRequestsFromNow,
  ManualClock,
  offboardCompletely,
  onboard,
  startTestPlatform,
} from '../support/platform';

const deterministic = {
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'Summarize our refund policy.' }],
  max_tokens: 32,
  temperature: 0,
};

/** The response cache over HTTP: per tenant, deterministic requests only, metered, invalidated. */
describe('response cache', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let acme: string;
  let globex: string;

  const ask = (credential: string, body: Record<string, unknown> = deterministic, headers?: Record<string, string>) =>
    call(platform, 'POST', '/v1/chat/completions', { credential, body, headers });
  const modelCalls = () => platform.bedrock.requests.length;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    ({ apiKey: acme } = await onboard(platform, 'acme-co', { cache_ttl_seconds: 300 }));
    ({ apiKey: globex } = await onboard(platform, 'globex-co', { cache_ttl_seconds: 300 }));
  });
  afterAll(() => platform.close());

  it("answers a tenant's repeated deterministic call from its cache, never another tenant's", async () => {
    const before = modelCalls();
    const first = await ask(acme);
    expect(first.headers.get('x-cache')).toBe('miss');
    const second = await ask(acme);
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(second.body.choices[0].message.content).toBe(first.body.choices[0].message.content);
    expect(second.body.usage).toEqual({
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(modelCalls()).toBe(before + 1);

    // the same call from another tenant is its own miss
    expect((await ask(globex)).headers.get('x-cache')).toBe('miss');
    expect(modelCalls()).toBe(before + 2);
  });

  it('records a hit as a cached request at the cache price, in usage and in audit', async () => {
    const dynamodbRequests = dynamodbRequestsFromNow(platform);
    const hit = await ask(acme);
    expect(hit.headers.get('x-cache')).toBe('hit');
    // the cache read (its items live in the documents table), the reserve, then the settle with the audit record: no write of its own
    expect(dynamodbRequests()).toEqual([
      ['GetItem', ['documents']],
      ['UpdateItem', ['ledger']],
      ['TransactWriteItems', ['ledger', 'audit']],
    ]);
    const usage = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: acme })).body.data;
    expect(usage).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          model: 'nova-micro:cached',
          requests: 2,
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0.00002,
        }),
      ]),
    );
    const record = await call(platform, 'GET', `/v1/audit/${hit.headers.get('x-request-id')}`, { credential: acme });
    expect(record.body).toMatchObject({ cache: 'hit', status: 200, input_tokens: 0, output_tokens: 0 });
  });

  it('leaves out streamed, non-deterministic and no-store calls', async () => {
    const before = modelCalls();
    expect((await ask(acme, deterministic, { 'cache-control': 'no-store' })).headers.get('x-cache')).toBeNull();
    expect((await ask(acme, { ...deterministic, temperature: 0.7 })).headers.get('x-cache')).toBeNull();
    expect((await ask(acme, { ...deterministic, stream: true })).status).toBe(200);
    expect(modelCalls()).toBe(before + 3);
  });

  it('misses after a template changes and after its TTL', async () => {
    const admin = platform.operatorToken;
    const template = { messages: [{ role: 'system', content: 'Be brief.' }] };
    await call(platform, 'PUT', '/admin/tenants/acme-co/prompts/brief', { credential: admin, body: template });
    const prompted = { ...deterministic, prompt: { id: 'brief' } };
    expect((await ask(acme, prompted)).headers.get('x-cache')).toBe('miss');
    expect((await ask(acme, prompted)).headers.get('x-cache')).toBe('hit');
    await call(platform, 'PUT', '/admin/tenants/acme-co/prompts/brief', { credential: admin, body: template });
    expect((await ask(acme, prompted)).headers.get('x-cache')).toBe('miss');

    clock.advance(301_000);
    expect((await ask(acme)).headers.get('x-cache')).toBe('miss');
  });

  it('is off for a tenant that did not turn it on, and is deleted at offboarding', async () => {
    const { apiKey } = await onboard(platform, 'plain-co');
    expect((await ask(apiKey)).headers.get('x-cache')).toBeNull();
    const tombstone = await offboardCompletely(platform, clock, 'globex-co');
    expect(tombstone.offboarding.deleted.cache_entries).toBe(1);
  });
});
