import * as z from '../../contract/zod';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatRequest,
  recodeStream,
  type StreamFailure,
  toChatMessages,
  unsupported,
} from './chat';
import { PlatformError } from './errors';
import { openAiMessage } from './openai-messages';
import type { ChatMessage, StoredResponse } from './ports';
import type { TenantContext } from './tenant';
import { nameSchema, responseFormatSchema, toolSchema } from './tools';

/**
 * The OpenAI Responses API as a codec over chat completions: its request becomes a chat request
 * (instructions, input items, the stored conversation of `previous_response_id`), the chat answer
 * becomes its `response` object, and the chat's chunks become its streamed events. The one metered
 * core (admission, guardrails, PII redaction, audit, settle) serves it unchanged.
 */

const textPart = z.object({ type: z.enum(['input_text', 'output_text']), text: z.string() });
const refusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() });
const messageItem = z.object({
  type: z.optional(z.literal('message')),
  id: z.optional(z.string()),
  status: z.optional(z.string()),
  role: z.enum(['user', 'system', 'developer', 'assistant']),
  content: z.union([z.string(), z.array(z.union([textPart, refusalPart]))]),
});
const callId = z.string().check(z.minLength(1), z.maxLength(256));
const functionCallItem = z.object({
  type: z.literal('function_call'),
  id: z.optional(z.string()),
  status: z.optional(z.string()),
  call_id: callId,
  name: z.string().check(z.minLength(1), z.maxLength(256)),
  arguments: z.string(),
});
const functionCallOutputItem = z.object({
  type: z.literal('function_call_output'),
  id: z.optional(z.string()),
  status: z.optional(z.string()),
  call_id: callId,
  output: z.union([z.string(), z.array(textPart)]),
});
/** An item of a stored response's output, by its id (the Vercel AI SDK sends these for earlier turns). */
const itemReference = z.object({
  type: z.literal('item_reference'),
  id: z.string().check(z.minLength(1), z.maxLength(300)),
});
const inputItem = z.union([messageItem, functionCallItem, functionCallOutputItem, itemReference], {
  message: 'input items are messages (text parts), function_call, function_call_output and item_reference items',
});

const functionTool = z.object({
  type: z.literal('function'),
  name: nameSchema,
  description: z.nullish(z.string().check(z.maxLength(10_000))),
  parameters: z.nullish(toolSchema.shape.function.shape.parameters),
  strict: z.nullish(z.boolean()),
});
/** `file_search` searches the tenant's own documents (its retrieval); vector store ids name nothing else. */
const fileSearchTool = z.object({
  type: z.literal('file_search'),
  vector_store_ids: z.optional(z.array(z.string())),
  max_num_results: z.optional(z.number().check(z.int(), z.gte(1), z.lte(50))),
});

const formatSchema = z.union([
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    name: nameSchema,
    description: z.optional(z.string().check(z.maxLength(10_000))),
    schema: z.record(z.string(), z.unknown()),
    strict: z.nullish(z.boolean()),
  }),
]);

