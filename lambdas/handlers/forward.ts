import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { AUTHORIZER_FORWARD_TO, FORWARDED_HEADER } from '../../contract/routes';
import { PlatformError } from '../core/errors';
import { streamed } from '../streamed-response';
import type { ApiContext, ApiEvent } from './http';

/** Headers of one hop, not of the request or the answer: never passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'content-encoding',
  'content-length',
  'host',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
]);
/** Time kept to answer after the silo did not: the forward gives up before the function is killed. */
const ANSWER_ROOM_MS = 1000;

/**
 * The pool's front door for a tenant served by its silo: the authorizer named the silo's URL (from
 * the tenant's own record), and the request goes on there as it came, credential and body
 * unchanged, before the handler does anything of its own; the silo's answer comes back as it is,
 * streamed when it streams. So a tenant's clients keep working, unchanged, once it has moved; the
 * silo authenticates, meters and audits the call.
 */
export function forwardToSilo<C extends ApiContext>(
  fetchImpl: typeof fetch = fetch,
): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, C> {
  return {
    before: async ({ event, context }) => {
      const to = event.requestContext?.authorizer?.[AUTHORIZER_FORWARD_TO];
      if (typeof to !== 'string') return undefined;
      // Forwarded here by the other plane, whose cached decision still names this one (the pool's,
      // cached before a return's switch, while the silo's own decision now names the pool): passed
      // back, it would go round until it timed out. Told to retry: the pool's cache lets go within its TTL.
      if (Object.keys(event.headers ?? {}).some((name) => name.toLowerCase() === FORWARDED_HEADER)) {
        throw new PlatformError('upstream_unavailable', 'the tenant is switching between stacks, retry shortly', {
          retryAfterSeconds: 1,
        });
      }
      const query = new URLSearchParams();
      for (const [name, values] of Object.entries(event.multiValueQueryStringParameters ?? {})) {
        for (const value of values ?? []) query.append(name, value);
      }
      const url = `${to}${event.path}${query.size > 0 ? `?${query}` : ''}`;
      const headers = Object.entries(event.headers ?? {}).filter(
        (entry): entry is [string, string] => entry[1] !== undefined && !HOP_BY_HOP.has(entry[0].toLowerCase()),
      );
      headers.push([FORWARDED_HEADER, '1']);
      const body =
        typeof event.body === 'string' && event.body !== ''
          ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8')
          : undefined;
      let answer: Response;
      try {
        answer = await fetchImpl(url, {
          method: event.httpMethod,
          headers,
          body,
          // The silo's URL is the tenant's own; a redirect from it is answered as it is, never followed.
          redirect: 'manual',
          signal: AbortSignal.timeout(Math.max(1, context.getRemainingTimeInMillis() - ANSWER_ROOM_MS)),
        });
      } catch (error) {
        // Out of time with the request sent: the silo may still answer it, and bill it, so no "retry".
        if ((error as Error).name === 'TimeoutError') {
          throw new PlatformError('upstream_timeout', "the tenant's own stack did not answer in time");
        }
        throw new PlatformError('upstream_unavailable', "the tenant's own stack could not be reached, retry shortly", {
          retryAfterSeconds: 1,
        });
      }
      const answerHeaders: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!HOP_BY_HOP.has(name)) answerHeaders[name] = value;
      });
      const type = answerHeaders['content-type'] ?? '';
      if (answer.body && type.startsWith('text/event-stream')) {
        return streamed(answer.status, answerHeaders, decoded(answer.body));
      }
      try {
        if (type === '' || /^(text\/|application\/([\w.-]+\+)?json)/.test(type)) {
          return { statusCode: answer.status, headers: answerHeaders, body: await answer.text() };
        }
        const bytes = Buffer.from(await answer.arrayBuffer());
        return {
          statusCode: answer.status,
          headers: answerHeaders,
          body: bytes.toString('base64'),
          isBase64Encoded: true,
        };
      } catch {
        // The answer broke off: the call ran at the silo, so no "retry".
        throw new PlatformError('upstream_error', "the tenant's own stack's answer broke off");
      }
    },
  };
}

/** A byte stream as text, chunk by chunk as it arrives (a character split across chunks kept whole). */
async function* decoded(body: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    if (text) yield text;
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}
