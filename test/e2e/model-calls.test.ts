import { chatInputTokens } from '../../lambdas/core/tokens';
import { call, dynamodbRequestsFromNow, onboard, startTestPlatform } from '../support/platform';

/**
 * Model calls are bounded in time and billed whatever ends them. The platform runs handlers with a
 * 2 s Lambda timeout, so a model call gets 1.5 s before it is aborted: the local Bedrock server
 * that never answers is the only thing that waits here, and it waits for the abort, not a timer.
 */
describe('model calls under a deadline', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  const messages = [{ role: 'user', content: 'Will this ever finish?' }];
  const usage = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals;

  const metricsDisabled = process.env.POWERTOOLS_METRICS_DISABLED;
  beforeAll(async () => {
    // The metrics adapter reads this once, when the platform builds it: this suite reads its lines.
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    platform = await startTestPlatform(undefined, { handlerTimeoutMs: 2000 });
    process.env.POWERTOOLS_METRICS_DISABLED = metricsDisabled;
    ({ apiKey } = await onboard(platform, 'deadline-co', { tier: 'standard' }));
  });
  afterAll(() => platform.close());
  afterEach(() => platform.bedrock.misbehave(undefined));

  it("answers 504 for a model told to time out through the local route (LOCAL_MODEL_FAULTS' timeout)", async () => {
    const setFault = (fault: string | null) =>
      call(platform, 'PUT', '/local/model-faults', {
        credential: platform.operatorToken,
        body: { model: 'nova-lite', fault },
      });
    expect((await setFault('timeout')).body).toEqual({ faults: { 'nova-lite': 'timeout' } });
    const own = (await onboard(platform, 'timeout-co', { tier: 'standard' })).apiKey;
    const ask = () =>
      call(platform, 'POST', '/v1/chat/completions', {
        credential: own,
        body: { model: 'nova-lite', messages, max_tokens: 20 },
      });
    expect((await ask()).body.error.code).toBe('upstream_timeout');
    await setFault(null);
    expect((await ask()).status).toBe(200);
  });

  it('aborts a model call that would outlive the handler, answers 504, and bills the reserved estimate once', async () => {
    platform.bedrock.misbehave({ hang: true });
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages, max_tokens: 20 },
    });
    expect(answer.status).toBe(504);
    expect(answer.body.error.code).toBe('upstream_timeout');
    const inputEstimate = chatInputTokens(messages);
    expect(await usage()).toMatchObject({ requests: 1, input_tokens: inputEstimate, output_tokens: 20 });

    // the next call is served and billed what it used: the aborted one is not billed again
    platform.bedrock.misbehave(undefined);
    const served = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages, max_tokens: 20 },
    });
    expect(served.status).toBe(200);
    expect(await usage()).toMatchObject({
      requests: 2,
      input_tokens: inputEstimate + served.body.usage.prompt_tokens,
      output_tokens: 20 + served.body.usage.completion_tokens,
    });
  });

  it.each([
    ['/v1/chat/completions', { model: 'nova-micro', messages, max_tokens: 20 }],
    ['/v1/embeddings', { model: 'titan-embed-text-v2', input: ['Will this ever finish?'] }],
  ])(
    "writes the audit record of a served POST %s in its settle's transaction: two DynamoDB writes",
    async (path, body) => {
      const dynamodbRequests = dynamodbRequestsFromNow(platform);
      const served = await call(platform, 'POST', path, { credential: apiKey, body });
      expect(served.status).toBe(200);
      // the reserve (the shard item: counters and the call's hold), then the settle (the shard item) with the audit record
      expect(dynamodbRequests()).toEqual([
        ['UpdateItem', ['ledger']],
        ['TransactWriteItems', ['ledger', 'audit']],
      ]);
      const requestId = served.headers.get('x-request-id');
      const record = await call(platform, 'GET', `/v1/audit/${requestId}`, { credential: apiKey });
      expect(record.body).toMatchObject({
        status: 200,
        route: `POST ${path}`,
        model: body.model,
        input_tokens: served.body.usage.prompt_tokens,
        output_tokens: served.body.usage.completion_tokens ?? 0,
      });
    },
  );

  it('releases the reservation of a call the provider refused before running it: nothing billed', async () => {
    const before = await usage();
    platform.bedrock.misbehave({ refuse: true });
    const refused = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages, max_tokens: 20 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_request');
    expect(await usage()).toEqual(before);
  });

  it('settles a model that reports more than was reserved, and counts the overage', async () => {
    platform.bedrock.misbehave({ extraInputTokens: 1000 });
    const before = await usage();
    const lines: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => lines.push(String(chunk)) > 0);
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages, max_tokens: 20 },
    });
    stdout.mockRestore();
    expect(answer.status).toBe(200);
    expect(answer.body.usage.prompt_tokens).toBeGreaterThan(1000);
    expect((await usage()).input_tokens - before.input_tokens).toBe(answer.body.usage.prompt_tokens);
    // one CloudWatch embedded-metric line: the tokens beyond the reservation, by model, naming the tenant
    const reserved = chatInputTokens(messages) + 20;
    const used = answer.body.usage.prompt_tokens + answer.body.usage.completion_tokens;
    const metric = lines.map((line) => JSON.parse(line)).find((line) => 'ReservationOverageTokens' in line);
    expect(metric).toMatchObject({
      ReservationOverageTokens: used - reserved,
      model: 'nova-micro',
      tenantId: 'deadline-co',
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'MultiTenantAiPlatform',
            Dimensions: expect.arrayContaining([['service', 'tier', 'model']]),
          },
        ],
      },
    });
  });
});
