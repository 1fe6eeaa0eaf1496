import { costNanoUsd, nanoUsdToUsd } from '../../lambdas/core/catalog';
import { DEFAULT_MODELS, platformConfig } from '../../lib/config';
import { runTenantCli } from '../../local/tenant-cli';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

type UsageRow = { model: string; requests: number; input_tokens: number; output_tokens: number; cost_usd: number };

/** Routing with fallbacks, through the local platform with its Bedrock told to throttle, fail or hang a model. */
describe('routing with fallbacks', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform();
  });
  afterAll(() => platform.close());

  const setFault = (model: string, fault: string | null) =>
    call(platform, 'PUT', '/local/model-faults', { credential: platform.operatorToken, body: { model, fault } });
  const setRoutes = (tenantId: string, routes: unknown, version?: number) =>
    call(platform, 'PUT', `/admin/tenants/${tenantId}/routing`, {
      credential: platform.operatorToken,
      body: { routes, ...(version !== undefined && { version }) },
    });
  const chat = (apiKey: string, extra: Record<string, unknown> = {}) =>
    call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 40, ...extra },
    });
  const usageByModel = async (apiKey: string): Promise<UsageRow[]> =>
    (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: apiKey })).body.data;
  const auditOf = async (apiKey: string, requestId: string) =>
    (await call(platform, 'GET', `/v1/audit/${requestId}`, { credential: apiKey })).body;

  afterEach(async () => {
    for (const model of ['nova-micro', 'nova-lite', 'nova-micro@us']) await setFault(model, null);
  });

  it('serves a throttled model by its fallback, billed as the fallback alone, and says so', async () => {
    // GIVEN a tenant whose nova-micro falls back to nova-lite when throttled, and nova-micro throttled
    const { apiKey } = await onboard(platform, 'route-throttle');
    const set = await setRoutes('route-throttle', {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['throttled'] },
    });
    expect(set.status).toBe(200);
    await setFault('nova-micro', 'throttle');
    // WHEN it asks nova-micro
    const answer = await chat(apiKey);
    // THEN nova-lite answers, the answer names it, and the attempts are listed
    expect(answer.status).toBe(200);
    expect(answer.body.model).toBe('nova-lite');
    expect(answer.headers.get('x-attempts')).toBe('nova-micro=throttled, nova-lite=ok');
    // AND only nova-lite is billed (the throttled attempt never ran), at its own price, exactly
    const { prompt_tokens, completion_tokens } = answer.body.usage;
    const price = costNanoUsd(
      { name: 'nova-lite', ...DEFAULT_MODELS['nova-lite'] } as never,
      prompt_tokens,
      completion_tokens,
    );
    expect(await usageByModel(apiKey)).toEqual([
      expect.objectContaining({
        model: 'nova-lite',
        requests: 1,
        input_tokens: prompt_tokens,
        output_tokens: completion_tokens,
        cost_usd: nanoUsdToUsd(price),
      }),
    ]);
    // AND the audit record lists the attempts
    const requestId = answer.headers.get('x-request-id') as string;
    expect((await auditOf(apiKey, requestId)).attempts).toEqual(['nova-micro=throttled', 'nova-lite=ok']);
  });

  it('bills an attempt that failed after it may have run at its own model and price, and the fallback at its own', async () => {
    // GIVEN nova-micro failing with a 500 (it may have run) and a route moving on at 5xx
    const { apiKey } = await onboard(platform, 'route-fivexx');
    await setRoutes('route-fivexx', {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['5xx'] },
    });
    await setFault('nova-micro', 'error');
    const answer = await chat(apiKey);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-attempts')).toBe('nova-micro=5xx, nova-lite=ok');
    // THEN each model is billed once, in its own row: nova-micro its estimate (all 40 output tokens), nova-lite what it used
    const rows = await usageByModel(apiKey);
    const micro = rows.find((row) => row.model === 'nova-micro') as UsageRow;
    const lite = rows.find((row) => row.model === 'nova-lite') as UsageRow;
    expect(micro).toMatchObject({ requests: 1, output_tokens: 40 });
    expect(micro.cost_usd).toBe(
      nanoUsdToUsd(costNanoUsd(DEFAULT_MODELS['nova-micro'] as never, micro.input_tokens, micro.output_tokens)),
    );
    expect(lite).toMatchObject({
      requests: 1,
      input_tokens: answer.body.usage.prompt_tokens,
      output_tokens: answer.body.usage.completion_tokens,
    });
  });

  it('retries a throttled target with backoff before it moves on, and refuses when every attempt is throttled', async () => {
    const { apiKey } = await onboard(platform, 'route-retry');
    await setRoutes('route-retry', {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['throttled'], retries: 1 },
    });
    await setFault('nova-micro', 'throttle');
    await setFault('nova-lite', 'throttle');
    const refused = await chat(apiKey);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('upstream_unavailable');
    // Each attempt is the transport's three tries; the route's retry is one attempt more per target.
    expect(refused.headers.get('x-attempts')).toBe(
      'nova-micro=throttled, nova-micro=throttled, nova-lite=throttled, nova-lite=throttled',
    );
    // Nothing ran: nothing billed.
    expect(await usageByModel(apiKey)).toEqual([]);
  });

  it('moves on after the attempt timeout when a target hangs', async () => {
    const { apiKey } = await onboard(platform, 'route-timeout');
    await setRoutes('route-timeout', {
      'nova-micro': {
        targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }],
        on: ['timeout'],
        attempt_timeout_ms: 1000,
      },
    });
    await setFault('nova-micro', 'timeout');
    const answer = await chat(apiKey);
    expect(answer.status).toBe(200);
    expect(answer.body.model).toBe('nova-lite');
    expect(answer.headers.get('x-attempts')).toBe('nova-micro=timeout, nova-lite=ok');
    // The hung attempt may have run: billed at its estimate, as its own model.
    expect((await usageByModel(apiKey)).map((row) => row.model).sort()).toEqual(['nova-lite', 'nova-micro']);
  });

  it('falls back on a stream before its first event, and through a cross-region profile', async () => {
    const { apiKey } = await onboard(platform, 'route-stream');
    await setRoutes('route-stream', {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-micro@us' }], on: ['throttled'] },
    });
    await setFault('nova-micro', 'throttle');
    const streamed = await chat(apiKey, { stream: true });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('x-attempts')).toBe('nova-micro=throttled, nova-micro@us=ok');
    expect(streamed.text).toContain('"model":"nova-micro"');
    expect(streamed.text).toContain('data: [DONE]');
    // Served by the same model through its profile: billed as nova-micro.
    expect(await usageByModel(apiKey)).toEqual([expect.objectContaining({ model: 'nova-micro', requests: 1 })]);
  });

  it('does not move on at a condition the route does not name', async () => {
    const { apiKey } = await onboard(platform, 'route-strict');
    await setRoutes('route-strict', {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['throttled'] },
    });
    await setFault('nova-micro', 'error');
    const failed = await chat(apiKey);
    expect(failed.status).toBe(502);
    expect(failed.headers.get('x-attempts')).toBe('nova-micro=5xx');
  });

  it('routes a name of the tenant’s own, and spreads first attempts by weight', async () => {
    const { apiKey } = await onboard(platform, 'route-alias');
    await setRoutes('route-alias', {
      fast: {
        targets: [
          { model: 'nova-micro', weight: 1 },
          { model: 'nova-lite', weight: 1 },
        ],
      },
    });
    const served = new Set<string>();
    for (let i = 0; i < 12; i++) served.add((await chat(apiKey, { model: 'fast' })).body.model);
    // 12 request ids at 1:1: both models take some (all twelve on one has odds of 1 in 2,048)
    expect([...served].sort()).toEqual(['nova-lite', 'nova-micro']);
  });

  it('keeps routes per tenant: another tenant is served as before', async () => {
    const { apiKey } = await onboard(platform, 'route-other');
    await setFault('nova-micro', 'throttle');
    const refused = await chat(apiKey);
    // No route of its own, none for its tier: the model alone, refused.
    expect(refused.status).toBe(503);
    expect(refused.headers.get('x-attempts')).toBe('nova-micro=throttled');
  });
});

