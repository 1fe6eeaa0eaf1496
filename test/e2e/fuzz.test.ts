import fc from 'fast-check';
import type { ErrorCode } from '../../contract/errors';
import { ROUTES, type Route } from '../../contract/routes';
import { call, onboard, startTestPlatform } from '../support/platform';

/**
 * Every route, fed what an attacker who reads the code would send: odd path parameters and percent
 * sequences, forged page cursors and odd limits, unknown query parameters, bodies of every JSON type,
 * valid bodies with one part broken at any depth (extreme numbers, blank and over-long strings),
 * bytes that are not UTF-8, base64, a BOM, deep nesting, the wrong content type, oversized headers.
 * Whatever comes in, the answer is never a 5xx, and every error has the one shape with a code of the
 * public contract. Seeds are fixed: a failure replays exactly.
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
/** A throwaway tenant the admin routes may change, suspend or offboard: the fuzz tenant itself is never named. */
const SPARE_TENANT = 'fuzz-spare';

/** A valid body per route, for mutations that break one part at a time. */
const VALID_BODIES: Record<string, Record<string, unknown>> = {
  'POST /v1/chat/completions': {
    model: 'nova-micro',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"hi"}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'found' },
    ],
    max_tokens: 8,
    temperature: 0.5,
    retrieval: { top_k: 2, filter: { lang: 'en' } },
    tools: [
      {
        type: 'function',
        function: {
          name: 'lookup',
          description: 'look it up',
          parameters: { type: 'object', properties: { q: { type: 'string', pattern: '^[a-z]+$' } }, required: ['q'] },
          strict: true,
        },
      },
    ],
    tool_choice: { type: 'function', function: { name: 'lookup' } },
    parallel_tool_calls: false,
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { a: { enum: ['x'] } } } },
    },
    user: 'u1',
    metadata: { k: 'v' },
  },
  'POST /v1/responses': {
    model: 'nova-micro',
    instructions: 'be brief',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'hi' }] },
      { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"q":"hi"}' },
      { type: 'function_call_output', call_id: 'c1', output: 'found' },
    ],
    tools: [
      { type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
    ],
    text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true } },
    max_output_tokens: 8,
    metadata: { k: 'v' },
    store: true,
  },
  'POST /v1/messages': {
    model: 'nova-micro',
    max_tokens: 8,
    system: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }],
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: { q: 'hi' } }] },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'found' }] }],
      },
    ],
    tools: [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }],
    tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    metadata: { user_id: 'u1' },
  },
  'POST /v1/embeddings': { model: 'titan-embed-text-v2', input: ['hello'], encoding_format: 'float' },
  'POST /v1/documents': { id: 'doc-1', title: 't', text: 'hello world', metadata: { lang: 'en', n: 1 } },
  'POST /v1/retrieve': { query: 'hello', top_k: 3, filter: { lang: 'en' } },
  'POST /admin/tenants': { id: 'fresh-co', tier: 'basic', limits: { requestsPerMinute: 5 }, audit_prompts: true },
  'PATCH /admin/tenants/{id}': { tier: 'basic', limits: { monthlyTokens: 10 }, audit_prompts: false },
};

/** A valid query per route, for mutations that break one parameter at a time. */
const VALID_QUERIES: Record<string, Record<string, string>> = {
  'GET /v1/documents': { limit: '5' },
  'GET /v1/audit': { limit: '5' },
  'GET /v1/usage': { from: '2026-11-01', to: '2026-11-20', group_by: 'day' },
  'GET /admin/usage': { month: '2026-11' },
};

const routeKey = (route: Route) => `${route.method} ${route.path}`;

/** Mostly undefined: rare odd parts keep most requests deep enough to reach the handlers' own checks. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>, weight = 4) =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight }, { arbitrary, weight: 1 });

const oddText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('%ZZ', '%E0%A4%A', '%00', '..%2F..%2Fadmin', '%F0%9F%98', '%', '%2', 'a%20b', '%C0%AF', '\u0000'),
  fc.constantFrom('2026-12-01', '2026-02-31', '2026-13-01', '9999-99-99', '-1', '1e400', 'NaN', '0x10', '[]', '{}'),
);

/** A path parameter: odd text, or (for admin routes) the spare tenant, so PATCH and DELETE reach a real record. */
const parameterOf = (route: Route) =>
  fc.oneof(
    { arbitrary: oddText, weight: 3 },
    { arbitrary: fc.constant(route.auth === 'admin' ? SPARE_TENANT : 'doc-1'), weight: 1 },
  );

