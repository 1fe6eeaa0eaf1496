import { chatRequestSchema, completeChat, streamChat } from '../core/chat';
import {
  modelDeps,
  type PlatformDeps,
  responseCache,
  sessions,
  storedResponses,
  streamingLambdaHandler,
  tenantAdapters,
  tenantPrompts,
} from '../runtime';
import { adapterModels } from '../runtime-adapter-models';
import { contentGuardrail, meteredRoutePorts, models } from '../runtime-bedrock';
import { vectors } from '../runtime-vectors';
import { header, json, tenantApi } from './http';
import { lambdaFunction } from './lambda';
import { messagesRoute } from './messages';
import { streamedAnswer } from './model-call';
import { responsesRoute } from './responses';
import { OPENAI_SSE } from './sse';

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
  | 'responses'
  | 'contentGuardrail'
  | 'embedder'
  | 'vectors'
>;

/**
 * The model APIs, each a codec over the one metered chat core: `POST /v1/chat/completions`, and
 * the Responses API (`/v1/responses...`) and Anthropic's Messages API (`/v1/messages...`). One
 * function, so one warm pool serves them all.
 */
export function create(deps: ChatCompletionsDeps) {
  const chat = modelDeps(deps);
  const responses = { ...chat, storedResponseDays: deps.settings.storedResponseDays };
  return lambdaFunction(
    tenantApi(deps).handler(async (event, context) => {
      if (event.resource.startsWith('/v1/responses')) return responsesRoute(responses, event, context);
      if (event.resource.startsWith('/v1/messages')) return messagesRoute(chat, event, context);
      const { tenant, modelCall, audit } = context;
      const request = chatRequestSchema.parse(event.body);
      audit.model = request.model;
      if (request.user !== undefined) audit.user = request.user;
      if (request.metadata) audit.metadata = request.metadata;
      if (request.stream) {
        const chunks = streamChat(chat, tenant, request, modelCall, { audit });
        return streamedAnswer(chunks, OPENAI_SSE, event, context, deps.metrics);
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
    responses: storedResponses(wiring),
    contentGuardrail: contentGuardrail(wiring),
    vectors: vectors(wiring),
  }),
);
