import type { Writable } from 'node:stream';
import type { APIGatewayProxyResult } from 'aws-lambda';

/**
 * A streamed answer (server-sent events): its status and headers are sent first, then its body as
 * it is produced. It travels through middy as a proxy result whose body is not a string: the one
 * place that pretends otherwise, and the transports (the Lambda streaming entry, the local gateway)
 * tell it apart with `streamedBody`.
 */
export function streamed(
  statusCode: number,
  headers: Record<string, string>,
  body: AsyncIterable<string>,
): APIGatewayProxyResult {
  return { statusCode, headers, body: body as unknown as string };
}

/** The body of a streamed answer, or undefined for an ordinary one. */
export function streamedBody(result: { body: unknown }): AsyncIterable<string> | undefined {
  return typeof result.body === 'string' ? undefined : (result.body as AsyncIterable<string>);
}

/**
 * A streamed answer, the same but for `ended` run once its body has ended, however it ends
 * (finished, failed, or the client gone); undefined for an ordinary answer.
 */
export function onStreamEnd(
  result: APIGatewayProxyResult,
  ended: () => Promise<void>,
): APIGatewayProxyResult | undefined {
  const body = streamedBody(result);
  if (!body) return undefined;
  const endedBody = async function* () {
    try {
      yield* body;
    } finally {
      await ended();
    }
  };
  return { ...result, body: endedBody() as unknown as string };
}

/**
 * A server-sent-events comment, which every SSE client skips: written when the body has been quiet
 * this long, so no gap reaches a proxy's idle limit (CloudFront's origin read timeout is 60 s, API
 * Gateway's idle timeout for streams 5 minutes) while the model thinks or a tool call is built.
 */
export const KEEP_ALIVE = { comment: ': keep-alive\n\n', everyMs: 15_000 } as const;

/** Runs `tick` every `ms` until the returned function stops it: timers, injectable in tests. */
export type Ticker = (ms: number, tick: () => void) => () => void;

const intervalTicker: Ticker = (ms, tick) => {
  const timer = setInterval(tick, ms);
  return () => clearInterval(timer);
};

/**
 * Writes a streamed body to the client as it is produced. A slow reader is not waited for: an
 * answer is small (bounded by `max_tokens`), so it is buffered instead, and the model call and its
 * settle go at the model's pace, never held at a write until the handler's timeout kills them
 * unbilled. When the client is gone (the writable closes or fails), reading stops: that stops the
 * body's generator, which settles what it made. A keep-alive comment goes out between events
 * whenever a whole `KEEP_ALIVE.everyMs` passed without one: no gap is longer than two of them.
 */
export async function writeStreamed(
  body: AsyncIterable<string>,
  out: Writable,
  ticker: Ticker = intervalTicker,
): Promise<void> {
  let gone = false;
  const hangUp = () => {
    gone = !out.writableFinished;
  };
  out.once('close', hangUp);
  out.once('error', hangUp);
  let quiet = false;
  const stop = ticker(KEEP_ALIVE.everyMs, () => {
    // Two ticks without an event: a whole interval has passed quietly.
    if (quiet && !gone && !out.destroyed) out.write(KEEP_ALIVE.comment);
    quiet = true;
  });
  try {
    for await (const chunk of body) {
      if (gone || out.destroyed) break;
      out.write(chunk);
      quiet = false;
    }
  } finally {
    stop();
  }
  if (!gone) out.end();
}