/** What the platform serves of `POST /v1/responses`; parameters with no effect here are accepted as the SDKs send them. */
export const responsesRequestSchema = z.strictObject({
  model: z.string().check(z.minLength(1)),
  input: z.union([z.string(), z.array(inputItem).check(z.minLength(1), z.maxLength(1024))]),
  instructions: z.nullish(z.string()),
  tools: z.optional(z.array(z.union([functionTool, fileSearchTool])).check(z.maxLength(128))),
  tool_choice: z.optional(
    z.union([
      z.enum(['auto', 'none', 'required']),
      z.object({ type: z.literal('function'), name: nameSchema }),
      z.object({ type: z.literal('file_search') }),
    ]),
  ),
  parallel_tool_calls: z.nullish(z.boolean()),
  text: z.optional(z.object({ format: z.optional(formatSchema), verbosity: z.nullish(z.string()) })),
  max_output_tokens: z.nullish(z.number().check(z.int(), z.positive())),
  temperature: z.nullish(z.number().check(z.gte(0), z.lte(2))),
  top_p: z.nullish(z.number().check(z.gt(0), z.lte(1))),
  metadata: z.nullish(
    z
      .record(z.string().check(z.maxLength(64)), z.string().check(z.maxLength(512)))
      .check(z.refine((pairs) => Object.keys(pairs).length <= 16, 'metadata holds at most 16 pairs')),
  ),
  user: z.nullish(z.string().check(z.maxLength(1000))),
  store: z.nullish(z.boolean()),
  previous_response_id: z.nullish(z.string().check(z.minLength(1), z.maxLength(200))),
  stream: z.nullish(z.boolean()),
  // Accepted for the SDKs that send them; they change nothing here.
  truncation: z.nullish(z.enum(['auto', 'disabled'])),
  include: z.nullish(z.array(z.string())),
  reasoning: z.nullish(z.looseObject({})),
  service_tier: z.nullish(z.enum(['auto', 'default', 'flex', 'scale', 'priority'])),
  prompt_cache_key: z.nullish(z.string().check(z.maxLength(256))),
  safety_identifier: z.nullish(z.string().check(z.maxLength(256))),
  background: z.nullish(z.literal(false, { message: 'background responses are not served' })),
  stream_options: z.nullish(z.looseObject({})),
  prompt_cache_retention: z.nullish(z.enum(['in-memory', '24h'])),
  max_tool_calls: z.nullish(z.number().check(z.int(), z.positive())),
  context_management: z.nullish(z.array(z.unknown())),
  top_logprobs: z.nullish(z.literal(0, { message: 'log probabilities are not served: omit top_logprobs' })),
  conversation: unsupported('conversations are not served: continue with previous_response_id'),
  prompt: unsupported('stored prompts are not served here: send the input'),
});
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

type ChatMessageParam = NonNullable<ChatRequest['messages']>[number];

/** A stored conversation's messages as chat request messages. */
function asChatParams(messages: readonly ChatMessage[]): ChatMessageParam[] {
  return messages.map((message) => openAiMessage(message) as ChatMessageParam);
}

/** Input items as chat messages: function calls join the assistant turn before them, outputs are tool turns. */
function inputMessages(input: ResponsesRequest['input']): ChatMessageParam[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const messages: ChatMessageParam[] = [];
  for (const item of input) {
    // Resolved before (`resolveItemReferences`): none is left here.
    if (item.type === 'item_reference') continue;
    if (item.type === 'function_call') {
      const call = {
        id: item.call_id,
        type: 'function' as const,
        function: { name: item.name, arguments: item.arguments },
      };
      const last = messages.at(-1);
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (item.type === 'function_call_output') {
      const output = typeof item.output === 'string' ? item.output : item.output.map((part) => part.text).join('');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: output });
    } else {
      const text =
        typeof item.content === 'string'
          ? item.content
          : item.content.map((part) => ('text' in part ? part.text : part.refusal)).join('');
      const role = item.role === 'developer' ? 'system' : item.role;
      messages.push({ role, content: text });
    }
  }
  return messages;
}

