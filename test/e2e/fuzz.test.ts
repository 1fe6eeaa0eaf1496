import fc from 'fast-check';
import type { ErrorCode } from '../../contract/errors';
import { ROUTES, type Route } from '../../contract/routes';
import { call, onboard, startTestPlatform } from '../support/platform';

/**
 * Every route, fed what an attacker who reads the code would send: odd path parameters and percent
 * sequences, unknown and malformed query parameters, bodies of every JSON type, valid bodies with one
 * field broken, text that is not JSON, the wrong content type. Whatever comes in, the answer is
 * never a 5xx, and every error has the one shape with a code of the public contract.
 */
const KNOWN_CODES: readonly ErrorCode[] = [
  'invalid_request',
  'invalid_json',
  'unsupported_content_type',
  'tenant_override_forbidden',
  'unknown_model',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'tokens_per_minute_exceeded',
  'quota_exceeded',
  'budget_exceeded',
];

const FUZZ_TENANT = 'fuzz-co';

/** A valid body per route, for mutations that break one field at a time. */
const VALID_BODIES: Record<string, Record<string, unknown>> = {
  'POST /v1/chat/completions': {
    model: 'nova-micro',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 8,
    retrieval: { top_k: 2 },
  },
  'POST /v1/embeddings': { model: 'titan-embed-text-v2', input: ['hello'] },
  'POST /v1/documents': { id: 'doc-1', title: 't', text: 'hello world', metadata: { lang: 'en' } },
  'POST /v1/retrieve': { query: 'hello', top_k: 3, filter: { lang: 'en' } },
  'POST /admin/tenants': { id: 'fresh-co', tier: 'basic', limits: { requestsPerMinute: 5 } },
  'PATCH /admin/tenants/{id}': { tier: 'basic', limits: { monthlyTokens: 10 } },
};

const oddText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('%ZZ', '%E0%A4%A', '%00', '..%2F..%2Fadmin', '%F0%9F%98', '%', '%2', 'a%20b', '%C0%AF', '\u0000'),
  fc.constantFrom('2026-12-01', '2026-02-31', '2026-13-01', '9999-99-99', '-1', '1e400', 'NaN', '0x10', '[]', '{}'),
);

