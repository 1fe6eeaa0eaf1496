import { randomUUID } from 'node:crypto';
import type { LocalPlatform } from '../../local/platform';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { forgedTokens } from '../support/tokens';

/**
 * Adversarial isolation suite, over HTTP against the local platform.
 *
 * The attacker is tenant `alpha-labs` (or someone holding nothing); the victim is `bravo-bank`,
 * which holds usage, audit records with prompt text (it opted in) and API keys. Every attack
 * asserts its exact status and error code, and that no byte of bravo's data (its id, its key ids,
 * its request ids, the secret phrase in its prompts) appears in the answer's body or headers.
 *
 * | #  | category        | attack                                                         | expected |
 * |----|-----------------|----------------------------------------------------------------|----------|
 * | 1  | JWT             | signed by an unknown key, claiming bravo                       | 401      |
 * | 2  | JWT             | unknown `kid`                                                  | 401      |
 * | 3  | JWT             | `alg: none`                                                    | 401      |
 * | 4  | JWT             | HS256 keyed with the issuer's public key                       | 401      |
 * | 5  | JWT             | expired                                                        | 401      |
 * | 6  | JWT             | not yet valid (`nbf` in the future)                            | 401      |
 * | 7  | JWT             | wrong issuer                                                   | 401      |
 * | 8  | JWT             | wrong audience                                                 | 401      |
 * | 9  | JWT             | no tenant claim                                                | 401      |
 * | 10 | JWT             | alpha's real token with its payload swapped to bravo           | 401      |
 * | 11 | JWT             | valid token for a suspended tenant                             | 403      |
 * | 12 | JWT             | valid token for an unknown tenant                              | 401      |
 * | 13 | JWT             | two tokens in one header                                       | 401      |
 * | 14 | JWT             | token in the query string, no header                           | 401      |
 * | 15 | JWT             | token under the Basic scheme                                   | 401      |
 * | 16 | API key         | revoked key                                                    | 401      |
 * | 17 | API key         | truncated key                                                  | 401      |
 * | 18 | API key         | alpha's key id with an altered secret                          | 401      |
 * | 19 | API key         | bravo's key id with alpha's secret                             | 401      |
 * | 20 | API key         | alpha's key with one character of its id changed               | 401      |
 * | 21 | API key         | key of an offboarded tenant                                    | 401      |
 * | 22 | API key         | key in `x-api-key` instead of Authorization                    | 401      |
 * | 23 | API key         | key with trailing bytes                                        | 401      |
 * | 24 | API key         | empty bearer                                                   | 401      |
 * | 25 | tenant override | `tenant_id: bravo` in the chat body                            | 400      |
 * | 26 | tenant override | `tenantId` in the chat body                                    | 400      |
 * | 27 | tenant override | `organization_id` in the chat body                             | 400      |
 * | 28 | tenant override | `?tenant_id=bravo` on usage                                    | 400      |
 * | 29 | tenant override | `x-tenant-id: bravo` header                                    | 400      |
 * | 30 | tenant override | `x-org-id: bravo` header                                       | 400      |
 * | 31 | tenant override | bravo in the path: `/v1/tenants/bravo-bank/usage`              | 404      |
 * | 32 | tenant override | path traversal `%2e%2e` from a tenant route to an admin route  | 403      |
 * | 33 | body            | body over the 1 MiB limit                                      | 413      |
 * | 34 | body            | body over API Gateway's 10 MB limit                            | 413      |
 * | 35 | body            | malformed JSON                                                 | 400      |
 * | 36 | body            | `text/plain` content type                                      | 400      |
 * | 37 | body            | form-encoded body                                              | 400      |
 * | 38 | body            | a JSON array instead of an object                              | 400      |
 * | 39 | body            | `__proto__` carrying a tenant id (ignored, served as alpha)    | 200      |
 * | 40 | body            | homoglyph `tеnant_id` (Cyrillic е; ignored, served as alpha)   | 200      |
 * | 41 | body            | control characters in the model name                           | 400      |
 * | 42 | enumeration     | bravo's audit record by its request id                         | 404      |
 * | 43 | enumeration     | an audit id that exists nowhere (same answer as #42)           | 404      |
 * | 44 | enumeration     | path-traversal audit id                                        | 404      |
 * | 45 | enumeration     | audit cursor forged from one of bravo's sort keys              | 200 (own data only) |
 * | 46 | enumeration     | garbage audit cursor                                           | 400      |
 * | 47 | enumeration     | usage range smuggling key prefixes                             | 400      |
 * | 48 | enumeration     | usage `group_by=tenant`                                        | 400      |
 * | 49 | admin           | read bravo with alpha's key                                    | 403      |
 * | 50 | admin           | onboard a tenant with alpha's JWT                              | 403      |
 * | 51 | admin           | raise alpha's own limits with alpha's key                      | 403      |
 * | 52 | admin           | offboard bravo with alpha's key                                | 403      |
 * | 53 | admin           | issue a key for bravo with alpha's key                         | 403      |
 * | 54 | admin           | revoke bravo's key with alpha's key                            | 403      |
 * | 55 | admin           | mint a dev JWT for bravo with alpha's key                      | 403      |
 * | 56 | admin           | operator revokes bravo's key id under alpha's path             | 404      |
 * | 57 | routing         | PUT on the chat route                                          | 404      |
 * | 58 | routing         | unknown route                                                  | 404      |
 */

