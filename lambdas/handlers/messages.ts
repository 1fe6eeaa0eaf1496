import type { APIGatewayProxyResult } from 'aws-lambda';
import { anthropicErrorBody } from '../../contract/errors';
import { resolveChatTarget } from '../core/adapters';
import { type ChatDeps, completeChat, streamChat, toChatMessages } from '../core/chat';
import {
  chatRequestOf,
  countedRequestOf,
  countTokensRequestSchema,
  type MessageEvent,
  messageEvents,
  messageOf,
  messagesRequestSchema,
} from '../core/messages-api';
import type { PlatformMetrics } from '../core/ports';
import { chatInputTokens } from '../core/tokens';
import { toolOptions, toolTokens } from '../core/tools';
import { type ApiEvent, json, type TenantApiContext } from './http';
import { streamedAnswer } from './model-call';
import { namedEvent, type SseFormat } from './sse';

/** Anthropic's server-sent events: each named by its type; a failure after the first is an `error` event. */
const ANTHROPIC_SSE: SseFormat<MessageEvent> = {
  event: (data) => namedEvent(data.type, data),
  failure: (code, message) => namedEvent('error', anthropicErrorBody(code, message)),
};

/** `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API over the chat core. */
export async function messagesRoute(
  deps: ChatDeps & { readonly metrics: PlatformMetrics },
  event: ApiEvent,
  context: TenantApiContext,
): Promise<APIGatewayProxyResult> {
  const { tenant, modelCall, audit } = context;
  if (event.resource.endsWith('/count_tokens')) {
    // Counted as admission counts a call's input (an upper bound); not a model call, so not metered.
    const request = countTokensRequestSchema.parse(event.body);
    const { model } = await resolveChatTarget(deps, tenant, request.model);
    const chat = countedRequestOf(request);
    const inputTokens = chatInputTokens(toChatMessages(chat.messages)) + toolTokens(toolOptions(model, chat));
    return json(200, { input_tokens: inputTokens });
  }
  const request = messagesRequestSchema.parse(event.body);
  audit.model = request.model;
  if (request.metadata?.user_id) audit.user = request.metadata.user_id;
  const chat = chatRequestOf(request);
  const id = `msg_${modelCall.requestId}`;
  if (request.stream) {
    const chunks = streamChat(
      deps,
      tenant,
      { ...chat, stream: true, stream_options: { include_usage: true } },
      modelCall,
      {
        audit,
      },
    );
    return streamedAnswer(messageEvents(request, chunks, id), ANTHROPIC_SSE, event, context, deps.metrics);
  }
  const completion = await completeChat(deps, tenant, chat, modelCall, { audit });
  return json(200, messageOf(request, completion, id));
}
