import OpenAI from 'openai';
import type { LocalPlatform } from '../../local/platform';
import { call, onboard, startTestPlatform } from '../support/platform';
import { forgedTokens } from '../support/tokens';

const chatBody = {
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'Summarize our refund policy.' }],
  max_tokens: 28,
};

describe('local platform over HTTP', () => {
  let platform: LocalPlatform;
  let alpha: Awaited<ReturnType<typeof onboard>>;
  let bravo: Awaited<ReturnType<typeof onboard>>;

  beforeAll(async () => {
    platform = await startTestPlatform();
    alpha = await onboard(platform, 'alpha-corp', { tier: 'standard' });
    bravo = await onboard(platform, 'bravo-inc', {
      tier: 'basic',
      limits: { monthlyTokens: 100, tokensPerMinute: 100 },
    });
  });
  afterAll(() => platform.close());

  it('serves a metered chat completion and shows each tenant only its own usage', async () => {
    // WHEN both tenants chat
    const a = await call(platform, 'POST', '/v1/chat/completions', { credential: alpha.apiKey, body: chatBody });
    const b = await call(platform, 'POST', '/v1/chat/completions', { credential: bravo.apiKey, body: chatBody });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.choices[0].message.content).toContain('Summarize our refund policy.');

    // THEN each usage report holds exactly that tenant's tokens, and nothing of the other tenant
    const usageA = await call(platform, 'GET', '/v1/usage', { credential: alpha.apiKey });
    expect(usageA.status).toBe(200);
    expect(usageA.body.totals).toMatchObject({
      requests: 1,
      input_tokens: a.body.usage.prompt_tokens,
      output_tokens: a.body.usage.completion_tokens,
    });
    for (const secret of ['bravo-inc', bravo.keyId]) {
      expect(usageA.text).not.toContain(secret);
      expect(JSON.stringify([...usageA.headers])).not.toContain(secret);
    }
    const usageB = await call(platform, 'GET', '/v1/usage?group_by=model', { credential: bravo.apiKey });
    expect(usageB.body.data).toEqual([expect.objectContaining({ model: 'nova-micro', requests: 1 })]);
    expect(usageB.text).not.toContain('alpha-corp');
  });

  it('works with the OpenAI SDK pointed at the local platform, with an API key or a JWT', async () => {
    const token = await platform.issuer.mint({ tenantId: 'alpha-corp', userId: 'alice' });
    for (const apiKey of [alpha.apiKey, token]) {
      const client = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
      const completion = await client.chat.completions.create({
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'Hello' }],
      });
      expect(completion.object).toBe('chat.completion');
      expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    }
  });

  it('refuses over the limit with 429 and Retry-After, and charges nothing', async () => {
    // bravo may use 100 tokens a month and has used about 40 above; a month limit does not
    // depend on where the minute boundary falls, so this test cannot flake on it
    expect(
      (await call(platform, 'POST', '/v1/chat/completions', { credential: bravo.apiKey, body: chatBody })).status,
    ).toBe(200);
    const before = (await call(platform, 'GET', '/v1/usage', { credential: bravo.apiKey })).body.totals;
    const refused = await call(platform, 'POST', '/v1/chat/completions', {
      credential: bravo.apiKey,
      body: { ...chatBody, max_tokens: 60 },
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.body.error).toMatchObject({ code: 'quota_exceeded', type: 'rate_limit_error' });
    expect((await call(platform, 'GET', '/v1/usage', { credential: bravo.apiKey })).body.totals).toEqual(before);
  });

  it('answers malformed JSON with 400 in the error shape', async () => {
    const response = await call(platform, 'POST', '/v1/chat/completions', {
      credential: alpha.apiKey,
      rawBody: '{"model": "nova-micro",',
    });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: {
        code: 'invalid_json',
        message: expect.any(String),
        type: 'invalid_request_error',
        request_id: expect.any(String),
      },
    });
  });

  it('answers forged, expired and missing credentials with 401 in the error shape', async () => {
    const forged = await forgedTokens(platform.issuer, 'alpha-corp');
    for (const credential of [
      forged.expired,
      forged.signedByUnknownKey,
      forged.algNone,
      forged.hs256WithPublicKey,
      undefined,
    ]) {
      const response = await call(platform, 'GET', '/v1/usage', { credential });
      expect(response.status).toBe(401);
      expect(response.body.error).toMatchObject({ code: 'unauthenticated', type: 'authentication_error' });
      expect(response.text).not.toContain('alpha-corp');
    }
  });

  it('keeps tenant credentials off admin routes (403) and answers unknown routes with 404', async () => {
    const admin = await call(platform, 'GET', '/admin/tenants/alpha-corp', { credential: alpha.apiKey });
    expect(admin.status).toBe(403);
    expect(admin.body.error.code).toBe('forbidden');
    const unknown = await call(platform, 'GET', '/v1/nothing-here', { credential: alpha.apiKey });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
  });

  it('lets the operator read a tenant but never shows key secrets', async () => {
    const response = await call(platform, 'GET', '/admin/tenants/bravo-inc', { credential: platform.operatorToken });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: 'bravo-inc',
      tier: 'basic',
      status: 'active',
      limits: { monthlyTokens: 100 },
    });
    // the secret is base64url: it may hold `_` itself
    expect(response.text).not.toContain(bravo.apiKey.replace(/^mt_[A-Za-z0-9]{16}_/, ''));
    expect((await call(platform, 'GET', '/admin/tenants/no-such', { credential: platform.operatorToken })).status).toBe(
      404,
    );
  });
});
