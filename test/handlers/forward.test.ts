import type { APIGatewayProxyResult } from 'aws-lambda';
import { AUTHORIZER_FORWARD_TO } from '../../contract/routes';
import type { AuditLog, PlatformMetrics } from '../../lambdas/core/ports';
import { forwardToSilo } from '../../lambdas/handlers/forward';
import { type ApiContext, type ApiEvent, tenantApi } from '../../lambdas/handlers/http';

/**
 * The pool's forward of a moved tenant's call to its silo, with the silo's answers injected: what
 * goes out, what comes back, and what a caller is told when the silo does not answer.
 */
const event = (body?: string) =>
  ({
    httpMethod: 'POST',
    path: '/v1/chat/completions',
    headers: { authorization: 'Bearer mt_key', 'content-type': 'application/json', host: 'pool.example' },
    multiValueQueryStringParameters: { include: ['text', 'metadata'] },
    body,
    isBase64Encoded: false,
    requestContext: { authorizer: { tenantId: 'bank-co', [AUTHORIZER_FORWARD_TO]: 'https://silo.example/prod' } },
  }) as unknown as ApiEvent;
const context = { getRemainingTimeInMillis: () => 10_000, requestId: 'r1' } as unknown as ApiContext;
const forward = (fetchImpl: typeof fetch) =>
  forwardToSilo<ApiContext>(fetchImpl).before?.({ event: event('{"a":1}'), context } as never) as Promise<
    APIGatewayProxyResult | undefined
  >;

describe('forwardToSilo', () => {
  it('passes the request on as it came (but its hops), never following a redirect, and the answer back', async () => {
    const sent: { url: string; init: RequestInit }[] = [];
    const answer = await forward(async (url, init) => {
      sent.push({ url: String(url), init: init as RequestInit });
      return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json', 'x-a': '1' } });
    });
    expect(sent[0].url).toBe('https://silo.example/prod/v1/chat/completions?include=text&include=metadata');
    expect(sent[0].init).toMatchObject({ method: 'POST', redirect: 'manual' });
    expect(sent[0].init.headers).toEqual([
      ['authorization', 'Bearer mt_key'],
      ['content-type', 'application/json'],
      ['x-platform-forwarded', '1'],
    ]);
    expect(answer).toMatchObject({ statusCode: 201, body: '{"ok":true}', headers: { 'x-a': '1' } });
  });

  it('answers a binary body base64-encoded, as API Gateway takes it', async () => {
    const answer = await forward(
      async () =>
        new Response(new Uint8Array([0, 255, 1]), { headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(answer).toMatchObject({ body: Buffer.from([0, 255, 1]).toString('base64'), isBase64Encoded: true });
  });

  it('tells a caller to retry only when the silo could not be reached, not when it ran out of time', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    await expect(forward(() => Promise.reject(refused))).rejects.toMatchObject({
      code: 'upstream_unavailable',
      retryAfterSeconds: 1,
    });
    const timedOut = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    const late = forward(() => Promise.reject(timedOut));
    await expect(late).rejects.toMatchObject({ code: 'upstream_timeout' });
    await expect(late).rejects.not.toHaveProperty('retryAfterSeconds', 1);
  });

  it('never forwards a call another plane forwarded here: told to retry, not passed back and forth', async () => {
    const again = { ...event(), headers: { ...event().headers, 'X-Platform-Forwarded': '1' } } as unknown as ApiEvent;
    const answer = forwardToSilo<ApiContext>(() => Promise.reject(new Error('not called'))).before?.({
      event: again,
      context,
    } as never);
    await expect(answer).rejects.toMatchObject({ code: 'upstream_unavailable', retryAfterSeconds: 1 });
  });

  it('leaves a call that is not forwarded to the route', async () => {
    const local = { ...event(), requestContext: { authorizer: { tenantId: 'bank-co' } } } as unknown as ApiEvent;
    const answer = await forwardToSilo<ApiContext>(() => Promise.reject(new Error('not called'))).before?.({
      event: local,
      context,
    } as never);
    expect(answer).toBeUndefined();
  });
});

describe('a forwarded call through a tenant route', () => {
  it('answers a silo that could not be reached in the error shape, with the request id and Retry-After', async () => {
    const unreachable = jest
      .spyOn(globalThis, 'fetch')
      .mockRejectedValue(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
    const outcomes: unknown[] = [];
    try {
      const route = tenantApi({
        settings: { maxRequestBodyBytes: 1024 },
        audit: { record: async () => void outcomes.push('audited') } as unknown as AuditLog,
        metrics: { request: () => void outcomes.push('counted') } as unknown as PlatformMetrics,
        now: () => 0,
      }).handler(async () => ({ statusCode: 200, body: 'served here' }));
      const answer = await route(
        { ...event('{"a":1}'), requestContext: { ...event().requestContext, requestId: 'req-1' } } as never,
        { ...context, awsRequestId: 'aws-1' } as never,
      );
      expect(answer).toMatchObject({
        statusCode: 503,
        headers: { 'retry-after': '1', 'x-request-id': 'req-1' },
      });
      expect(JSON.parse(answer.body).error).toMatchObject({ code: 'upstream_unavailable' });
      // the pool neither served, metered nor audited it: the silo would have
      expect(outcomes).toEqual([]);
    } finally {
      unreachable.mockRestore();
    }
  });
});