/** The chat request a Responses request is served as, after the conversation it continues. */
export function chatRequestOf(request: ResponsesRequest, previous: StoredResponse | undefined): ChatRequest {
  const functions = (request.tools ?? []).flatMap((tool) => (tool.type === 'function' ? [tool] : []));
  const fileSearch = request.tools?.find((tool) => tool.type === 'file_search');
  const choice = request.tool_choice;
  const format = request.text?.format;
  return {
    model: request.model,
    messages: [
      ...(request.instructions ? [{ role: 'system' as const, content: request.instructions }] : []),
      ...asChatParams(previous?.conversation ?? []),
      ...inputMessages(request.input),
    ],
    ...(request.max_output_tokens && { max_completion_tokens: request.max_output_tokens }),
    ...(typeof request.temperature === 'number' && { temperature: request.temperature }),
    ...(typeof request.top_p === 'number' && { top_p: request.top_p }),
    ...(functions.length > 0 && {
      tools: functions.map((tool) => ({
        type: 'function' as const,
        function: {
          name: tool.name,
          ...(tool.description && { description: tool.description }),
          ...(tool.parameters && { parameters: tool.parameters }),
          ...(typeof tool.strict === 'boolean' && { strict: tool.strict }),
        },
      })),
    }),
    ...(choice &&
      functions.length > 0 &&
      (typeof choice === 'string' || choice.type === 'function') && {
        tool_choice:
          typeof choice === 'string' ? choice : { type: 'function' as const, function: { name: choice.name } },
      }),
    ...(typeof request.parallel_tool_calls === 'boolean' && { parallel_tool_calls: request.parallel_tool_calls }),
    ...(format &&
      format.type !== 'text' && {
        response_format: responseFormatSchema.parse(
          format.type === 'json_object'
            ? format
            : {
                type: 'json_schema',
                json_schema: {
                  name: format.name,
                  schema: format.schema,
                  ...(format.description && { description: format.description }),
                  ...(typeof format.strict === 'boolean' && { strict: format.strict }),
                },
              },
        ),
      }),
    // The tenant's own documents, searched with the last user message.
    ...(fileSearch && { retrieval: { top_k: fileSearch.max_num_results ?? 5 } }),
    ...(request.user && { user: request.user }),
    ...(request.metadata && { metadata: request.metadata }),
  };
}

/** Refuses a tool choice the chat core cannot express. */
export function checkToolChoice(request: ResponsesRequest): void {
  const choice = request.tool_choice;
  if (typeof choice === 'object' && choice.type === 'file_search') {
    throw new PlatformError('invalid_request', 'tool_choice: file_search runs on every call that offers it');
  }
}

/** The ids a response and its items carry, from the request id. */
export function responseIds(requestId: string) {
  return {
    response: `resp_${requestId}`,
    message: `msg_${requestId}`,
    functionCall: (index: number) => `fc_${requestId}_${index}`,
    fileSearch: `fs_${requestId}`,
  };
}
type Ids = ReturnType<typeof responseIds>;

type OutputItem = Record<string, unknown> & { type: string };

interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

function responseUsage(usage: ChatCompletion['usage']): ResponseUsage {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: usage.prompt_tokens_details.cached_tokens },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.total_tokens,
  };
}

/** The `response` object: the request's parameters as served, its output, status and usage. */
export function responseObject(
  request: ResponsesRequest,
  ids: Ids,
  createdAt: number,
  state: {
    status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
    output: OutputItem[];
    usage?: ResponseUsage | null;
  },
  more: { incompleteReason?: string; error?: { code: string; message: string } } = {},
) {
  return {
    id: ids.response,
    object: 'response',
    created_at: createdAt,
    status: state.status,
    background: false,
    error: more.error ?? null,
    incomplete_details: more.incompleteReason ? { reason: more.incompleteReason } : null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    metadata: request.metadata ?? {},
    model: request.model,
    output: state.output,
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    store: request.store ?? true,
    temperature: request.temperature ?? 1,
    text: { format: request.text?.format ?? { type: 'text' } },
    tool_choice: request.tool_choice ?? 'auto',
    tools: request.tools ?? [],
    top_p: request.top_p ?? 1,
    truncation: request.truncation ?? 'disabled',
    usage: state.usage ?? null,
    user: request.user ?? null,
  };
}
export type ResponseObject = ReturnType<typeof responseObject>;

/** Citations of the tenant's documents as `file_citation` annotations, each where its `[n]` marker stands. */
function annotationsOf(text: string, citations: ChatCompletion['citations']) {
  return (citations ?? []).map((citation) => {
    const marker = text.indexOf(`[${citation.index}]`);
    return {
      type: 'file_citation',
      file_id: citation.document_id,
      filename: citation.title ?? citation.document_id,
      index: marker >= 0 ? marker : text.length,
    };
  });
}

function fileSearchCall(ids: Ids, query: string) {
  return { type: 'file_search_call', id: ids.fileSearch, status: 'completed', queries: [query], results: null };
}

