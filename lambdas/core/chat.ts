import * as z from 'zod';
import type { AdapterEndpointSettings } from '../../contract/adapters';
import { resolveChatTarget } from './adapters';
import { type RetrievalDeps, retrievePassages } from './documents';
import { PlatformError } from './errors';
import { type ModelCall, metered } from './metering';
import type { ChatMessage, ModelProvider, TenantAdapters } from './ports';
import { groundedMessages, passageView, retrieveRequestSchema } from './retrieval';
import type { TenantContext } from './tenant';
import { chatInputTokens } from './tokens';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart).min(1)]),
  name: z.string().optional(),
});

/** A parameter OpenAI defines that the platform's models cannot honour: refused by name, never ignored. */
const unsupported = (why: string) =>
  z
    .unknown()
    .refine((value) => value === undefined || value === null, { message: why })
    .optional();

/**
 * The OpenAI chat-completions request subset the platform serves. Strict: a parameter it does not
 * know is a 400 naming it, never silently ignored.
 */
export const chatRequestSchema = z
  .object({
    model: z.string().min(1),
    messages: z.array(messageSchema).min(1).max(256),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
    n: z.literal(1, { message: 'only one choice is generated: omit n or set it to 1' }).nullish(),
    response_format: z
      .object({ type: z.literal('text', { message: 'only {"type": "text"} is served' }) })
      .strict()
      .nullish(),
    seed: unsupported("the platform's models take no seed: omit it"),
    tools: unsupported('tool calls are not served yet: omit tools'),
    tool_choice: unsupported('tool calls are not served yet: omit tool_choice'),
    logprobs: z.literal(false, { message: 'log probabilities are not served: omit logprobs' }).nullish(),
    /** Extension: answer from the tenant's own documents, and cite them. */
    retrieval: retrieveRequestSchema.omit({ query: true }).strict().optional(),
    user: z.string().optional(),
  })
  .strict();
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: number; message: { role: 'assistant'; content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  /** Extension, with `retrieval`: the passages the answer was grounded in, numbered as cited. */
  citations?: ReturnType<typeof passageView>[];
}

export interface ChatDeps extends Omit<RetrievalDeps, 'documents' | 'queue'> {
  /** Bedrock's models. */
  readonly models: ModelProvider;
  /** The GPU endpoint's base components and tenants' adapters, when there is one. */
  readonly adapterModels?: ModelProvider;
  readonly adapters?: TenantAdapters;
  readonly adapterEndpoint?: AdapterEndpointSettings;
}

/** OpenAI's `stop`: one sequence or up to four. */
export function stopSequences(stop: ChatRequest['stop']): string[] | undefined {
  return stop === null || stop === undefined ? undefined : [stop].flat();
}

/** `developer` is OpenAI's newer name for `system`; parts are joined into one text. */
export function toChatMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }));
}

/** Reserve against the tenant's limits, call the model, settle what it actually used. */
export async function completeChat(
  deps: ChatDeps,
  tenant: TenantContext,
  request: ChatRequest,
  call: ModelCall,
): Promise<ChatCompletion> {
  const { requestId, signal } = call;
  const { model, provider, modelId } = await resolveChatTarget(deps, tenant, request.model);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? model.defaultMaxTokens;
  if (maxTokens > model.maxOutputTokens) {
    throw new PlatformError('invalid_request', `max_tokens must be at most ${model.maxOutputTokens} for ${model.name}`);
  }
  const asked = toChatMessages(request.messages);
  const question = asked.findLast((message) => message.role === 'user')?.content ?? '';
  if (request.retrieval && question.trim() === '') {
    throw new PlatformError('invalid_request', 'retrieval searches with the last user message: send one');
  }
  const passages = request.retrieval
    ? await retrievePassages(
        deps,
        tenant,
        { query: question, topK: request.retrieval.top_k, filter: request.retrieval.filter },
        call,
      )
    : [];
  const messages = groundedMessages(asked, passages);
  const inputTokens = chatInputTokens(messages);
  const nowMs = deps.now();
  const result = await metered(
    deps,
    tenant,
    { requestId, model, estimate: { inputTokens, outputTokens: maxTokens }, nowMs, signal },
    () =>
      provider.generate(tenant, {
        modelId,
        messages,
        maxTokens,
        temperature: request.temperature,
        topP: request.top_p,
        stop: stopSequences(request.stop),
        signal,
      }),
  );

  return {
    id: `chatcmpl-${requestId}`,
    object: 'chat.completion',
    created: Math.floor(nowMs / 1000),
    model: model.name,
    choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: result.finishReason }],
    usage: {
      prompt_tokens: result.inputTokens,
      completion_tokens: result.outputTokens,
      total_tokens: result.inputTokens + result.outputTokens,
    },
    ...(request.retrieval && { citations: passages.map((passage, i) => passageView(passage, i)) }),
  };
}
