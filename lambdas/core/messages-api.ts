import * as z from '../../contract/zod';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatRequest,
  recodeStream,
  type StreamFailure,
} from './chat';
import { toolSchema } from './tools';

/**
 * Anthropic's Messages API as a codec over chat completions: its request becomes a chat request
 * (system, text / tool_use / tool_result blocks, tools, tool_choice), the chat answer becomes its
 * `message`, and the chat's chunks become its streamed events. The one metered core serves it.
 */

const cacheControl = z.object({ type: z.literal('ephemeral'), ttl: z.optional(z.enum(['5m', '1h'])) });
const textBlock = z.object({ type: z.literal('text'), text: z.string(), cache_control: z.nullish(cacheControl) });
const toolUseBlock = z.object({
  type: z.literal('tool_use'),
  id: z.string().check(z.minLength(1), z.maxLength(256)),
  name: z.string().check(z.minLength(1), z.maxLength(256)),
  input: z.record(z.string(), z.unknown()),
  cache_control: z.nullish(cacheControl),
});
const toolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().check(z.minLength(1), z.maxLength(256)),
  content: z.optional(z.union([z.string(), z.array(textBlock)])),
  is_error: z.optional(z.boolean()),
  cache_control: z.nullish(cacheControl),
});
const block = z.discriminatedUnion('type', [textBlock, toolUseBlock, toolResultBlock], {
  message: 'content blocks are text, tool_use and tool_result (no images or documents here)',
});

const toolName = toolSchema.shape.function.shape.name;

export const messagesRequestSchema = z.strictObject({
  model: z.string().check(z.minLength(1)),
  /** Required, as Anthropic has it. */
  max_tokens: z.number().check(z.int(), z.positive()),
  messages: z
    .array(
      z.object({
        role: z.enum(['user', 'assistant']),
        content: z.union([z.string(), z.array(block).check(z.minLength(1))]),
      }),
    )
    .check(z.minLength(1), z.maxLength(256)),
  system: z.optional(z.union([z.string(), z.array(textBlock)])),
  tools: z.optional(
    z
      .array(
        z.object({
          type: z.optional(z.literal('custom')),
          name: toolName,
          description: z.optional(z.string().check(z.maxLength(10_000))),
          input_schema: toolSchema.shape.function.shape.parameters.def.innerType,
          cache_control: z.nullish(cacheControl),
        }),
      )
      .check(z.maxLength(128)),
  ),
  tool_choice: z.optional(
    z.union([
      z.object({ type: z.enum(['auto', 'any', 'none']), disable_parallel_tool_use: z.optional(z.boolean()) }),
      z.object({ type: z.literal('tool'), name: toolName, disable_parallel_tool_use: z.optional(z.boolean()) }),
    ]),
  ),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(1))),
  top_p: z.optional(z.number().check(z.gt(0), z.lte(1))),
  stop_sequences: z.optional(z.array(z.string().check(z.minLength(1))).check(z.maxLength(4))),
  metadata: z.optional(z.object({ user_id: z.nullish(z.string().check(z.maxLength(256))) })),
  stream: z.optional(z.boolean()),
  service_tier: z.optional(z.enum(['auto', 'standard_only'])),
});
export type MessagesRequest = z.infer<typeof messagesRequestSchema>;

/** `POST /v1/messages/count_tokens`: the same request, without `max_tokens`. */
export const countTokensRequestSchema = z.omit(messagesRequestSchema, {
  max_tokens: true,
  stream: true,
  stop_sequences: true,
  temperature: true,
  top_p: true,
  metadata: true,
});

type ChatMessageParam = NonNullable<ChatRequest['messages']>[number];
type TextBlock = z.infer<typeof textBlock>;

const textOf = (blocks: readonly TextBlock[]) => blocks.map((b) => b.text).join('');
const cached = (blocks: readonly { cache_control?: unknown }[]) => blocks.some((b) => b.cache_control);