/** A path with the route's parameters filled by odd text (percent-encoded, or raw percent sequences). */
const pathOf = (route: Route) =>
  fc
    .array(fc.tuple(oddText, fc.boolean()), {
      minLength: (route.path.match(/\{/g) ?? []).length,
      maxLength: (route.path.match(/\{/g) ?? []).length,
    })
    .map((values) => {
      let i = 0;
      return route.path.replace(/\{\w+\}/g, () => {
        const [value, encode] = values[i++];
        const text = value === FUZZ_TENANT ? `${value}-x` : value;
        return encode ? encodeURIComponent(text) || 'x' : text.replace(/[/?#\s]/g, '') || 'x';
      });
    });

const queryOf = fc
  .dictionary(
    fc.oneof(fc.constantFrom('limit', 'cursor', 'from', 'to', 'group_by', 'month'), fc.string({ maxLength: 8 })),
    oddText,
    { maxKeys: 4 },
  )
  .map((query) => {
    const search = new URLSearchParams(query).toString();
    return search ? `?${search}` : '';
  });

const bodyOf = (route: Route) => {
  const valid = VALID_BODIES[`${route.method} ${route.path}`];
  const mutated = valid
    ? fc
        .tuple(fc.constantFrom(...Object.keys(valid), 'tenant_id', 'extra'), fc.option(fc.jsonValue({ maxDepth: 3 })))
        .map(([key, value]) => {
          const body: Record<string, unknown> = { ...valid };
          if (value === null) delete body[key];
          else body[key] = value;
          return JSON.stringify(body);
        })
    : fc.constant(undefined);
  return fc.oneof(
    mutated,
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 60 }),
    fc.constant(undefined),
  );
};

const requestOf = fc.constantFrom(...ROUTES).chain((route) =>
  fc.record({
    route: fc.constant(route),
    path: pathOf(route),
    query: queryOf,
    body: bodyOf(route),
    contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', ''),
  }),
);

describe('every route answers bad input with a 4xx in the error shape, never a 5xx', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, FUZZ_TENANT, { tier: 'standard' }));
  });
  afterAll(() => platform.close());

  it('holds for generated requests to every route', async () => {
    await fc.assert(
      fc.asyncProperty(requestOf, async ({ route, path, query, body, contentType }) => {
        const credential = route.auth === 'admin' ? platform.operatorToken : apiKey;
        const response = await fetch(`${platform.url}${path}${query}`, {
          method: route.method,
          headers: {
            authorization: `Bearer ${credential}`,
            ...(contentType && { 'content-type': contentType }),
          },
          body: route.method === 'GET' ? undefined : body,
        });
        const text = await response.text();
        expect(response.status).toBeLessThan(500);
        if (response.status >= 400) {
          const answer = JSON.parse(text);
          expect(answer).toEqual({
            error: {
              code: expect.any(String),
              message: expect.any(String),
              type: expect.any(String),
              request_id: expect.any(String),
            },
          });
          expect(KNOWN_CODES).toContain(answer.error.code);
        }
      }),
      { seed: 20261124, numRuns: 400 },
    );
  });

  it.each([
    ['a reversed date range', 'GET', '/v1/usage?from=2026-12-01&to=2026-01-01', 400, 'invalid_request'],
    ['an impossible date', 'GET', '/v1/usage?from=2026-02-31', 400, 'invalid_request'],
    ['a range of more than a year', 'GET', '/v1/usage?from=2020-01-01&to=2026-01-01', 400, 'invalid_request'],
    ['bad percent-encoding in a tenant path', 'GET', '/v1/documents/%ZZ', 400, 'invalid_request'],
    ['a cut UTF-8 sequence in a path', 'GET', '/v1/audit/%E0%A4%A', 400, 'invalid_request'],
    ['bad percent-encoding in an admin path, without credentials', 'GET', '/admin/tenants/%ZZ', 400, 'invalid_request'],
  ])('answers %s with a 4xx', async (_name, method, path, status, code) => {
    const response = await call(platform, method, path, { credential: path.startsWith('/admin') ? undefined : apiKey });
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
  });

  it.each([
    [
      'a chat with retrieval and no user message',
      '/v1/chat/completions',
      { model: 'nova-micro', messages: [{ role: 'system', content: 'x' }], retrieval: {} },
    ],
    [
      'an embedding input over the model limit',
      '/v1/embeddings',
      { model: 'titan-embed-text-v2', input: '字'.repeat(9000) },
    ],
    [
      'an embedding input over 50,000 characters',
      '/v1/embeddings',
      { model: 'titan-embed-text-v2', input: 'a '.repeat(25_001) },
    ],
    ['a blank document', '/v1/documents', { text: ' \n\t ' }],
  ])('answers %s with 400', async (_name, path, body) => {
    const response = await call(platform, 'POST', path, { credential: apiKey, body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('writes an audit record for refusals before the handler body runs, with oversized fields cut', async () => {
    const refusals = [
      { rawBody: '{"model": "nova-micro",', code: 'invalid_json' },
      { rawBody: JSON.stringify({ text: 'x'.repeat(1024 * 1024 + 1) }), code: 'payload_too_large' },
      { body: { model: 'nova-micro', messages: [], tenant_id: 'other-co' }, code: 'tenant_override_forbidden' },
      { body: { model: 'm'.repeat(100_000), messages: [{ role: 'user', content: 'hi' }] }, code: 'unknown_model' },
    ];
    for (const refusal of refusals) {
      const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, ...refusal });
      expect(answer.body.error.code).toBe(refusal.code);
      const requestId = answer.headers.get('x-request-id');
      const record = await call(platform, 'GET', `/v1/audit/${requestId}`, { credential: apiKey });
      expect(record.status).toBe(200);
      expect(record.body).toMatchObject({ error_code: refusal.code, status: answer.status });
      expect(String(record.body.model ?? '').length).toBeLessThanOrEqual(128);
    }
  });
});