/** A path with the route's parameters filled (percent-encoded, or raw, percent sequences and all). */
const pathOf = (route: Route) =>
  fc
    .array(fc.tuple(parameterOf(route), fc.boolean()), {
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

/** Page cursors a client could forge: base64url junk, or sort keys of the right prefix and wrong shape. */
const cursorOf = fc.oneof(
  fc.string({ maxLength: 40 }).map((text) => Buffer.from(text).toString('base64url')),
  fc
    .tuple(fc.constantFrom('DOC#', 'AUDIT#', 'JOB#', 'TENANT#', ''), fc.string({ unit: 'binary', maxLength: 300 }))
    .map(([prefix, rest]) => Buffer.from(prefix + rest).toString('base64url')),
  fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes).toString('base64')),
  fc.constantFrom('', '=', '-_-_', 'A'.repeat(600), '%FF', 'null'),
);

const limitOf = fc.oneof(
  fc.integer({ min: -5, max: 200 }).map(String),
  fc.double().map(String),
  fc.constantFrom('', ' 5', '0x10', '1e3', '1e400', '-0', 'Infinity', '5abc', '9'.repeat(40)),
);

/** The route's valid query with one parameter set to something odd, now and then with unknown ones. */
const queryOf = (route: Route) =>
  fc
    .record({
      changed: fc.oneof(
        fc.constantFrom('limit', 'cursor', 'from', 'to', 'group_by', 'month'),
        fc.string({ maxLength: 8 }),
      ),
      value: fc.oneof(oddText, limitOf, cursorOf),
      mutate: fc.boolean(),
      extra: rarely(fc.dictionary(fc.string({ maxLength: 8 }), oddText, { maxKeys: 3 })),
    })
    .map(({ changed, value, mutate, extra }) => {
      const query = { ...VALID_QUERIES[routeKey(route)], ...extra };
      if (mutate) query[changed] = value;
      const search = new URLSearchParams(query).toString();
      return search ? `?${search}` : '';
    });

/** Values that break limits rather than types: extreme numbers, long and blank strings, long arrays and maps. */
const edgeValue = fc.oneof(
  { arbitrary: fc.double(), weight: 2 },
  { arbitrary: fc.constantFrom(1e308, -1e308, 1e-200, -1e-200, 2 ** 53 + 2, -(2 ** 63), 0.5, -1, 0, 1e21), weight: 3 },
  fc.constantFrom('', ' ', ' \n\t ', '\u0000', '\uFEFF', '\u200b', '\uD800'),
  fc.integer({ min: 1, max: 70_000 }).map((n) => 'a '.repeat(n)),
  fc.integer({ min: 1, max: 300 }).map((n) => Array.from({ length: n }, () => 'x')),
  fc.dictionary(fc.string({ maxLength: 70 }), fc.oneof(fc.double(), fc.string({ maxLength: 300 })), { maxKeys: 25 }),
);

type JsonPath = readonly (string | number)[];

/** Every place in a JSON value a mutation can land: the value itself and each member, however deep. */
function slotsOf(value: unknown, path: JsonPath = []): JsonPath[] {
  if (typeof value !== 'object' || value === null) return [path];
  return [
    path,
    ...Object.entries(value).flatMap(([key, member]) =>
      slotsOf(member, [...path, Array.isArray(value) ? Number(key) : key]),
    ),
  ];
}

/** A copy of `body` with the member at `path` replaced (`value`), removed (`undefined`), or a key added beside it. */
function mutated(body: Record<string, unknown>, path: JsonPath, value: unknown, addedKey?: string): unknown {
  const copy = structuredClone(body);
  if (path.length === 0) return value;
  let parent: Record<string | number, unknown> = copy;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (addedKey !== undefined) parent[addedKey] = value;
  else if (value === undefined) delete parent[last];
  else parent[last] = value;
  return copy;
}

