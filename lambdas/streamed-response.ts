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
 * Writes a streamed body to the client as it is produced. A slow reader is not waited for: an
 * answer is small (bounded by `max_tokens`), so it is buffered instead, and the model call and its
 * settle go at the model's pace, never held at a write until the handler's timeout kills them
 * unbilled. When the client is gone (the writable closes or fails), reading stops: that stops the
 * body's generator, which settles what it made.
 */
export async function writeStreamed(body: AsyncIterable<string>, out: Writable): Promise<void> {
  let gone = false;
  const hangUp = () => {
    gone = !out.writableFinished;
  };
  out.once('close', hangUp);
  out.once('error', hangUp);
  for await (const chunk of body) {
    if (gone || out.destroyed) break;
    out.write(chunk);
  }
  if (!gone) out.end();
}
