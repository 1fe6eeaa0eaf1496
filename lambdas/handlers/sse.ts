import { type ErrorCode, errorBody } from '../../contract/errors';
import type { StreamFailure } from '../core/chat';
import { logger } from './logger';

export const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/** How one API writes its server-sent events: each event, a failure after the first, and its end. */
export interface SseFormat<T> {
  readonly event: (value: T) => string;
  readonly failure: (code: ErrorCode, message: string) => string;
  /** Written after the last event, if the API has an end marker (OpenAI's `data: [DONE]`). */
  readonly done?: string;
}

/** OpenAI chat completions: a `data:` line per chunk, then `data: [DONE]`; failures in the API's error shape. */
export const OPENAI_SSE: SseFormat<unknown> = {
  event: (data) => `data: ${JSON.stringify(data)}\n\n`,
  failure: (code, message) => `data: ${JSON.stringify(errorBody(code, message))}\n\n`,
  done: 'data: [DONE]\n\n',
};

/** A named event (`event:` then `data:`), as the Responses and Messages APIs send them. */
export function namedEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * A stream's events as server-sent events. A failure after the first event ends the stream with the
 * API's failure event instead, its code told to `on.failed` (for the audit record: the status, 200,
 * was sent with the first event).
 */
export async function* serverSentEvents<T>(
  format: SseFormat<T>,
  first: IteratorResult<T | StreamFailure>,
  rest: AsyncGenerator<T | StreamFailure>,
  on: { hungUp: () => void; failed: (code: ErrorCode) => void },
): AsyncGenerator<string> {
  let ended = false;
  const failed = (code: ErrorCode, message: string) => {
    ended = true;
    on.failed(code);
    return format.failure(code, message);
  };
  /** Not the provider (that is a `StreamFailure`): the stream's settle failed, after its retries. */
  const settleFailed = (error: unknown) => {
    logger.error('stream failed', { error: error as Error });
    return failed('internal_error', 'internal error');
  };
  try {
    let next = first;
    while (!next.done) {
      const value = next.value;
      if (typeof value === 'object' && value !== null && 'failure' in value) {
        yield failed(value.failure.code, value.failure.message);
        return;
      }
      yield format.event(value as T);
      try {
        next = await rest.next();
      } catch (error) {
        yield settleFailed(error);
        return;
      }
    }
    ended = true;
    if (format.done) yield format.done;
  } finally {
    // The caller hung up (the transport stopped reading): the stream stops, and settles what it made.
    if (!ended) on.hungUp();
    // The caller is gone when this settle fails: no one reads the event, but the log and record say so.
    await rest.return(undefined).catch(settleFailed);
  }
}