/** A valid body with one part, at any depth, dropped, replaced, or given a sibling. */
const mutationOf = (valid: Record<string, unknown>) => {
  const slots = slotsOf(valid);
  return fc
    .record({
      slot: fc.nat({ max: slots.length - 1 }),
      value: fc.oneof({ arbitrary: edgeValue, weight: 2 }, fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined)),
      addedKey: rarely(fc.constantFrom('tenant_id', 'extra', '__proto__', 'constructor', '')),
    })
    .map(({ slot, value, addedKey }) => JSON.stringify(mutated(valid, slots[slot], value, addedKey)) ?? '');
};

/** A body as sent: JSON text, or what a broken client sends instead (bytes, base64, a BOM, deep nesting). */
const bodyOf = (route: Route) => {
  const valid = VALID_BODIES[routeKey(route)];
  const text = valid ? fc.constant(JSON.stringify(valid)) : fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v));
  const odd = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 60 }),
    text.map((json) => `\uFEFF${json}`),
    text.map((json) => Buffer.from(json).toString('base64')),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    text.map((json) => Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from([0xc3, 0x28, 0xff, 0x7d])])),
    fc.integer({ min: 1, max: 3000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  );
  return valid
    ? fc.oneof({ arbitrary: mutationOf(valid), weight: 4 }, { arbitrary: odd, weight: 1 })
    : fc.oneof(fc.constant(undefined), odd);
};

/** Headers a client might add: a tenant named in one, an encoded body, one too large for the front. */
const EXTRA_HEADERS: Record<string, () => Record<string, string>> = {
  'tenant header': () => ({ 'x-tenant-id': 'other-co' }),
  'gzip claimed': () => ({ 'content-encoding': 'gzip' }),
  'no-store': () => ({ 'cache-control': 'no-store' }),
  'a 20 KB header': () => ({ 'x-large': 'x'.repeat(20_000) }),
  'a request id': () => ({ 'x-amzn-requestid': '../../x' }),
};

interface GeneratedRequest {
  route: Route;
  path: string;
  query: string;
  body: string | Buffer | undefined;
  contentType: string;
  headers: string | undefined;
}

const requestTo = (routes: readonly Route[]): fc.Arbitrary<GeneratedRequest> =>
  fc.constantFrom(...routes).chain((route) =>
    fc.record({
      route: fc.constant(route),
      path: pathOf(route),
      query: queryOf(route),
      body: bodyOf(route),
      contentType: fc.oneof(
        { arbitrary: fc.constant('application/json'), weight: 8 },
        fc.constantFrom(
          'application/json; charset=utf-8',
          'application/merge-patch+json',
          'text/plain',
          'application/x-www-form-urlencoded',
          '',
        ),
      ),
      headers: rarely(fc.constantFrom(...Object.keys(EXTRA_HEADERS)), 8),
    }),
  );

/** A valid batch line, for forms whose file is otherwise well formed. */
const BATCH_LINE = JSON.stringify({ custom_id: 'r', method: 'POST', url: '/v1/chat/completions', body: {} });

/**
 * A `multipart/form-data` upload as an attacker writes it by hand: odd and long file names (cut
 * inside a character, `/`, `%`, `..`, NUL), a file that is a field, two files, odd purposes, a
 * content type in any case, a wrong boundary, or a form cut short.
 */
const multipartOf = fc
  .record({
    filename: fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', minLength: 250, maxLength: 260 }),
      { arbitrary: fc.integer({ min: 252, max: 256 }).map((n) => `${'a'.repeat(n)}\u{1F600}.jsonl`), weight: 2 },
      fc.constantFrom('..', '.', '../../x', 'a/b%2F..%00', '%', '%E0%A4%A', 'x'.repeat(2000), '\u20ac'.repeat(255)),
    ),
    purpose: fc.oneof({ arbitrary: fc.constant('batch'), weight: 4 }, fc.string({ maxLength: 20 })),
    content: fc.oneof(
      { arbitrary: fc.constant(BATCH_LINE), weight: 4 },
      fc
        .array(fc.constantFrom(BATCH_LINE, '{}', '', '[', BATCH_LINE.replace('"r"', '"s"')), { maxLength: 5 })
        .map((l) => l.join('\n')),
      { arbitrary: fc.string({ unit: 'binary', maxLength: 60 }), weight: 1 },
    ),
    fileAsField: rarely(fc.constant(true)),
    twoFiles: rarely(fc.constant(true)),
    boundaryCase: fc.constantFrom('multipart/form-data', 'Multipart/Form-Data', 'MULTIPART/FORM-DATA'),
    wrongBoundary: rarely(fc.constant(true)),
    cut: rarely(fc.nat({ max: 400 })),
  })
  .map(({ filename, purpose, content, fileAsField, twoFiles, boundaryCase, wrongBoundary, cut }) => {
    const boundary = 'fuzzBoundary7';
    const file = (name: string) =>
      fileAsField
        ? `Content-Disposition: form-data; name="file"\r\n\r\n${content}`
        : `Content-Disposition: form-data; name="file"; filename="${name.replace(/["\r\n\\]/g, '_')}"\r\nContent-Type: application/jsonl\r\n\r\n${content}`;
    const parts = [`Content-Disposition: form-data; name="purpose"\r\n\r\n${purpose}`, file(filename)];
    if (twoFiles) parts.push(file('second.jsonl'));
    const whole = Buffer.from(`${parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('')}--${boundary}--\r\n`);
    return {
      body: cut === undefined ? whole : whole.subarray(0, cut),
      contentType: `${boundaryCase}; boundary=${wrongBoundary ? 'other' : boundary}`,
    };
  });