describe('routing administration', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform();
    await onboard(platform, 'route-admin');
  });
  afterAll(() => platform.close());

  const admin = (method: string, body?: unknown) =>
    call(platform, method, '/admin/tenants/route-admin/routing', { credential: platform.operatorToken, body });

  it('refuses targets that cannot serve, and a write at a version other than the current one', async () => {
    const bad = [
      { 'nova-micro': { targets: [{ model: 'gpt-9' }] } },
      { 'nova-micro': { targets: [{ model: 'titan-embed-text-v2' }] } },
      { 'nova-micro': { targets: [{ model: 'nova-lite@mars' }] } },
      { 'nova-micro': { targets: [{ model: 'nova-lite', weight: 0 }] } },
      { 'nova-micro': { targets: [{ model: 'nova-lite' }], on: ['sometimes'] } },
      { 'nova-micro': { targets: [] } },
    ];
    for (const routes of bad) {
      const refused = await admin('PUT', { routes });
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('invalid_request');
    }
    const before = (await admin('GET')).body;
    expect(before).toMatchObject({ object: 'routing', routes: {}, tier: 'basic', tier_routes: {} });
    const routes = { 'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }] } };
    const first = await admin('PUT', { routes, version: before.version });
    expect(first.status).toBe(200);
    expect(first.body.routes['nova-micro']).toEqual({
      targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }],
      on: ['throttled', '5xx', 'timeout'],
      retries: 0,
    });
    // A second writer that read the same version loses with a 409, never overwriting the first.
    const stale = await admin('PUT', { routes: {}, version: before.version });
    expect(stale.status).toBe(409);
    expect((await admin('GET')).body.routes).toEqual(first.body.routes);
  });

  it('refuses routes too large to travel in the authorizer context', async () => {
    const long = (i: number) => `m${i}-${'x'.repeat(120)}`;
    const targets = [0, 1, 2, 3].map((i) => ({ model: long(i) }));
    const routes = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`route-${i}`, { targets }]));
    const refused = await admin('PUT', { routes });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/at most 2048/);
  });

  it('sets, shows and removes a route from the tenant CLI', async () => {
    const lines: string[] = [];
    const env = { PORT: String(new URL(platform.url).port), LOCAL_DATA_DIR: platform.dataDir };
    const cli = (...args: string[]) => runTenantCli(args, env, (line) => lines.push(line));
    await cli(
      'route',
      'set',
      'route-admin',
      'nova-lite',
      '--fallback',
      'nova-micro',
      '--on',
      'throttled,5xx',
      '--retries',
      '2',
    );
    const shown = JSON.parse(lines.at(-1) as string);
    expect(shown.routes['nova-lite']).toEqual({
      targets: [{ model: 'nova-lite' }, { model: 'nova-micro' }],
      on: ['throttled', '5xx'],
      retries: 2,
    });
    await cli('route', 'remove', 'route-admin', 'nova-lite');
    await cli('route', 'get', 'route-admin');
    expect(JSON.parse(lines.at(-1) as string).routes['nova-lite']).toBeUndefined();
  });
});

