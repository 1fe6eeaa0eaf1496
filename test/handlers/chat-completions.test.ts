import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { type TenantContext, toAuthorizerContext } from '../../lambdas/core/tenant';
import { ROUTE_HANDLERS } from '../../lambdas/handlers';
import { streamedBody } from '../../lambdas/streamed-response';
import type { LocalPlatform } from '../../local/platform';
import { inMemoryPorts } from '../support/fakes';
import { registerTenant, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

/** A proxy event as API Gateway sends it after the authorizer allowed the call. */
function event(
  context: TenantContext,
  body: string | null,
  overrides: Partial<APIGatewayProxyEvent> = {},
): APIGatewayProxyEvent {
  return {
    httpMethod: 'POST',
    resource: '/v1/chat/completions',
    path: '/v1/chat/completions',
    headers: { 'Content-Type': 'application/json' },
    queryStringParameters: null,
    body,
    requestContext: { requestId: `req-${Math.random()}`, authorizer: toAuthorizerContext(context) },
    ...overrides,
  } as APIGatewayProxyEvent;
}

const chat = (maxTokens = 20) =>
  JSON.stringify({
    model: 'nova-micro',
    messages: [{ role: 'user', content: 'What is a tenant?' }],
    max_tokens: maxTokens,
  });

describe('POST /v1/chat/completions handler (dynalite ledger, local Bedrock)', () => {
  let platform: LocalPlatform;
  let handle: (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

  beforeAll(async () => {
    platform = await startTestPlatform();
    const handler = ROUTE_HANDLERS['chat-completions'](platform.deps);
    handle = (e) => handler(e, { awsRequestId: 'aws-req', getRemainingTimeInMillis: () => 30_000 } as Context);
  });
  afterAll(() => platform.close());

  it('answers in the OpenAI chat.completion shape and settles the usage it reports', async () => {
    const t = await registerTenant(platform, tenantContext('chat-ok'));
    // the local model's echo is longer than 8 tokens, so it is cut
    const response = await handle(event(t, chat(8)));
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body);
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'nova-micro',
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'length' }],
    });
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    const [usage] = await platform.deps.ledger.usage(t, { from: '2000-01-01', to: '2999-12-31' });
    expect(usage).toMatchObject({
      requests: 1,
      inputTokens: body.usage.prompt_tokens,
      outputTokens: body.usage.completion_tokens,
    });
    expect(usage.costNanoUsd).toBe(body.usage.prompt_tokens * 35 + body.usage.completion_tokens * 140);
  });

  it('refuses over the monthly quota with 429, Retry-After and no model call', async () => {
    // each call reserves 5 + 20 tokens and uses them all: the second does not fit in 40
    const t = await registerTenant(platform, tenantContext('chat-limited', { monthlyTokens: 40, tokensPerMinute: 40 }));
    expect((await handle(event(t, chat()))).statusCode).toBe(200);
    const modelCalls = platform.bedrock.requests.length;
    const refused = await handle(event(t, chat()));
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers?.['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'quota_exceeded', type: 'rate_limit_error' });
    expect(platform.bedrock.requests).toHaveLength(modelCalls);
    const [usage] = await platform.deps.ledger.usage(t, { from: '2000-01-01', to: '2999-12-31' });
    expect(usage.requests).toBe(1);
  });

  it.each([
    ['malformed JSON', 400, 'invalid_json', '{"model":', {}],
    ['wrong content type', 400, 'unsupported_content_type', chat(), { headers: { 'content-type': 'text/plain' } }],
    [
      'a tenant in the body',
      400,
      'tenant_override_forbidden',
      JSON.stringify({ ...JSON.parse(chat()), tenant_id: 'victim' }),
      {},
    ],
    [
      'a tenant header',
      400,
      'tenant_override_forbidden',
      chat(),
      { headers: { 'content-type': 'application/json', 'x-tenant-id': 'victim' } },
    ],
    [
      'an unknown model',
      400,
      'unknown_model',
      JSON.stringify({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }),
      {},
    ],
    ['no messages', 400, 'invalid_request', JSON.stringify({ model: 'nova-micro', messages: [] }), {}],
    ['max_tokens over the model limit', 400, 'invalid_request', chat(999_999), {}],
    [
      'a parameter it does not serve (seed)',
      400,
      'invalid_request',
      JSON.stringify({ ...JSON.parse(chat()), seed: 7 }),
      {},
    ],
    ['n above 1', 400, 'invalid_request', JSON.stringify({ ...JSON.parse(chat()), n: 2 }), {}],
    ['an unknown parameter', 400, 'invalid_request', JSON.stringify({ ...JSON.parse(chat()), frequency_boost: 1 }), {}],
    ['no body', 400, 'invalid_request', null, {}],
    ['a body over the size limit', 413, 'payload_too_large', JSON.stringify({ model: 'x'.repeat(1_100_000) }), {}],
  ])('refuses %s with %i %s and loses nothing', async (_, status, code, body, overrides) => {
    const t = await registerTenant(platform, tenantContext(`chat-bad-${code.replaceAll('_', '-')}`));
    const response = await handle(event(t, body as string | null, overrides as Partial<APIGatewayProxyEvent>));
    expect(response.statusCode).toBe(status);
    expect(JSON.parse(response.body).error).toMatchObject({
      code,
      message: expect.any(String),
      request_id: expect.any(String),
    });
    expect(await platform.deps.ledger.usage(t, { from: '2000-01-01', to: '2999-12-31' })).toEqual([]);
  });

  it("under Lambda tenant isolation, refuses another tenant's request in this tenant's execution environment", async () => {
    const handler = ROUTE_HANDLERS['chat-completions'](platform.deps);
    const isolatedFor = (tenantId: string) =>
      ({ awsRequestId: 'aws-req', tenantId, getRemainingTimeInMillis: () => 30_000 }) as Context;
    const modelCalls = platform.bedrock.requests.length;
    const t = await registerTenant(platform, tenantContext('isolated-co'));
    const refused = await handler(event(t, chat()), isolatedFor('other-co'));
    expect(refused.statusCode).toBe(403);
    expect(JSON.parse(refused.body).error.code).toBe('forbidden');
    expect(platform.bedrock.requests).toHaveLength(modelCalls);
    expect((await handler(event(t, chat()), isolatedFor('isolated-co'))).statusCode).toBe(200);
  });

  it('refuses a request without a tenant context, whatever the body says', async () => {
    const response = await handle({
      ...event(tenantContext('x-tenant'), chat()),
      requestContext: { requestId: 'r' },
    } as APIGatewayProxyEvent);
    expect(response.statusCode).toBe(401);
  });

  describe('a stream whose settle fails', () => {
    /** The chat handler on the local ledger as it is (a class: methods on its prototype), but for its settle. */
    const streamWithFailingSettle = async (tenantId: string) => {
      const handler = ROUTE_HANDLERS['chat-completions']({
        ...platform.deps,
        ledger: Object.assign(Object.create(platform.deps.ledger), {
          settle: async () => {
            throw new Error('the ledger is unreachable');
          },
        }),
      });
      const t = await registerTenant(platform, tenantContext(tenantId));
      const request = event(t, JSON.stringify({ ...JSON.parse(chat()), stream: true }));
      const response = await handler(request, {
        awsRequestId: 'aws-req',
        getRemainingTimeInMillis: () => 30_000,
      } as Context);
      expect(response.statusCode).toBe(200);
      const record = () => platform.deps.audit.get(t, request.requestContext.requestId);
      return { body: streamedBody(response) as AsyncGenerator<string>, record };
    };

    it('ends with an error event, and is audited so, under the status it was sent with', async () => {
      const { body, record } = await streamWithFailingSettle('settle-fails');
      const chunks: string[] = [];
      for await (const chunk of body) chunks.push(chunk);
      // the answer was sent, then the settle failed: the stream ends with an error event, not [DONE]
      expect(chunks.length).toBeGreaterThan(2);
      expect(JSON.parse((chunks.at(-1) ?? '').replace(/^data: /, ''))).toEqual({
        error: { code: 'internal_error', message: 'internal error', type: 'api_error' },
      });
      expect(await record()).toMatchObject({ status: 200, errorCode: 'internal_error' });
    });

    it('is audited when its caller hung up first: the record the settle did not write is written', async () => {
      const { body, record } = await streamWithFailingSettle('hang-up-settle-fails');
      expect((await body.next()).done).toBe(false);
      // the transport stops reading: the stream settles what it made, and that settle fails
      await expect(body.return(undefined)).resolves.toMatchObject({ done: true });
      expect(await record()).toMatchObject({ status: 200, errorCode: 'internal_error' });
    });
  });

  describe('metrics', () => {
    /** The handler with metrics recorded in memory and a clock that moves 7 ms per reading. */
    function measured() {
      const { ports, requestOutcomes, billed, disconnects } = inMemoryPorts();
      let clock = Date.parse('2026-11-25T10:00:00Z');
      const handler = ROUTE_HANDLERS['chat-completions']({
        ...platform.deps,
        metrics: ports.metrics,
        now: () => (clock += 7),
      });
      const call = (e: APIGatewayProxyEvent) =>
        handler(e, { awsRequestId: 'aws-req', getRemainingTimeInMillis: () => 30_000 } as Context);
      return { call, requestOutcomes, billed, disconnects };
    }

    it('counts each request with its tenant, tier, route, status and latency, and the tokens and cost it was billed', async () => {
      const { call, requestOutcomes, billed } = measured();
      const t = await registerTenant(platform, tenantContext('metrics-ok', { monthlyTokens: 40, tokensPerMinute: 40 }));
      const ok = await call(event(t, chat()));
      const refused = await call(event(t, chat()));
      expect([ok.statusCode, refused.statusCode]).toEqual([200, 429]);
      expect(requestOutcomes).toEqual([
        expect.objectContaining({
          tenantId: 'metrics-ok',
          tier: 'basic',
          route: 'POST /v1/chat/completions',
          status: 200,
        }),
        expect.objectContaining({ status: 429, errorCode: 'quota_exceeded' }),
      ]);
      expect(requestOutcomes[0].requestId).toBe(JSON.parse(ok.body).id.replace('chatcmpl-', ''));
      // Latency by the injected clock: a whole number of its 7 ms steps.
      expect(requestOutcomes[0].latencyMs % 7).toBe(0);
      expect(requestOutcomes[0].latencyMs).toBeGreaterThan(0);
      // Billed once, as the ledger settled it; the refused call billed nothing.
      const usage = JSON.parse(ok.body).usage;
      expect(billed).toEqual([
        {
          inputTokens: usage.prompt_tokens,
          outputTokens: usage.completion_tokens,
          costNanoUsd: usage.prompt_tokens * 35 + usage.completion_tokens * 140,
        },
      ]);
    });

    it('counts a stream whose caller hung up, and not one read to its end', async () => {
      const { call, disconnects, billed } = measured();
      const t = await registerTenant(platform, tenantContext('metrics-stream'));
      const streamed = async (stopAfter?: number) => {
        const response = await call(event(t, JSON.stringify({ ...JSON.parse(chat(60)), stream: true })));
        let chunks = 0;
        for await (const _chunk of streamedBody(response) ?? []) if (++chunks === stopAfter) break;
        return chunks;
      };
      expect(await streamed()).toBeGreaterThan(2);
      expect(disconnects).toEqual([]);
      await streamed(1);
      expect(disconnects).toEqual(['metrics-stream POST /v1/chat/completions']);
      // The hung-up stream was billed too: once per stream.
      expect(billed).toHaveLength(2);
    });
  });
});