/** How a chat's finish reason ends a response: complete, or incomplete for a reason. */
function ending(finishReason: string | null | undefined) {
  if (finishReason === 'length') return { status: 'incomplete' as const, incompleteReason: 'max_output_tokens' };
  if (finishReason === 'content_filter') return { status: 'incomplete' as const, incompleteReason: 'content_filter' };
  return { status: 'completed' as const };
}

/** The last user message: what `file_search` searched with. */
function searchQuery(request: ChatRequest): string {
  const message = request.messages?.findLast((m) => m.role === 'user');
  return typeof message?.content === 'string' ? message.content : '';
}

/** A buffered chat answer as the response object. */
export function responseOf(
  request: ResponsesRequest,
  chat: ChatRequest,
  completion: ChatCompletion,
  ids: Ids,
): ResponseObject {
  const [choice] = completion.choices;
  const text = choice.message.content ?? '';
  const calls = choice.message.tool_calls ?? [];
  const output: OutputItem[] = [
    ...(chat.retrieval ? [fileSearchCall(ids, searchQuery(chat))] : []),
    ...(text !== '' || calls.length === 0
      ? [
          {
            type: 'message',
            id: ids.message,
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: annotationsOf(text, completion.citations) }],
          },
        ]
      : []),
    ...calls.map((call, i) => ({
      type: 'function_call',
      id: ids.functionCall(i),
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      status: 'completed',
    })),
  ];
  const end = ending(choice.finish_reason);
  return responseObject(
    request,
    ids,
    completion.created,
    { status: end.status, output, usage: responseUsage(completion.usage) },
    end,
  );
}

/** The assistant turn a response's output adds to its conversation. */
function outputTurn(output: readonly OutputItem[]): ChatMessage {
  const text = output
    .filter((item) => item.type === 'message')
    .flatMap((item) => (item.content as { text: string }[]).map((part) => part.text))
    .join('');
  const toolCalls = output
    .filter((item) => item.type === 'function_call')
    .map((item) => ({ id: String(item.call_id), name: String(item.name), arguments: String(item.arguments) }));
  return { role: 'assistant', content: text, ...(toolCalls.length > 0 && { toolCalls }) };
}

/** What is kept of a response to read back and continue from: without the instructions, which do not carry over. */
export function storedResponse(
  tenant: TenantContext,
  request: ResponsesRequest,
  previous: StoredResponse | undefined,
  response: ResponseObject,
  expiresAt: number,
): StoredResponse {
  const input: StoredResponse['inputItems'] =
    typeof request.input === 'string' ? [{ type: 'message', role: 'user', content: request.input }] : request.input;
  return {
    id: response.id,
    principal: `${tenant.principal.type}:${tenant.principal.id}`,
    response,
    inputItems: input,
    conversation: [
      ...(previous?.conversation ?? []),
      ...toChatMessages(inputMessages(request.input)).map(({ cachePoint: _, ...message }) => message),
      outputTurn(response.output),
    ],
    expiresAt,
  };
}

/** The stored response whose output an item id (`msg_<request>`, `fc_<request>_<n>`, `fs_<request>`) belongs to. */
function responseIdOfItem(itemId: string): string | undefined {
  const requestId = /^(?:msg|fs)_(.+)$/.exec(itemId)?.[1] ?? /^fc_(.+)_\d+$/.exec(itemId)?.[1];
  return requestId && `resp_${requestId}`;
}

/**
 * The input with each `item_reference` replaced by the output item it names, from the tenant's
 * stored responses: a message as the assistant's turn, a function call as itself. A reference to
 * nothing the caller may read is a 404, as any stored response of another's is.
 */
