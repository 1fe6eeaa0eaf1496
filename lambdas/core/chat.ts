import * as z from 'zod';
import type { AdapterEndpointSettings } from '../../contract/adapters';
import type { GuardrailRef } from '../../contract/environment';
import type { Tier } from '../../contract/tenancy';
import { resolveChatTarget } from './adapters';
import { type AuditDetail, promptForAudit } from './audit';
import { type RetrievalDeps, retrievePassages } from './documents';
import { PlatformError } from './errors';
import {
  type ModelCall,
  meterCacheHit,
  metered,
  modelMayHaveRun,
  reserveCall,
  settleUsage,
  type TokenUsage,
} from './metering';
import { type PiiPolicy, piiPolicyFor, redact } from './pii';
import type {
  ChatMessage,
  ContentGuardrail,
  GenerateRequest,
  ModelProvider,
  ModelStreamEvent,
  ResponseCache,
  SessionStore,
  TenantAdapters,
  TenantPrompts,
} from './ports';
import { promptedMessages, promptUseSchema } from './prompts';
import { cacheable, cacheKey } from './response-cache';
import { groundedMessages, passageView, retrieveRequestSchema } from './retrieval';
import { recordTurn, SESSION_ID_PATTERN, sessionHistory } from './sessions';
import type { TenantContext } from './tenant';
import { chatInputTokens, countTokens } from './tokens';

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
    /** Optional only with a `prompt` whose template names a model. */
    model: z.string().min(1).optional(),
    /** Optional only with a `prompt`: its messages come first. */
    messages: z.array(messageSchema).max(256).optional(),
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
    /** Extension: one of the tenant's prompt templates, rendered before the messages. */
    prompt: promptUseSchema.optional(),
    /** Extension: a conversation kept server-side; its turns come before the messages, and this one is added. */
    session_id: z.string().regex(SESSION_ID_PATTERN, 'session_id is 1 to 128 of A-Z a-z 0-9 _ -').optional(),
    user: z.string().optional(),
  })
  .strict()
  .refine((request) => request.prompt || (request.messages?.length ?? 0) > 0, {
    message: 'messages must hold at least one message, or use a prompt',
    path: ['messages'],
  });
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
  /** The caller's prompt templates. */
  readonly prompts: TenantPrompts;
  /** Conversations kept for `session_id`. */
  readonly sessions: SessionStore;
  /** Each tenant's answers to deterministic requests. */
  readonly cache: ResponseCache;
  /** What an answer from the cache costs, in nano-USD. @default 0 */
  readonly cacheHitNanoUsd?: number;
  /** Each tier's guardrail; absent: none. */
  readonly guardrails?: Readonly<Record<Tier, GuardrailRef>>;
  /** Applies a guardrail to the models whose provider does not (the GPU endpoint's). */
  readonly contentGuardrail?: ContentGuardrail;
  /** What each tier's text is cleaned of before the model sees it; absent: nothing. */
  readonly piiRedaction?: Readonly<Record<Tier, PiiPolicy>>;
}

/** What a chat call adds beyond its request: where its audit details go, and the caller's cache directive. */
export interface ChatOptions {
  readonly audit?: AuditDetail;
  /** The caller said `Cache-Control: no-store`: the answer neither comes from nor goes to the cache. */
  readonly noStore?: boolean;
}

/** The guardrail intervened: a 400 naming the policies that fired. */
function blockedByGuardrail(policies: readonly string[]): PlatformError {
  return new PlatformError('content_blocked', `blocked by the content policy: ${policies.join(', ')}`);
}

/** OpenAI's `stop`: one sequence or up to four. */
export function stopSequences(stop: ChatRequest['stop']): string[] | undefined {
  return stop === null || stop === undefined ? undefined : [stop].flat();
}

/** `developer` is OpenAI's newer name for `system`; parts are joined into one text. */
export function toChatMessages(messages: ChatRequest['messages'] = []): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }));
}