describe("a tier's routes", () => {
  it('serve the tier’s tenants where they have no route of their own, and theirs come first', async () => {
    // GIVEN a deployment whose basic tier falls back from nova-micro to its US cross-region profile
    const config = platformConfig();
    const clock = new ManualClock();
    const platform = await startTestPlatform(
      {
        ...config,
        routing: {
          ...config.routing,
          basic: {
            'nova-micro': {
              targets: [{ model: 'nova-micro' }, { model: 'nova-micro@us' }],
              on: ['throttled'],
              retries: 0,
            },
          },
        },
      },
      { now: clock.now },
    );
    try {
      const fault = await call(platform, 'PUT', '/local/model-faults', {
        credential: platform.operatorToken,
        body: { model: 'nova-micro', fault: 'throttle' },
      });
      expect(fault.status).toBe(200);
      const chat = (apiKey: string) =>
        call(platform, 'POST', '/v1/chat/completions', {
          credential: apiKey,
          body: { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 },
        });
      const { apiKey } = await onboard(platform, 'tier-routed');
      expect((await chat(apiKey)).headers.get('x-attempts')).toBe('nova-micro=throttled, nova-micro@us=ok');
      // A tenant's own route for the model replaces its tier's, once cached authorizer decisions have expired.
      await call(platform, 'PUT', '/admin/tenants/tier-routed/routing', {
        credential: platform.operatorToken,
        body: {
          routes: { 'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['throttled'] } },
        },
      });
      clock.advance((config.authorizerCacheTtlSeconds + 1) * 1000);
      expect((await chat(apiKey)).headers.get('x-attempts')).toBe('nova-micro=throttled, nova-lite=ok');
    } finally {
      await platform.close();
    }
  });
});