describe('every route answers bad input with a 4xx in the error shape, never a 5xx', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, FUZZ_TENANT, { tier: 'standard' }));
    await onboard(platform, SPARE_TENANT);
  });
  afterAll(() => platform.close());

  /** Sends one generated request and checks the answer: never a 5xx, every error in the one shape. */
  const answersWithin4xx = async ({ route, path, query, body, contentType, headers }: GeneratedRequest) => {
    const credential = route.auth === 'admin' ? platform.operatorToken : apiKey;
    const response = await fetch(`${platform.url}${path}${query}`, {
      method: route.method,
      headers: {
        authorization: `Bearer ${credential}`,
        ...(contentType && { 'content-type': contentType }),
        ...(headers && EXTRA_HEADERS[headers]()),
      },
      body: route.method === 'GET' ? undefined : body,
    });
    const text = await response.text();
    expect(response.status).toBeLessThan(500);
    if (response.status >= 400) {
      const answer = JSON.parse(text);
      // Anthropic's routes answer their handlers' errors in Anthropic's shape, the code leading the message.
      if (answer.type === 'error' && route.dialect === 'anthropic') {
        expect(answer).toEqual({ type: 'error', error: { type: expect.any(String), message: expect.any(String) } });
        expect(KNOWN_CODES).toContain(answer.error.message.split(':')[0]);
        return;
      }
      // A 409 carries the resource as it is now beside the error.
      const { current, ...error } = answer;
      if (current !== undefined) expect(answer.error.code).toBe('conflict');
      expect(error).toEqual({
        error: {
          code: expect.any(String),
          message: expect.any(String),
          type: expect.any(String),
          request_id: expect.any(String),
        },
      });
      expect(KNOWN_CODES).toContain(answer.error.code);
    }
  };

  it('holds for generated requests to every route', async () => {
    await fc.assert(fc.asyncProperty(requestTo(ROUTES), answersWithin4xx), { seed: 20261124, numRuns: 400 });
  });

  it('holds for multipart forms sent to every route, the files upload above all', async () => {
    const upload = ROUTES.filter((route) => routeKey(route) === 'POST /v1/files');
    const forms = fc
      .oneof(requestTo(upload), requestTo(ROUTES))
      .chain((request) => multipartOf.map((form) => ({ ...request, ...form, headers: undefined })));
    await fc.assert(fc.asyncProperty(forms, answersWithin4xx), { seed: 20261207, numRuns: 300 });
  });

  it('holds for valid bodies with one part broken, at any depth', async () => {
    const withBodies = ROUTES.filter((route) => VALID_BODIES[routeKey(route)]);
    await fc.assert(fc.asyncProperty(requestTo(withBodies), answersWithin4xx), { seed: 20261125, numRuns: 400 });
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
    ['a metadata number beyond 2^53', '/v1/documents', { text: 'x', metadata: { n: 1e308 } }],
    ['a metadata number below -2^53', '/v1/documents', { text: 'x', metadata: { n: -1e20 } }],
    ['a metadata number DynamoDB cannot store (1e-200)', '/v1/documents', { text: 'x', metadata: { n: 1e-200 } }],
    ['a blank retrieval query', '/v1/retrieve', { query: ' \n ' }],
    // Found by the generated requests: the answer failed against it after generation (502, billed).
    [
      'a strict json_schema whose type names no JSON type',
      '/v1/chat/completions',
      {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'hi' }],
        response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 1e308 }, strict: true } },
      },
    ],
  ])('answers %s with 400', async (_name, path, body) => {
    const response = await call(platform, 'POST', path, { credential: apiKey, body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('answers caller text longer than a table key takes with a 4xx on every route that keys by it', async () => {
    const admin = platform.operatorToken;
    const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }] };
    for (const long of ['a'.repeat(1100), 'a'.repeat(3000)]) {
      const requests: [string, string, string, unknown?][] = [
        ['GET', `/v1/documents/${long}`, apiKey],
        ['DELETE', `/v1/documents/${long}`, apiKey],
        ['POST', '/v1/documents', apiKey, { id: long, text: 'hello there' }],
        ['GET', `/v1/sessions/${long}`, apiKey],
        ['DELETE', `/v1/sessions/${long}`, apiKey],
        ['POST', '/v1/chat/completions', apiKey, { ...chat, session_id: long }],
        ['POST', '/v1/chat/completions', apiKey, { ...chat, prompt: { id: long } }],
        ['GET', `/v1/audit/${long}`, apiKey],
        ['GET', `/v1/responses/${long}`, apiKey],
        ['POST', '/v1/responses', apiKey, { model: 'nova-micro', input: 'hi', previous_response_id: long }],
        ['GET', `/admin/tenants/${long}`, admin],
        ['DELETE', `/admin/tenants/${SPARE_TENANT}/api-keys/${long}`, admin],
        [
          'PUT',
          `/admin/tenants/${SPARE_TENANT}/prompts/${long}`,
          admin,
          { messages: [{ role: 'user', content: 'x' }] },
        ],
        ['DELETE', `/admin/tenants/${SPARE_TENANT}/adapters/${long}`, admin],
      ];
      for (const [method, path, credential, body] of requests) {
        const answer = await call(platform, method, path, { credential, body });
        expect([method, path.slice(0, 40), answer.status < 500]).toEqual([method, path.slice(0, 40), true]);
      }
    }
  });

  it('answers a request whose headers or URL overflow the front with 413 in the error shape', async () => {
    for (const [path, headers] of [
      ['/v1/documents', { 'x-large': 'x'.repeat(20_000) }],
      [`/v1/documents?cursor=${'A'.repeat(20_000)}`, {}],
    ] as const) {
      const response = await call(platform, 'GET', path, { credential: apiKey, headers });
      expect(response.status).toBe(413);
      expect(response.body.error).toMatchObject({ code: 'payload_too_large', request_id: expect.any(String) });
    }
  });

  it('answers a body that is not UTF-8 with invalid_json, and accepts JSON after a byte order mark', async () => {
    const bytes = await fetch(`${platform.url}/v1/retrieve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    });
    expect(bytes.status).toBe(400);
    expect(((await bytes.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    const bom = await call(platform, 'POST', '/v1/retrieve', { credential: apiKey, rawBody: '\uFEFF{"query":"hi"}' });
    expect(bom.status).toBe(200);
  });

  it('refuses forged page cursors with 400 and never echoes a whole request in a message', async () => {
    for (const cursor of [Buffer.from('DOC#x').toString('base64url'), '%FF%FE', 'A'.repeat(600)]) {
      const response = await call(platform, 'GET', `/v1/audit?cursor=${cursor}`, { credential: apiKey });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('invalid_request');
    }
    const echoed = await call(platform, 'POST', '/v1/retrieve', {
      credential: apiKey,
      body: { query: 'hi', ['k'.repeat(100_000)]: 1 },
    });
    expect(echoed.status).toBe(400);
    expect(echoed.body.error.message.length).toBeLessThanOrEqual(503);
  });

  it('writes an audit record for refusals before the handler body runs, with oversized fields cut', async () => {
    const refusals = [
      { rawBody: '{"model": "nova-micro",', code: 'invalid_json' },
      { rawBody: '{}', headers: { 'content-type': 'text/plain' }, code: 'unsupported_content_type' },
      { body: { model: 'nova-micro', messages: [], ['k'.repeat(100_000)]: 1 }, code: 'invalid_request' },
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