/** What a chat call needs once its request is read: where it goes, the grounded messages, the estimate. */
async function prepareChat(
  deps: ChatDeps,
  tenant: TenantContext,
  request: ChatRequest,
  call: ModelCall,
  audit: AuditDetail,
) {
  // Another tenant's template is not found, exactly like one that does not exist.
  const prompt = request.prompt && (await deps.prompts.get(tenant, request.prompt.id));
  if (request.prompt && !prompt) throw new PlatformError('not_found', `no prompt '${request.prompt.id}'`);
  const modelName = request.model ?? prompt?.model;
  if (!modelName) throw new PlatformError('invalid_request', 'model is required (the prompt names none)');
  const target = await resolveChatTarget(deps, tenant, modelName);
  const { model } = target;
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? prompt?.max_tokens ?? model.defaultMaxTokens;
  if (maxTokens > model.maxOutputTokens) {
    throw new PlatformError('invalid_request', `max_tokens must be at most ${model.maxOutputTokens} for ${model.name}`);
  }
  const own = toChatMessages(request.messages);
  const history = request.session_id ? await sessionHistory(deps, tenant, request.session_id) : [];
  const conversation = [...history, ...own];
  const asked = prompt && request.prompt ? promptedMessages(prompt, request.prompt, conversation) : conversation;
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
  // Everything the model will read, the tenant's own passages and template variables too, cleaned of PII.
  const grounded = groundedMessages(asked, passages);
  const piiPolicy = piiPolicyFor(deps, tenant);
  const redaction = redact(
    grounded.map((message) => message.content),
    piiPolicy,
  );
  const messages = grounded.map((message, i) => ({ ...message, content: redaction.texts[i] }));
  if (Object.keys(redaction.counts).length > 0) audit.redacted = redaction.counts;
  if (tenant.auditPrompts) audit.prompt = promptForAudit(messages);
  const restore = piiPolicy.restore ? redaction : undefined;
  // Bedrock applies the tier's guardrail within the call; other models are screened around it.
  const guardrail = deps.guardrails?.[tenant.tier];
  const native = 'bedrockModelId' in model;
  const { contentGuardrail } = deps;
  const screen =
    guardrail && !native && contentGuardrail
      ? async (source: 'INPUT' | 'OUTPUT', texts: readonly string[]) => {
          const fired = await contentGuardrail.assess(guardrail, source, texts);
          if (fired) throw blockedByGuardrail(fired);
        }
      : undefined;
  const generate: GenerateRequest = {
    modelId: target.modelId,
    messages,
    maxTokens,
    temperature: request.temperature,
    topP: request.top_p,
    stop: stopSequences(request.stop),
    ...(guardrail && native && { guardrail }),
    signal: call.signal,
  };
  await screen?.(
    'INPUT',
    messages.map((message) => message.content),
  );
  const citations = request.retrieval && passages.map((passage, i) => passageView(passage, i));
  return {
    ...target,
    generate,
    estimate: { inputTokens: chatInputTokens(messages), outputTokens: maxTokens },
    citations,
    /** Set when the tenant's answers get the redacted values back. */
    restore,
    /** Checks a non-Bedrock model's answer against the tier's guardrail (throws `content_blocked`). */
    screenOutput: (text: string) => screen?.('OUTPUT', [text]),
    /** The template, as the cache keys on it. */
    promptRef: prompt ? { id: prompt.name, version: prompt.version } : undefined,
    /** Adds this call's turn to its session, if it has one: what the caller said and was answered. */
    remember: async (answer: string) => {
      if (!request.session_id) return;
      const said = own.filter((message) => message.role !== 'system');
      await recordTurn(deps, tenant, request.session_id, [...said, { role: 'assistant', content: answer }]);
    },
  };
}

/** Reserve against the tenant's limits, call the model, settle what it actually used. */
export async function completeChat(
  deps: ChatDeps,
  tenant: TenantContext,
  request: ChatRequest,
  call: ModelCall,
  options: ChatOptions = {},
): Promise<ChatCompletion> {
  const { requestId } = call;
  const audit = options.audit ?? {};
  const { model, provider, generate, estimate, citations, restore, remember, promptRef, screenOutput } =
    await prepareChat(deps, tenant, request, call, audit);
  const nowMs = deps.now();
  const answered = async (text: string, finishReason: string, usage: TokenUsage): Promise<ChatCompletion> => {
    const answer = restore ? restore.restore(text) : text;
    await remember(answer);
    return {
      id: `chatcmpl-${requestId}`,
      object: 'chat.completion',
      created: Math.floor(nowMs / 1000),
      model: model.name,
      choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: finishReason }],
      usage: {
        prompt_tokens: usage.inputTokens,
        completion_tokens: usage.outputTokens,
        total_tokens: usage.inputTokens + usage.outputTokens,
      },
      ...(citations && { citations }),
    };
  };

  const key = cacheable(tenant, request, options.noStore === true)
    ? cacheKey({ ...generate, prompt: promptRef })
    : undefined;
  if (key) {
    const hit = await deps.cache.get(tenant, key, nowMs);
    audit.cache = hit ? 'hit' : 'miss';
    if (hit) {
      const costNanoUsd = deps.cacheHitNanoUsd ?? 0;
      const { auditAtSettle } = call;
      await meterCacheHit(deps, tenant, { requestId, model: model.name, costNanoUsd, nowMs, auditAtSettle });
      return answered(hit.text, hit.finishReason, { inputTokens: 0, outputTokens: 0 });
    }
  }
  const result = await metered(deps, tenant, { ...call, model, estimate, nowMs }, () =>
    provider.generate(tenant, generate),
  );
  // Billed as it ran; the caller gets the refusal, and nothing is cached.
  if (result.blocked) throw blockedByGuardrail(result.blocked);
  await screenOutput(result.text);
  if (key) {
    const expiresAt = Math.floor(nowMs / 1000) + (tenant.cacheTtlSeconds ?? 0);
    // The model's own text (placeholders of redacted PII included): restored per request on a hit.
    // A cache write that fails makes the next call a miss, never this answer a failure.
    await deps.cache
      .put(tenant, key, { text: result.text, finishReason: result.finishReason }, expiresAt)
      .catch(() => undefined);
  }
  return answered(result.text, result.finishReason, result);
}