const SECRET_PHRASE = 'BRAVO-CONFIDENTIAL-7731';
const chatBody = {
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'What is our quarterly revenue?' }],
  max_tokens: 16,
};

interface Attack {
  readonly name: string;
  readonly status: number;
  readonly code?: string;
  readonly send: () => ReturnType<typeof call>;
}

describe('adversarial isolation suite', () => {
  let platform: LocalPlatform;
  const clock = new ManualClock();
  // A fixed range around today: offboarding's drain moves the clock on, past midnight when run late.
  const day = (offsetDays: number) => new Date(clock.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
  const usageOfDays = `/v1/usage?from=${day(-1)}&to=${day(2)}`;
  const victim = { keyIds: [] as string[], requestIds: [] as string[], apiKey: '', usageBefore: undefined as unknown };
  let alpha: Awaited<ReturnType<typeof onboard>>;
  let alphaToken: string;
  let attacks: Attack[];

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    const operator = platform.operatorToken;

    // The victim: usage, audit records holding its prompt text, two keys.
    const bravo = await onboard(platform, 'bravo-bank', { tier: 'standard', audit_prompts: true });
    const secondKey = await call(platform, 'POST', '/admin/tenants/bravo-bank/api-keys', { credential: operator });
    victim.apiKey = bravo.apiKey;
    victim.keyIds.push(bravo.keyId, secondKey.body.key_id);
    for (let i = 0; i < 3; i++) {
      const body = { ...chatBody, messages: [{ role: 'user', content: `${SECRET_PHRASE} forecast ${i}` }] };
      const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: bravo.apiKey, body });
      expect(answer.status).toBe(200);
      victim.requestIds.push(answer.headers.get('x-request-id') ?? '');
    }
    victim.usageBefore = (await call(platform, 'GET', usageOfDays, { credential: bravo.apiKey })).body;

    // The attacker and the tenants whose credentials must no longer work, prepared before any use.
    alpha = await onboard(platform, 'alpha-labs');
    alphaToken = await platform.issuer.mint({ tenantId: 'alpha-labs', userId: 'mallory' });
    expect(
      (await call(platform, 'POST', '/v1/chat/completions', { credential: alpha.apiKey, body: chatBody })).status,
    ).toBe(200);
    const revoked = await call(platform, 'POST', '/admin/tenants/alpha-labs/api-keys', { credential: operator });
    await call(platform, 'DELETE', `/admin/tenants/alpha-labs/api-keys/${revoked.body.key_id}`, {
      credential: operator,
    });
    await onboard(platform, 'frozen-co');
    await call(platform, 'PATCH', '/admin/tenants/frozen-co', { credential: operator, body: { status: 'suspended' } });
    const gone = await onboard(platform, 'gone-co');
    await offboardCompletely(platform, clock, 'gone-co');

    const forged = await forgedTokens(platform.issuer, 'bravo-bank');
    const [, alphaKeyId, alphaSecret] = /^mt_([^_]+)_(.+)$/.exec(alpha.apiKey) ?? [];
    const flip = (text: string) => `${text.slice(0, -1)}${text.endsWith('0') ? '1' : '0'}`;
    const bravoAuditCursor = Buffer.from(`AUDIT#9999-12-31T00:00:00.000Z#${victim.requestIds[0]}`).toString(
      'base64url',
    );
    const post =
      (body: unknown, extra: Parameters<typeof call>[3] = {}) =>
      () =>
        call(platform, 'POST', '/v1/chat/completions', { credential: alpha.apiKey, body, ...extra });
    const usageWith = (credential: string | undefined, headers?: Record<string, string>) => () =>
      call(platform, 'GET', '/v1/usage', { credential, headers });
    const asAlpha = (method: string, path: string, body?: unknown) => () =>
      call(platform, method, path, { credential: alpha.apiKey, body });

    attacks = [
      {
        name: 'JWT signed by an unknown key',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(forged.signedByUnknownKey),
      },
      { name: 'JWT with an unknown kid', status: 401, code: 'unauthenticated', send: usageWith(forged.unknownKid) },
      { name: 'JWT with alg none', status: 401, code: 'unauthenticated', send: usageWith(forged.algNone) },
      {
        name: 'JWT HS256 keyed with the public key',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(forged.hs256WithPublicKey),
      },
      { name: 'expired JWT', status: 401, code: 'unauthenticated', send: usageWith(forged.expired) },
      { name: 'JWT not yet valid', status: 401, code: 'unauthenticated', send: usageWith(forged.notYetValid) },
      { name: 'JWT from the wrong issuer', status: 401, code: 'unauthenticated', send: usageWith(forged.wrongIssuer) },
      {
        name: 'JWT for the wrong audience',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(forged.wrongAudience),
      },
      {
        name: 'JWT without a tenant claim',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(forged.missingTenantClaim),
      },
      {
        name: 'JWT with its payload swapped to bravo',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(forged.tamperedPayload),
      },
      {
        name: 'valid JWT of a suspended tenant',
        status: 403,
        code: 'forbidden',
        send: async () => usageWith(await platform.issuer.mint({ tenantId: 'frozen-co', userId: 'eve' }))(),
      },
      {
        name: 'valid JWT of an unknown tenant',
        status: 401,
        code: 'unauthenticated',
        send: async () => usageWith(await platform.issuer.mint({ tenantId: 'ghost-co', userId: 'eve' }))(),
      },
      {
        name: 'two tokens in one header',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(`${alphaToken} ${forged.algNone}`),
      },
      {
        name: 'token in the query string',
        status: 401,
        code: 'unauthenticated',
        send: () => call(platform, 'GET', `/v1/usage?access_token=${alphaToken}`),
      },
      {
        name: 'token under the Basic scheme',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(undefined, { authorization: `Basic ${alphaToken}` }),
      },
      { name: 'revoked API key', status: 401, code: 'unauthenticated', send: usageWith(revoked.body.api_key) },
      { name: 'truncated API key', status: 401, code: 'unauthenticated', send: usageWith(alpha.apiKey.slice(0, -5)) },
      {
        name: 'API key with an altered secret',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(`mt_${alphaKeyId}_${flip(alphaSecret)}`),
      },
      {
        name: "bravo's key id with alpha's secret",
        status: 401,
        code: 'unauthenticated',
        send: usageWith(`mt_${victim.keyIds[0]}_${alphaSecret}`),
      },
      {
        name: 'API key with its id part changed',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(`mt_${flip(alphaKeyId)}_${alphaSecret}`),
      },
      { name: 'API key of an offboarded tenant', status: 401, code: 'unauthenticated', send: usageWith(gone.apiKey) },
      {
        name: 'API key in x-api-key',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(undefined, { 'x-api-key': alpha.apiKey }),
      },
      {
        name: 'API key with trailing bytes',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(`${alpha.apiKey}AAAA`),
      },
      {
        name: 'empty bearer',
        status: 401,
        code: 'unauthenticated',
        send: usageWith(undefined, { authorization: 'Bearer ' }),
      },
      {
        name: 'tenant_id in the body',
        status: 400,
        code: 'tenant_override_forbidden',
        send: post({ ...chatBody, tenant_id: 'bravo-bank' }),
      },
      {
        name: 'tenantId in the body',
        status: 400,
        code: 'tenant_override_forbidden',
        send: post({ ...chatBody, tenantId: 'bravo-bank' }),
      },
      {
        name: 'organization_id in the body',
        status: 400,
        code: 'tenant_override_forbidden',
        send: post({ ...chatBody, organization_id: 'bravo-bank' }),
      },
      {
        name: 'tenant_id in the query',
        status: 400,
        code: 'tenant_override_forbidden',
        send: () => call(platform, 'GET', '/v1/usage?tenant_id=bravo-bank', { credential: alpha.apiKey }),
      },
      {
        name: 'x-tenant-id header',
        status: 400,
        code: 'tenant_override_forbidden',
        send: usageWith(alpha.apiKey, { 'x-tenant-id': 'bravo-bank' }),
      },
      {
        name: 'x-org-id header',
        status: 400,
        code: 'tenant_override_forbidden',
        send: usageWith(alpha.apiKey, { 'x-org-id': 'bravo-bank' }),
      },
      {
        name: 'tenant in the path',
        status: 404,
        code: 'not_found',
        send: asAlpha('GET', '/v1/tenants/bravo-bank/usage'),
      },
      {
        name: 'path traversal to an admin route',
        status: 403,
        code: 'forbidden',
        send: asAlpha('GET', '/v1/usage/%2e%2e/%2e%2e/admin/tenants/bravo-bank'),
      },
      {
        name: 'body over 1 MiB',
        status: 413,
        code: 'payload_too_large',
        send: post({ ...chatBody, messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] }),
      },
      {
        name: "body over API Gateway's 10 MB",
        status: 413,
        code: 'payload_too_large',
        send: post(undefined, { rawBody: `"${'y'.repeat(10_500_000)}"` }),
      },
      {
        name: 'malformed JSON',
        status: 400,
        code: 'invalid_json',
        send: post(undefined, { rawBody: '{"model": "nova-micro", "messages": [' }),
      },
      {
        name: 'text/plain body',
        status: 400,
        code: 'unsupported_content_type',
        send: post(chatBody, { headers: { 'content-type': 'text/plain' } }),
      },
      {
        name: 'form-encoded body',
        status: 400,
        code: 'unsupported_content_type',
        send: post(undefined, {
          rawBody: 'tenant_id=bravo-bank',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      },
      {
        name: 'JSON array body',
        status: 400,
        code: 'invalid_request',
        send: post(undefined, { rawBody: JSON.stringify([chatBody]) }),
      },
      {
        name: '__proto__ carrying a tenant id',
        // a parameter the API does not know: refused by name
        status: 400,
        code: 'invalid_request',
        send: post(undefined, {
          rawBody: JSON.stringify(chatBody).replace('{', '{"__proto__":{"tenantId":"bravo-bank"},'),
        }),
      },
      {
        name: 'homoglyph tenant field',
        status: 400,
        code: 'invalid_request',
        send: post({ ...chatBody, tеnant_id: 'bravo-bank' }),
      },
      {
        name: 'control characters in the model name',
        status: 400,
        code: 'unknown_model',
        send: post({ ...chatBody, model: 'nova-micro\u0000\u001b[2J' }),
      },
      {
        name: "bravo's audit record by request id",
        status: 404,
        code: 'not_found',
        send: () => asAlpha('GET', `/v1/audit/${victim.requestIds[0]}`)(),
      },
      {
        name: 'audit id that exists nowhere',
        status: 404,
        code: 'not_found',
        send: asAlpha('GET', `/v1/audit/${randomUUID()}`),
      },
      {
        name: 'path-traversal audit id',
        status: 404,
        code: 'not_found',
        send: asAlpha('GET', '/v1/audit/..%2f..%2fbravo-bank'),
      },
      {
        name: "audit cursor forged from bravo's sort key",
        status: 200,
        send: () => asAlpha('GET', `/v1/audit?cursor=${bravoAuditCursor}`)(),
      },
      {
        name: 'garbage audit cursor',
        status: 400,
        code: 'invalid_request',
        send: asAlpha('GET', '/v1/audit?cursor=not-a-cursor'),
      },
      {
        name: 'usage range smuggling key prefixes',
        status: 400,
        code: 'invalid_request',
        send: asAlpha('GET', '/v1/usage?from=USAGE%23&to=%EF%BF%BF'),
      },
      {
        name: 'usage grouped by tenant',
        status: 400,
        code: 'invalid_request',
        send: asAlpha('GET', '/v1/usage?group_by=tenant'),
      },
      {
        name: "admin: read bravo with alpha's key",
        status: 403,
        code: 'forbidden',
        send: asAlpha('GET', '/admin/tenants/bravo-bank'),
      },
      {
        name: "admin: onboard with alpha's JWT",
        status: 403,
        code: 'forbidden',
        send: () => call(platform, 'POST', '/admin/tenants', { credential: alphaToken, body: { id: 'evil-co' } }),
      },
      {
        name: "admin: raise alpha's own limits",
        status: 403,
        code: 'forbidden',
        send: asAlpha('PATCH', '/admin/tenants/alpha-labs', { limits: { requestsPerMinute: 100000 } }),
      },
      {
        name: 'admin: offboard bravo',
        status: 403,
        code: 'forbidden',
        send: asAlpha('DELETE', '/admin/tenants/bravo-bank'),
      },
      {
        name: 'admin: issue a key for bravo',
        status: 403,
        code: 'forbidden',
        send: asAlpha('POST', '/admin/tenants/bravo-bank/api-keys'),
      },
      {
        name: "admin: revoke bravo's key",
        status: 403,
        code: 'forbidden',
        send: () => asAlpha('DELETE', `/admin/tenants/bravo-bank/api-keys/${victim.keyIds[0]}`)(),
      },
      {
        name: 'local: mint a JWT for bravo',
        status: 403,
        code: 'forbidden',
        send: () =>
          call(platform, 'POST', '/local/tokens', { credential: alpha.apiKey, body: { tenant_id: 'bravo-bank' } }),
      },
      {
        name: "operator: revoke bravo's key under alpha's path",
        status: 404,
        code: 'not_found',
        send: () =>
          call(platform, 'DELETE', `/admin/tenants/alpha-labs/api-keys/${victim.keyIds[1]}`, { credential: operator }),
      },
      {
        name: 'PUT on the chat route',
        status: 404,
        code: 'not_found',
        send: asAlpha('PUT', '/v1/chat/completions', chatBody),
      },
      { name: 'unknown route', status: 404, code: 'not_found', send: asAlpha('GET', '/v1/admin') },
    ];
  });
  afterAll(() => platform.close());

  it('runs at least 40 distinct attacks', () => {
    expect(attacks.length).toBeGreaterThanOrEqual(40);
    expect(new Set(attacks.map((a) => a.name)).size).toBe(attacks.length);
  });

  it('answers every attack with its exact status and code, and leaks nothing of bravo', async () => {
    const secrets = ['bravo-bank', SECRET_PHRASE, ...victim.keyIds, ...victim.requestIds];
    const outcomes = [];
    for (const attack of attacks) {
      const response = await attack.send();
      const exposed = `${response.text}\n${JSON.stringify([...response.headers])}`;
      outcomes.push({
        attack: attack.name,
        status: response.status,
        code: response.status >= 400 ? response.body?.error?.code : undefined,
        leaked: secrets.filter((secret) => exposed.includes(secret)),
      });
    }
    expect(outcomes).toEqual(attacks.map((a) => ({ attack: a.name, status: a.status, code: a.code, leaked: [] })));
  });

  it('answers an id of another tenant exactly like an id that exists nowhere', async () => {
    const theirs = await call(platform, 'GET', `/v1/audit/${victim.requestIds[1]}`, { credential: alpha.apiKey });
    const nowhere = await call(platform, 'GET', `/v1/audit/${randomUUID()}`, { credential: alpha.apiKey });
    const { request_id: _a, ...theirsError } = theirs.body.error;
    const { request_id: _b, ...nowhereError } = nowhere.body.error;
    expect([theirs.status, theirsError]).toEqual([nowhere.status, nowhereError]);
  });

  it('left bravo whole: same usage, keys working, its audit records its own', async () => {
    expect((await call(platform, 'GET', usageOfDays, { credential: victim.apiKey })).body).toEqual(victim.usageBefore);
    const audit = await call(platform, 'GET', '/v1/audit?limit=100', { credential: victim.apiKey });
    expect(audit.status).toBe(200);
    const chats = audit.body.data.filter((record: { route: string }) => record.route === 'POST /v1/chat/completions');
    expect(chats.map((record: { request_id: string }) => record.request_id).sort()).toEqual(
      [...victim.requestIds].sort(),
    );
    expect(chats.every((record: { prompt: string }) => record.prompt.includes(SECRET_PHRASE))).toBe(true);
  });
});
