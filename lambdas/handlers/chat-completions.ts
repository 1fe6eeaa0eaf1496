import { type ErrorCode, errorBody } from '../../contract/errors';
import {
  type ChatCompletionChunk,
  chatRequestSchema,
  completeChat,
  type StreamFailure,
  streamChat,
} from '../core/chat';
import {
  adapterModels,
  contentGuardrail,
  meteredRoutePorts,
  modelDeps,
  models,
  type PlatformDeps,
  responseCache,
  sessions,
  streamingLambdaHandler,
  tenantAdapters,
  tenantPrompts,
} from '../runtime';
import { vectors } from '../runtime-vectors';
import { header, json, routeOf, tenantApi } from './http';
import { lambdaFunction } from './lambda';
import { logger } from './logger';
import { streamed } from './streaming';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type ChatCompletionsDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'audit'
  | 'now'
  | 'ledger'
  | 'metrics'
  | 'models'
  | 'adapterModels'
  | 'adapters'
  | 'prompts'
  | 'sessions'
  | 'cache'
  | 'contentGuardrail'
  | 'embedder'
  | 'vectors'
>;

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/**
 * OpenAI's server-sent events: a `data:` line per chunk, then `data: [DONE]`; a failure after the
 * first chunk ends the stream with an error event in the API's error shape instead, its code told
 * to `on.failed` (for the audit record: the status, 200, was sent with the first chunk).
 */
async function* serverSentEvents(
  first: IteratorResult<ChatCompletionChunk | StreamFailure>,
  rest: AsyncGenerator<ChatCompletionChunk | StreamFailure>,
  on: { hungUp: () => void; failed: (code: ErrorCode) => void },
): AsyncGenerator<string> {
  const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
  let ended = false;
  const failed = (code: ErrorCode, message: string) => {
    ended = true;
    on.failed(code);
    return event(errorBody(code, message));
  };
  /** Not the provider (that is a `StreamFailure`): the stream's settle failed, after its retries. */
  const settleFailed = (error: unknown) => {
    logger.error('stream failed', { error: error as Error });
    return failed('internal_error', 'internal error');
  };
  try {
    let next = first;
    while (!next.done) {
      if ('failure' in next.value) {
        yield failed(next.value.failure.code, next.value.failure.message);
        return;
      }
      yield event(next.value);
      try {
        next = await rest.next();
      } catch (error) {
        yield settleFailed(error);
        return;
      }
    }
    ended = true;
    yield 'data: [DONE]\n\n';
  } finally {
    // The caller hung up (the transport stopped reading): the stream stops, and settles what it made.
    if (!ended) on.hungUp();
    // The caller is gone when this settle fails: no one reads the event, but the log and record say so.
    await rest.return(undefined).catch(settleFailed);
  }
}

/** `POST /v1/chat/completions` */
export function create(deps: ChatCompletionsDeps) {
  const chat = modelDeps(deps);
  return lambdaFunction(
    tenantApi(deps).handler(async (event, context) => {
      const { tenant, modelCall, audit } = context;
      const request = chatRequestSchema.parse(event.body);
      audit.model = request.model;
      if (request.user !== undefined) audit.user = request.user;
      if (request.metadata) audit.metadata = request.metadata;
      if (request.stream) {
        const chunks = streamChat(chat, tenant, request, modelCall, { audit });
        // The first chunk before any byte: a refusal or an early failure is an ordinary error answer.
        const first = await chunks.next();
        const events = serverSentEvents(first, chunks, {
          hungUp: () => deps.metrics.streamDisconnected(tenant, routeOf(event)),
          failed: (code) => {
            context.errorCode = code;
          },
        });
        return streamed(200, SSE_HEADERS, events);
      }
      const noStore = /(^|,)\s*no-store\s*(,|$)/i.test(header(event, 'cache-control') ?? '');
      const completion = await completeChat(chat, tenant, request, modelCall, { audit, noStore });
      audit.inputTokens = completion.usage.prompt_tokens;
      audit.outputTokens = completion.usage.completion_tokens;
      return json(200, completion, audit.cache ? { 'x-cache': audit.cache } : {});
    }),
  );
}

/** Streamed by API Gateway (`STREAM` transfer mode): the prelude, then the body as it comes. */
export const handler = streamingLambdaHandler((wiring) =>
  create({
    ...meteredRoutePorts(wiring),
    models: models(wiring),
    adapterModels: adapterModels(wiring),
    adapters: tenantAdapters(wiring),
    prompts: tenantPrompts(wiring),
    sessions: sessions(wiring),
    cache: responseCache(wiring),
    contentGuardrail: contentGuardrail(wiring),
    vectors: vectors(wiring),
  }),
);