/** OpenAI's `chat.completion.chunk`: one delta of a streamed answer; the last holds `usage` when asked for. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: string | null }[];
  usage?: ChatCompletion['usage'] | null;
  citations?: ChatCompletion['citations'];
}

/** How a stream ends when the provider fails after it has begun: after the chunks it already sent. */
export interface StreamFailure {
  readonly failure: PlatformError;
}

/**
 * A streamed chat completion, chunk by chunk. The estimate is reserved before the first chunk, so a
 * refusal (429) or a provider that fails before writing anything is an ordinary error answer. The
 * ledger is settled when the stream ends, however it ends: the provider finished (its usage), the
 * caller hung up or the deadline passed (the iteration is stopped: the provider's usage if it gave
 * any, else the input estimate and the text generated so far, counted), or the provider failed
 * midway (the same, then a `StreamFailure` for the caller). Billed once, never zero times.
 */
export async function* streamChat(
  deps: ChatDeps,
  tenant: TenantContext,
  request: ChatRequest,
  call: ModelCall,
  options: ChatOptions = {},
): AsyncGenerator<ChatCompletionChunk | StreamFailure> {
  const audit = options.audit ?? {};
  const { model, provider, generate, estimate, citations, restore, remember, screenOutput } = await prepareChat(
    deps,
    tenant,
    request,
    call,
    audit,
  );
  const restorer = restore?.restorer();
  if (call.signal?.aborted) throw new PlatformError('upstream_timeout', 'no time was left for the model call');
  const nowMs = deps.now();
  const reservation = await reserveCall(deps.ledger, tenant, { requestId: call.requestId, model, estimate, nowMs });
  const chunk = (delta: ChatCompletionChunk['choices'][number]['delta'], finishReason: string | null = null) => ({
    id: `chatcmpl-${call.requestId}`,
    object: 'chat.completion.chunk' as const,
    created: Math.floor(nowMs / 1000),
    model: model.name,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
  let generated = '';
  /** What the caller was sent: the generated text, with the redacted values back where the tier asks. */
  let delivered = '';
  let end: Extract<ModelStreamEvent, { type: 'end' }> | undefined;
  let failure: PlatformError | undefined;
  let settled = false;
  /** The provider's count if it gave one; else the input estimate and the text generated, counted. */
  const used = (): TokenUsage => ({
    inputTokens: end?.inputTokens ?? estimate.inputTokens,
    outputTokens: end?.outputTokens ?? countTokens(generated),
  });
  try {
    for await (const event of provider.stream(tenant, generate)) {
      if (event.type === 'end') {
        end = event;
        continue;
      }
      const first = generated === '';
      generated += event.text;
      const text = restorer ? restorer.push(event.text) : event.text;
      delivered += text;
      yield first
        ? { ...chunk({ role: 'assistant', content: text }), ...(citations && { citations }) }
        : chunk({ content: text });
    }
  } catch (error) {
    // Nothing sent yet: an ordinary error answer, the reservation released if the model certainly
    // did not run, else settled as the estimate (as `runReserved` does).
    if (generated === '') {
      settled = true;
      if (modelMayHaveRun(error)) await settleUsage(deps, model, reservation, estimate);
      else await deps.ledger.release(reservation);
      throw error;
    }
    failure = error instanceof PlatformError ? error : new PlatformError('upstream_error', 'the model stream broke');
  } finally {
    // Also when the caller stops the iteration (it hung up, or the deadline passed): what was generated.
    if (!settled) await settleUsage(deps, model, reservation, used(), call.auditAtSettle);
  }
  const usage = used();
  if (failure) {
    yield { failure };
    return;
  }
  const held = restorer?.flush();
  if (held) {
    delivered += held;
    yield chunk({ content: held });
  }
  try {
    if (end?.blocked) throw blockedByGuardrail(end.blocked);
    await screenOutput(generated);
    await remember(delivered);
  } catch (error) {
    yield {
      failure:
        error instanceof PlatformError ? error : new PlatformError('upstream_error', 'the session was not saved'),
    };
    return;
  }
  yield chunk({}, end?.finishReason ?? 'stop');
  if (request.stream_options?.include_usage) {
    yield {
      ...chunk({}),
      choices: [],
      usage: {
        prompt_tokens: usage.inputTokens,
        completion_tokens: usage.outputTokens,
        total_tokens: usage.inputTokens + usage.outputTokens,
      },
    };
  }
}