/** Messages as chat messages: tool results are tool turns (before the user's text), tool uses the assistant's calls. */
function chatMessagesOf(request: Pick<MessagesRequest, 'system' | 'messages'>): ChatMessageParam[] {
  const messages: ChatMessageParam[] = [];
  const { system } = request;
  if (typeof system === 'string' && system !== '') messages.push({ role: 'system', content: system });
  if (Array.isArray(system) && system.length > 0) {
    messages.push({
      role: 'system',
      content: textOf(system),
      ...(cached(system) && { cache_control: { type: 'ephemeral' } }),
    });
  }
  for (const message of request.messages) {
    const blocks =
      typeof message.content === 'string' ? [{ type: 'text' as const, text: message.content }] : message.content;
    const texts = blocks.filter((b): b is TextBlock => b.type === 'text');
    const cacheMark = cached(blocks) ? { cache_control: { type: 'ephemeral' as const } } : {};
    if (message.role === 'assistant') {
      const calls = blocks.flatMap((b) =>
        b.type === 'tool_use'
          ? [{ id: b.id, type: 'function' as const, function: { name: b.name, arguments: JSON.stringify(b.input) } }]
          : [],
      );
      messages.push({
        role: 'assistant',
        content: textOf(texts),
        ...(calls.length > 0 && { tool_calls: calls }),
        ...cacheMark,
      });
      continue;
    }
    for (const result of blocks.filter((b) => b.type === 'tool_result')) {
      const content = typeof result.content === 'string' ? result.content : textOf(result.content ?? []);
      messages.push({
        role: 'tool',
        tool_call_id: result.tool_use_id,
        content: result.is_error ? `Error: ${content}` : content,
      });
    }
    if (texts.length > 0) messages.push({ role: 'user', content: textOf(texts), ...cacheMark });
  }
  return messages;
}

/** The tools and tool choice of a request as the chat core takes them. */
function toolsOf(request: Pick<MessagesRequest, 'tools' | 'tool_choice'>): Partial<ChatRequest> {
  const choice = request.tool_choice;
  if (!request.tools || request.tools.length === 0) return {};
  return {
    tools: request.tools.map((tool) => ({
      type: 'function' as const,
      function: {
        name: tool.name,
        ...(tool.description && { description: tool.description }),
        parameters: tool.input_schema,
      },
    })),
    ...(choice && {
      tool_choice:
        choice.type === 'tool'
          ? { type: 'function' as const, function: { name: choice.name } }
          : ({ auto: 'auto', any: 'required', none: 'none' } as const)[choice.type],
      ...(choice.disable_parallel_tool_use && { parallel_tool_calls: false }),
    }),
  };
}

/** The chat request a Messages request is served as. */
export function chatRequestOf(request: MessagesRequest): ChatRequest {
  return {
    model: request.model,
    messages: chatMessagesOf(request),
    max_tokens: request.max_tokens,
    ...(request.temperature !== undefined && { temperature: request.temperature }),
    ...(request.top_p !== undefined && { top_p: request.top_p }),
    ...(request.stop_sequences && { stop: request.stop_sequences }),
    ...toolsOf(request),
    ...(request.metadata?.user_id && { user: request.metadata.user_id }),
  };
}

/** The chat request whose input `count_tokens` counts. */
export function countedRequestOf(request: z.infer<typeof countTokensRequestSchema>): ChatRequest {
  return { model: request.model, messages: chatMessagesOf(request), ...toolsOf(request) };
}

const STOP_REASON: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  content_filter: 'refusal',
};

/** Anthropic's usage: input apart from what was read from the prompt cache. */
function anthropicUsage(usage: ChatCompletion['usage']) {
  const cachedTokens = usage.prompt_tokens_details.cached_tokens;
  return {
    input_tokens: usage.prompt_tokens - cachedTokens,
    cache_read_input_tokens: cachedTokens,
    cache_creation_input_tokens: 0,
    output_tokens: usage.completion_tokens,
  };
}