export async function resolveItemReferences(
  input: ResponsesRequest['input'],
  stored: (responseId: string) => Promise<StoredResponse | undefined>,
): Promise<ResponsesRequest['input']> {
  if (typeof input === 'string' || !input.some((item) => item.type === 'item_reference')) return input;
  const resolved: Exclude<ResponsesRequest['input'], string> = [];
  const reads = new Map<string, Promise<StoredResponse | undefined>>();
  for (const item of input) {
    if (item.type !== 'item_reference') {
      resolved.push(item);
      continue;
    }
    const responseId = responseIdOfItem(item.id);
    // Several references to one response's items read it once.
    if (responseId && !reads.has(responseId)) reads.set(responseId, stored(responseId));
    const response = responseId ? await reads.get(responseId) : undefined;
    const output = (response?.response.output as OutputItem[] | undefined)?.find((entry) => entry.id === item.id);
    if (!output || (output.type !== 'message' && output.type !== 'function_call')) {
      throw new PlatformError('not_found', `input: no stored item '${item.id.slice(0, 128)}'`);
    }
    resolved.push(inputItem.parse(output) as (typeof resolved)[number]);
  }
  return resolved;
}

/** A stored response is its tenant's, and where principals are kept apart, its principal's. */
export function readableBy(tenant: TenantContext, stored: StoredResponse | undefined): StoredResponse | undefined {
  const principal = `${tenant.principal.type}:${tenant.principal.id}`;
  return stored && (tenant.sessionScope !== 'principal' || stored.principal === principal) ? stored : undefined;
}

/** `GET /v1/responses/{id}/input_items`: `order` (`desc` by default, as OpenAI), `after` an item id, `limit` 1-100. */
export const inputItemsQuerySchema = z.object({
  order: z._default(z.enum(['asc', 'desc']), 'desc'),
  after: z.optional(z.string().check(z.maxLength(300))),
  limit: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(100)), 20),
});

/** A page of a stored response's input items, as OpenAI's SDKs page them (`has_more`, `first_id`, `last_id`). */
export function inputItemsPage(stored: StoredResponse, query: z.infer<typeof inputItemsQuerySchema>) {
  const items = stored.inputItems.map((item, i) => inputItemView(item, i, stored.id));
  const ordered = query.order === 'asc' ? items : items.reverse();
  const start = query.after === undefined ? 0 : ordered.findIndex((item) => item.id === query.after) + 1;
  const data = ordered.slice(start, start + query.limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + query.limit < ordered.length,
  };
}

/** An input item as `GET /v1/responses/{id}/input_items` lists it. */
function inputItemView(item: unknown, index: number, responseId: string) {
  const value = item as Record<string, unknown>;
  const type = (value.type as string | undefined) ?? 'message';
  const content =
    type === 'message' && typeof value.content === 'string'
      ? [{ type: 'input_text', text: value.content }]
      : value.content;
  return {
    id: (value.id as string | undefined) ?? `item_${responseId.slice(5)}_${index}`,
    ...value,
    type,
    ...(content !== undefined && { content }),
  };
}

/** A streamed Responses event: its type and fields; `sequence_number` is added as it is sent. */
export type ResponseEvent = { type: string } & Record<string, unknown>;

/**
 * The chat's chunks as the Responses API's events: `response.created`, `response.in_progress`,
 * each output item added, its text or arguments in deltas, done, then `response.completed` (or
 * `.incomplete`) with the usage. `completed` is told the final response before the last event, to
 * store it. A failure passes through, for the transport to end the stream with it.
 */
export function responseEvents(
  request: ResponsesRequest,
  chat: ChatRequest,
  chunks: AsyncGenerator<ChatCompletionChunk | StreamFailure>,
  ids: Ids,
  createdAt: number,
  completed: (response: ResponseObject) => Promise<void>,
): AsyncGenerator<ResponseEvent | StreamFailure> {
  return recodeStream(chunks, (stream) => responseEventsOf(request, chat, stream, ids, createdAt, completed));
}