/** A tool call's arguments as `tool_use` input, which must be an object. */
function inputOf(argumentsText: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(argumentsText);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** A buffered chat answer as Anthropic's `message`. */
export function messageOf(request: MessagesRequest, completion: ChatCompletion, id: string) {
  const [choice] = completion.choices;
  const text = choice.message.content ?? '';
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: request.model,
    content: [
      ...(text !== '' ? [{ type: 'text', text }] : []),
      ...(choice.message.tool_calls ?? []).map((call) => ({
        type: 'tool_use',
        id: call.id,
        name: call.function.name,
        input: inputOf(call.function.arguments),
      })),
    ],
    stop_reason: STOP_REASON[choice.finish_reason] ?? 'end_turn',
    stop_sequence: null,
    usage: anthropicUsage(completion.usage),
  };
}

/** A streamed Messages event: its type and fields. */
export type MessageEvent = { type: string } & Record<string, unknown>;

/**
 * The chat's chunks as the Messages API's events: `message_start`, each content block started,
 * its `text_delta` or `input_json_delta` pieces, stopped, then `message_delta` with the stop reason
 * and usage, and `message_stop`. A failure passes through, for the transport to end the stream.
 */
export function messageEvents(
  request: MessagesRequest,
  chunks: AsyncGenerator<ChatCompletionChunk | StreamFailure>,
  id: string,
): AsyncGenerator<MessageEvent | StreamFailure> {
  return recodeStream(chunks, (stream) => messageEventsOf(request, stream, id));
}

async function* messageEventsOf(
  request: MessagesRequest,
  stream: AsyncIterable<ChatCompletionChunk | StreamFailure>,
  id: string,
): AsyncGenerator<MessageEvent | StreamFailure> {
  yield {
    type: 'message_start',
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model: request.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    },
  };
  /** The open block: its index, and for a tool call the chat's index of it. */
  let open: { index: number; toolCall?: number } | undefined;
  let blocks = 0;
  let finishReason: string | null = null;
  let usage: ReturnType<typeof anthropicUsage> | undefined;
  const stop = function* (): Generator<MessageEvent> {
    if (open) yield { type: 'content_block_stop', index: open.index };
    open = undefined;
  };
  for await (const chunk of stream) {
    if ('failure' in chunk) {
      yield chunk;
      return;
    }
    if (chunk.usage) usage = anthropicUsage(chunk.usage);
    const [choice] = chunk.choices;
    if (!choice) continue;
    finishReason = choice.finish_reason ?? finishReason;
    const { content, tool_calls: deltas } = choice.delta;
    if (content) {
      if (!open || open.toolCall !== undefined) {
        yield* stop();
        open = { index: blocks++ };
        yield { type: 'content_block_start', index: open.index, content_block: { type: 'text', text: '' } };
      }
      yield { type: 'content_block_delta', index: open.index, delta: { type: 'text_delta', text: content } };
    }
    for (const delta of deltas ?? []) {
      if (delta.id) {
        yield* stop();
        open = { index: blocks++, toolCall: delta.index };
        yield {
          type: 'content_block_start',
          index: open.index,
          content_block: { type: 'tool_use', id: delta.id, name: delta.function.name ?? '', input: {} },
        };
      }
      if (delta.function.arguments && open?.toolCall === delta.index) {
        yield {
          type: 'content_block_delta',
          index: open.index,
          delta: { type: 'input_json_delta', partial_json: delta.function.arguments },
        };
      }
    }
  }
  yield* stop();
  yield {
    type: 'message_delta',
    delta: { stop_reason: STOP_REASON[finishReason ?? 'stop'] ?? 'end_turn', stop_sequence: null },
    usage: usage ?? { output_tokens: 0 },
  };
  yield { type: 'message_stop' };
}