async function* responseEventsOf(
  request: ResponsesRequest,
  chat: ChatRequest,
  stream: AsyncIterable<ChatCompletionChunk | StreamFailure>,
  ids: Ids,
  createdAt: number,
  completed: (response: ResponseObject) => Promise<void>,
): AsyncGenerator<ResponseEvent | StreamFailure> {
  const output: OutputItem[] = [];
  let message: { index: number; text: string } | undefined;
  const calls = new Map<number, { index: number; item: OutputItem }>();
  let citations: ChatCompletion['citations'];
  let finishReason: string | null = null;
  let usage: ResponseUsage | undefined;
  const snapshot = (status: 'in_progress') => responseObject(request, ids, createdAt, { status, output: [] });
  yield { type: 'response.created', response: snapshot('in_progress') };
  yield { type: 'response.in_progress', response: snapshot('in_progress') };
  if (chat.retrieval) {
    const item = fileSearchCall(ids, searchQuery(chat));
    output.push(item);
    yield { type: 'response.output_item.added', output_index: 0, item };
    yield { type: 'response.output_item.done', output_index: 0, item };
  }
  const messageItem = (text: string, status: string) => ({
    type: 'message',
    id: ids.message,
    status,
    role: 'assistant',
    content: text === '' && status === 'in_progress' ? [] : [textPart(text)],
  });
  const textPart = (text: string) => ({ type: 'output_text', text, annotations: annotationsOf(text, citations) });
  /** The message's text is whole when the first tool call starts, or at the end. */
  async function* closeMessage(): AsyncGenerator<ResponseEvent> {
    if (!message) return;
    const { index, text } = message;
    const common = { item_id: ids.message, output_index: index, content_index: 0 };
    yield { type: 'response.output_text.done', ...common, text, logprobs: [] };
    yield { type: 'response.content_part.done', ...common, part: textPart(text) };
    output[index] = messageItem(text, 'completed');
    yield { type: 'response.output_item.done', output_index: index, item: output[index] };
    message = undefined;
  }
  for await (const chunk of stream) {
    if ('failure' in chunk) {
      yield chunk;
      return;
    }
    citations = chunk.citations ?? citations;
    if (chunk.usage) usage = responseUsage(chunk.usage);
    const [choice] = chunk.choices;
    if (!choice) continue;
    finishReason = choice.finish_reason ?? finishReason;
    const { content, tool_calls: deltas } = choice.delta;
    if (content) {
      if (!message) {
        message = { index: output.length, text: '' };
        output.push(messageItem('', 'in_progress'));
        yield { type: 'response.output_item.added', output_index: message.index, item: output[message.index] };
        const common = { item_id: ids.message, output_index: message.index, content_index: 0 };
        yield { type: 'response.content_part.added', ...common, part: textPart('') };
      }
      message.text += content;
      yield {
        type: 'response.output_text.delta',
        item_id: ids.message,
        output_index: message.index,
        content_index: 0,
        delta: content,
      };
    }
    for (const delta of deltas ?? []) {
      let call = calls.get(delta.index);
      if (!call) {
        yield* closeMessage();
        const item = {
          type: 'function_call',
          id: ids.functionCall(delta.index),
          call_id: delta.id ?? '',
          name: delta.function.name ?? '',
          arguments: '',
          status: 'in_progress',
        };
        call = { index: output.length, item };
        calls.set(delta.index, call);
        output.push(item);
        yield { type: 'response.output_item.added', output_index: call.index, item };
      }
      if (delta.function.arguments) {
        call.item.arguments = `${call.item.arguments}${delta.function.arguments}`;
        yield {
          type: 'response.function_call_arguments.delta',
          item_id: call.item.id,
          output_index: call.index,
          delta: delta.function.arguments,
        };
      }
    }
  }
  yield* closeMessage();
  for (const { index, item } of calls.values()) {
    const done = { ...item, status: 'completed' };
    output[index] = done;
    yield {
      type: 'response.function_call_arguments.done',
      item_id: item.id,
      output_index: index,
      arguments: item.arguments,
    };
    yield { type: 'response.output_item.done', output_index: index, item: done };
  }
  const end = ending(finishReason);
  const response = responseObject(request, ids, createdAt, { status: end.status, output, usage }, end);
  await completed(response);
  yield { type: end.status === 'completed' ? 'response.completed' : 'response.incomplete', response };
}
