import type { AdapterEndpointSettings } from '../../contract/adapters';
import type { GuardrailRef } from '../../contract/environment';
import type { RoutingPolicy } from '../../contract/routing';
import type { Tier } from '../../contract/tenancy';
import * as z from '../../contract/zod';
import { type AuditDetail, promptForAudit } from './audit';
import type { ResolvedModel } from './catalog';
import { type RetrievalDeps, retrievePassages } from './documents';
import { PlatformError } from './errors';
import {
  admitModelCall,
  FailedAfterUse,
  type ModelCall,
  meterCacheHit,
  modelMayHaveRun,
  type TokenUsage,
} from './metering';
import { openAiToolCall } from './openai-messages';
import { type PiiPolicy, piiPolicyFor, type Redaction, redact } from './pii';
import type {
  ChatMessage,
  ContentGuardrail,
  GenerateRequest,
  GenerateResult,
  ModelProvider,
  ModelStreamEvent,
  ResponseCache,
  SessionStore,
  TenantAdapters,
  TenantPrompts,
  ToolCall,
  ToolDefinition,
} from './ports';
import { promptedMessages, promptUseSchema } from './prompts';
import { cacheable, cacheKey } from './response-cache';
import { groundedMessages, passageView, retrieveRequestSchema } from './retrieval';
import {
  type Attempt,
  attemptsText,
  type RouteDeps,
  type RouteTarget,
  routeFor,
  routeTargets,
  tryRoute,
} from './routing';
import { recordTurn, SESSION_ID_PATTERN, sessionHistory } from './sessions';
import type { TenantContext } from './tenant';
import { chatInputTokens, countTokens } from './tokens';
import {
  checkToolTurns,
  formatProblem,
  responseFormatSchema,
  toolCallSchema,
  toolChoiceSchema,
  toolOptions,
  toolSchema,
  toolTokens,
} from './tools';

/** A prompt-cache point after this part or message (Anthropic's and LiteLLM's `cache_control` extension). */
const cacheControl = z.strictObject({ type: z.literal('ephemeral'), ttl: z.optional(z.enum(['5m', '1h'])) });
const textPart = z.object({ type: z.literal('text'), text: z.string(), cache_control: z.optional(cacheControl) });
const contentSchema = z.union([z.string(), z.array(textPart).check(z.minLength(1))]);

const messageSchema = z.discriminatedUnion('role', [
  z.object({
    role: z.enum(['system', 'developer', 'user']),
    content: contentSchema,
    name: z.optional(z.string()),
    cache_control: z.optional(cacheControl),
  }),
  z.object({
    role: z.literal('assistant'),
    // Null, or empty, when the turn only called tools.
    content: z.nullish(z.union([z.string(), z.array(textPart)])),
    name: z.optional(z.string()),
    tool_calls: z.optional(z.array(toolCallSchema).check(z.maxLength(128))),
    refusal: z.nullish(z.string()),
    cache_control: z.optional(cacheControl),
  }),
  z.object({
    role: z.literal('tool'),
    content: contentSchema,
    tool_call_id: z.string().check(z.minLength(1), z.maxLength(256)),
    cache_control: z.optional(cacheControl),
  }),
]);

/** A parameter OpenAI defines that the platform's models cannot honour: refused by name, never ignored. */
export const unsupported = (why: string) =>
  z.optional(z.unknown().check(z.refine((value) => value === undefined || value === null, { message: why })));

/**
 * The OpenAI chat-completions request subset the platform serves. Strict: a parameter it does not
 * know is a 400 naming it, never silently ignored.
 */
export const chatRequestSchema = z
  .strictObject({
    /** Optional only with a `prompt` whose template names a model. */
    model: z.optional(z.string().check(z.minLength(1))),
    /** Optional only with a `prompt`: its messages come first. */
    messages: z.optional(z.array(messageSchema).check(z.maxLength(256))),
    max_tokens: z.optional(z.number().check(z.int(), z.positive())),
    max_completion_tokens: z.optional(z.number().check(z.int(), z.positive())),
    temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
    top_p: z.optional(z.number().check(z.gt(0), z.lte(1))),
    stop: z.nullish(
      z.union([z.string().check(z.minLength(1)), z.array(z.string().check(z.minLength(1))).check(z.maxLength(4))]),
    ),
    stream: z.nullish(z.boolean()),
    stream_options: z.nullish(z.strictObject({ include_usage: z.optional(z.boolean()) })),
    n: z.nullish(z.literal(1, { message: 'only one choice is generated: omit n or set it to 1' })),
    tools: z.optional(z.array(toolSchema).check(z.minLength(1), z.maxLength(128))),
    tool_choice: z.optional(toolChoiceSchema),
    parallel_tool_calls: z.nullish(z.boolean()),
    response_format: z.nullish(responseFormatSchema),
    seed: unsupported("the platform's models take no seed: omit it"),
    logprobs: z.nullish(z.literal(false, { message: 'log probabilities are not served: omit logprobs' })),
    /** Extension: answer from the tenant's own documents, and cite them. */
    retrieval: z.optional(z.omit(retrieveRequestSchema, { query: true })),
    /** Extension: one of the tenant's prompt templates, rendered before the messages. */
    prompt: z.optional(promptUseSchema),
    /** Extension: a conversation kept server-side; its turns come before the messages, and this one is added. */
    session_id: z.optional(z.string().check(z.regex(SESSION_ID_PATTERN, 'session_id is 1 to 128 of A-Z a-z 0-9 _ -'))),
    /** Recorded in the audit record. */
    user: z.optional(z.string().check(z.maxLength(1000))),
    /** Recorded in the audit record: OpenAI's 16 pairs, keys up to 64 characters, values up to 512. */
    metadata: z.nullish(
      z
        .record(z.string().check(z.maxLength(64)), z.string().check(z.maxLength(512)))
        .check(z.refine((pairs) => Object.keys(pairs).length <= 16, 'metadata holds at most 16 pairs')),
    ),
    /** Accepted for compatibility: answers are kept per the tenant's audit and cache settings, not per call. */
    store: z.nullish(z.boolean()),
    /** Accepted for compatibility: every call is served on demand. */
    service_tier: z.nullish(z.enum(['auto', 'default', 'flex', 'scale', 'priority'])),
  })
  .check(
    z.refine((request) => request.prompt || (request.messages?.length ?? 0) > 0, {
      message: 'messages must hold at least one message, or use a prompt',
      path: ['messages'],
    }),
  );
export type ChatRequest = z.infer<typeof chatRequestSchema>;

type ToolCallView = ReturnType<typeof openAiToolCall>;

/** OpenAI's usage: prompt tokens with the cached ones named apart. */
export interface UsageView {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

function usageView(usage: TokenUsage): UsageView {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cacheReadInputTokens ?? 0 },
  };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string | null; refusal: null; tool_calls?: ToolCallView[] };
    finish_reason: string;
  }[];
  usage: UsageView;
  /** Extension, with `retrieval`: the passages the answer was grounded in, numbered as cited. */
  citations?: ReturnType<typeof passageView>[];
}

export interface ChatDeps extends Omit<RetrievalDeps, 'documents' | 'queue'>, RouteDeps {
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
  /** Each tier's routes (fallbacks, retries, weights) by requested model; a tenant's own come first. */
  readonly routing?: Readonly<Record<Tier, RoutingPolicy>>;
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

/** The text of a message's content: its parts joined. */
function textOf(content: z.infer<typeof contentSchema> | null | undefined): string {
  return typeof content === 'string' ? content : (content ?? []).map((part) => part.text).join('');
}

/** `developer` is OpenAI's newer name for `system`; parts are joined into one text; tool turns kept. */
export function toChatMessages(messages: ChatRequest['messages'] = []): ChatMessage[] {
  return messages.map((message): ChatMessage => {
    const cachePoint =
      message.cache_control !== undefined ||
      (Array.isArray(message.content) && message.content.some((part) => part.cache_control));
    const common = { content: textOf(message.content), ...(cachePoint && { cachePoint }) };
    if (message.role === 'tool') return { role: 'tool', toolCallId: message.tool_call_id, ...common };
    if (message.role === 'assistant') {
      const calls = (message.tool_calls ?? []).map((call) => ({
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
      }));
      return { role: 'assistant', ...common, ...(calls.length > 0 && { toolCalls: calls }) };
    }
    return { role: message.role === 'developer' ? 'system' : message.role, ...common };
  });
}

/** Bedrock takes at most four cache points a call. */
const MAX_CACHE_POINTS = 4;

/**
 * Where the model's prompt cache is used: the points the caller marked, else, automatically, after
 * the system prompt and after the tool definitions once what they hold reaches the model's minimum.
 */
function promptCachePoints(
  model: ResolvedModel<'chat'>,
  messages: readonly ChatMessage[],
  tools: readonly ToolDefinition[] | undefined,
): { messages: ChatMessage[]; cacheTools: boolean } {
  const marked = messages.filter((message) => message.cachePoint).length;
  if (!('promptCache' in model) || !model.promptCache) {
    return { messages: messages.map(({ cachePoint: _, ...message }) => message), cacheTools: false };
  }
  if (marked > MAX_CACHE_POINTS) {
    throw new PlatformError('invalid_request', `at most ${MAX_CACHE_POINTS} messages may carry cache_control`);
  }
  if (marked > 0) return { messages: [...messages], cacheTools: false };
  const { minPrefixTokens } = model.promptCache;
  const lastSystem = messages.findLastIndex((message) => message.role === 'system');
  const systemTokens = messages
    .filter((message) => message.role === 'system')
    .reduce((sum, message) => sum + countTokens(message.content), 0);
  const cacheSystem = lastSystem >= 0 && systemTokens >= minPrefixTokens;
  return {
    messages: messages.map((message, i) =>
      cacheSystem && i === lastSystem ? { ...message, cachePoint: true } : message,
    ),
    cacheTools: tools !== undefined && systemTokens + toolTokens({ tools }) >= minPrefixTokens,
  };
}

/** Every text of a conversation the model reads and PII redaction cleans: contents, then tool-call arguments. */
function textsOf(messages: readonly ChatMessage[]): string[] {
  return [
    ...messages.map((message) => message.content),
    ...messages.flatMap((message) => (message.toolCalls ?? []).map((call) => call.arguments)),
  ];
}

/** The conversation with its texts replaced, in the order `textsOf` gave them. */
function withTexts(messages: readonly ChatMessage[], texts: readonly string[]): ChatMessage[] {
  let next = messages.length;
  return messages.map((message, i) => ({
    ...message,
    content: texts[i],
    ...(message.toolCalls && { toolCalls: message.toolCalls.map((call) => ({ ...call, arguments: texts[next++] })) }),
  }));
}

/** A value put back into JSON text where its placeholder stood, inside a string. */
const jsonStringContent = (value: string) => JSON.stringify(value).slice(1, -1);

/** The most characters one message may hold (content and tool-call arguments): more than any catalog model reads. */
export const MAX_MESSAGE_CHARS = 400_000;
/** The most characters a call's conversation may hold, its session history and template included. */
export const MAX_CONVERSATION_CHARS = 1_000_000;

/**
 * Refuses a conversation past the caps before any work that grows with it (retrieval, PII
 * redaction, guardrail screening, the token estimate, the model call): a 400 naming the cap.
 */
function assertConversationSize(messages: readonly ChatMessage[]): void {
  let total = 0;
  for (const [index, message] of messages.entries()) {
    const size =
      message.content.length + (message.toolCalls ?? []).reduce((sum, call) => sum + call.arguments.length, 0);
    if (size > MAX_MESSAGE_CHARS) {
      throw new PlatformError(
        'invalid_request',
        `message ${index} of the conversation has ${size} characters: at most ${MAX_MESSAGE_CHARS} per message`,
      );
    }
    total += size;
  }
  if (total > MAX_CONVERSATION_CHARS) {
    throw new PlatformError(
      'invalid_request',
      `the conversation has ${total} characters (session history and template included): at most ${MAX_CONVERSATION_CHARS} per request`,
    );
  }
}

/** One target of a call's route, ready to try: its request to the provider and one try's estimate. */
interface ChatPlan {
  readonly target: RouteTarget;
  readonly generate: GenerateRequest;
  /** One try's estimate: what a stream (which never tries again) bills when it has no count. */
  readonly estimate: TokenUsage;
  /** Whether the provider applies the tier's guardrail within the call (Bedrock's models). */
  readonly native: boolean;
}

/** What a chat call needs once its request is read: its route's targets ready to try, the grounded messages, the estimate. */
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
  const route = routeFor(tenant.routing, deps.routing?.[tenant.tier], modelName);
  const targets = await routeTargets(deps, tenant, route, call.requestId);
  const own = toChatMessages(request.messages);
  const history = request.session_id ? await sessionHistory(deps, tenant, request.session_id) : [];
  const conversation = [...history, ...own];
  const asked = prompt && request.prompt ? promptedMessages(prompt, request.prompt, conversation) : conversation;
  checkToolTurns(asked);
  assertConversationSize(asked);
  // What each model decides (its output cap, tools) is checked per target: a fallback that cannot
  // serve the request is left out, and the first target's refusal is the caller's when none can.
  const requestedMaxTokens = request.max_completion_tokens ?? request.max_tokens ?? prompt?.max_tokens;
  const served = eachAccepted(targets, (target) => {
    const maxTokens = requestedMaxTokens ?? target.model.defaultMaxTokens;
    if (maxTokens > target.model.maxOutputTokens) {
      throw new PlatformError(
        'invalid_request',
        `max_tokens must be at most ${target.model.maxOutputTokens} for ${target.model.name}`,
      );
    }
    return { target, maxTokens, tooling: toolOptions(target.model, request) };
  });
  const question = asked.findLast((message) => message.role === 'user')?.content ?? '';
  if (request.retrieval && question.trim() === '') {
    throw new PlatformError('invalid_request', 'retrieval searches with the last user message: send one');
  }
  const passages = request.retrieval
    ? await retrievePassages(
        deps,
        tenant,
        { query: question, topK: request.retrieval.top_k, filter: request.retrieval.filter },
        { ...call, user: request.user },
      )
    : [];
  // Everything the model will read, the tenant's own passages, template variables, tool calls and
  // their results too, cleaned of PII.
  const grounded = groundedMessages(asked, passages);
  const piiPolicy = piiPolicyFor(deps, tenant);
  const redaction = redact(textsOf(grounded), piiPolicy);
  const cleaned = withTexts(grounded, redaction.texts);
  // Bedrock applies the tier's guardrail to the conversation's text within the call; other models,
  // and the tool calls and results Bedrock's guardrail does not read, are screened around it.
  const guardrail = deps.guardrails?.[tenant.tier];
  const plans = eachAccepted(served, ({ target, maxTokens, tooling }): ChatPlan => {
    const cached = promptCachePoints(target.model, cleaned, tooling.tools);
    const native = 'bedrockModelId' in target.model;
    const generate: GenerateRequest = {
      modelId: target.modelId,
      messages: cached.messages,
      maxTokens,
      temperature: request.temperature,
      topP: request.top_p,
      stop: stopSequences(request.stop),
      ...tooling,
      ...(cached.cacheTools && { cacheTools: true }),
      ...(guardrail && native && { guardrail }),
      signal: call.signal,
    };
    const inputTokens = chatInputTokens(cached.messages) + toolTokens(tooling);
    return { target, generate, estimate: { inputTokens, outputTokens: maxTokens }, native };
  });
  const [first] = plans;
  if (Object.keys(redaction.counts).length > 0) audit.redacted = redaction.counts;
  if (tenant.auditPrompts) audit.prompt = promptForAudit(first.generate.messages);
  const restore = piiPolicy.restore ? redaction : undefined;
  const { contentGuardrail } = deps;
  const screen =
    guardrail && contentGuardrail
      ? async (source: 'INPUT' | 'OUTPUT', texts: readonly string[]) => {
          const fired = texts.some((text) => text !== '') && (await contentGuardrail.assess(guardrail, source, texts));
          if (fired) throw blockedByGuardrail(fired);
        }
      : undefined;
  const toolTexts = (list: readonly ChatMessage[]) => [
    ...list.filter((message) => message.role === 'tool').map((message) => message.content),
    ...list.flatMap((message) => (message.toolCalls ?? []).map((toolCall) => toolCall.arguments)),
  ];
  const structured = first.generate.responseFormat !== undefined;
  const citations = request.retrieval && passages.map((passage, i) => passageView(passage, i));
  return {
    route,
    /** The route's targets that can serve the request, in the order the call tries them. */
    plans,
    /** The reservation's split: the largest one try on any target. */
    estimate: {
      inputTokens: Math.max(...plans.map((plan) => plan.estimate.inputTokens)),
      outputTokens: Math.max(...plans.map((plan) => plan.estimate.outputTokens)),
    },
    /** A buffered call with a format may try twice on a target inside one reservation: room for both. */
    tries: structured ? 2 : 1,
    citations,
    /** Set when the tenant's answers get the redacted values back. */
    restore,
    /**
     * Screens the input where a provider does not, once the call is admitted (ApplyGuardrail is paid
     * per call): all of it when some target's provider does not screen it within the call.
     */
    screenInput: async () =>
      screen?.('INPUT', plans.every((plan) => plan.native) ? toolTexts(cleaned) : textsOf(cleaned)),
    /**
     * Whether the answer's text is screened here, after generation (the GPU endpoint's, or a
     * structured answer on Bedrock): a stream then holds each window of text back until screened.
     */
    screensText: (plan: ChatPlan) => screen !== undefined && (!plan.native || structured),
    /** Checks an answer against the tier's guardrail where the provider did not (throws `content_blocked`). */
    screenOutput: (plan: ChatPlan, text: string, toolCalls: readonly ToolCall[]) =>
      // On Bedrock a structured answer is a tool's input too, which its guardrail does not read.
      screen?.('OUTPUT', [
        ...(plan.native && !structured ? [] : [text]),
        ...toolCalls.map((toolCall) => toolCall.arguments),
      ]),
    /** The template, as the cache keys on it. */
    promptRef: prompt ? { id: prompt.name, version: prompt.version } : undefined,
    /** Adds this call's turn to its session, if it has one: what the caller said and was answered. */
    remember: async (answer: string, toolCalls: readonly ToolCall[]) => {
      if (!request.session_id) return;
      const said = own.filter((message) => message.role !== 'system').map(({ cachePoint: _, ...message }) => message);
      const reply: ChatMessage = { role: 'assistant', content: answer, ...(toolCalls.length > 0 && { toolCalls }) };
      await recordTurn(deps, tenant, request.session_id, [...said, reply]);
    },
  };
}

/** `make` of each item it accepts, in order; when it accepts none, its refusal of the first. A bug is no refusal: thrown. */
function eachAccepted<T, R>(items: readonly T[], make: (item: T) => R): R[] {
  const made: R[] = [];
  let firstRefusal: unknown;
  for (const [index, item] of items.entries()) {
    try {
      made.push(make(item));
    } catch (error) {
      if (!(error instanceof PlatformError)) throw error;
      if (index === 0) firstRefusal = error;
    }
  }
  if (made.length === 0) throw firstRefusal;
  return made;
}

/** A window of streamed text to screen: a sentence ended past 200 characters, or 1,000 characters. */
function screeningWindowComplete(text: string): boolean {
  return text.length >= 1000 || (text.length >= 200 && /[.!?]["')\]]?\s*$/.test(text));
}

/** The audit record names the tools an answer called (their arguments are the tenant's data). */
function noteTools(audit: AuditDetail, toolCalls: readonly ToolCall[] | undefined): void {
  if (toolCalls && toolCalls.length > 0) audit.tools = toolCalls.map((toolCall) => toolCall.name);
}

/** Tool calls with the redacted values back in their arguments, where the tier asks. */
function restoredCalls(toolCalls: readonly ToolCall[], restore: Redaction | undefined): ToolCall[] {
  return toolCalls.map((toolCall) =>
    restore ? { ...toolCall, arguments: restore.restore(toolCall.arguments, jsonStringContent) } : toolCall,
  );
}

/**
 * A buffered generation with its requested format held to: an answer that is not JSON of the
 * format (or, strict, not valid against its schema) is tried once more, then refused as the
 * provider's failure (502), billed what both tries used. Tool calls are answers of their own.
 * A second try that fails is billed with the first as it ran: `estimate` (one try's) when the
 * second may have run too.
 */
async function generateInFormat(
  provider: ModelProvider,
  tenant: TenantContext,
  request: GenerateRequest,
  estimate: TokenUsage,
): Promise<GenerateResult> {
  const format = request.responseFormat;
  const first = await provider.generate(tenant, request);
  const problemOf = async (result: GenerateResult) =>
    format && !result.toolCalls && !result.blocked && result.finishReason !== 'length'
      ? formatProblem(format, result.text)
      : undefined;
  if (!(await problemOf(first))) return first;
  let second: GenerateResult;
  try {
    second = await provider.generate(tenant, request);
  } catch (error) {
    const failure =
      error instanceof PlatformError ? error : new PlatformError('upstream_error', 'the model call failed');
    throw new FailedAfterUse(failure, modelMayHaveRun(error) ? bothTries(first, estimate) : first);
  }
  const problem = await problemOf(second);
  const usage = bothTries(first, second);
  if (problem) {
    throw new FailedAfterUse(
      new PlatformError('upstream_error', `the model's answer broke response_format: ${problem}`),
      usage,
    );
  }
  return { ...second, ...usage };
}

/** A one-try estimate for `tries` tries. */
function timesTries(usage: TokenUsage, tries: number): TokenUsage {
  return { inputTokens: usage.inputTokens * tries, outputTokens: usage.outputTokens * tries };
}

/** What two tries of a call used together. */
function bothTries(first: TokenUsage, second: TokenUsage): TokenUsage {
  return {
    inputTokens: first.inputTokens + second.inputTokens,
    outputTokens: first.outputTokens + second.outputTokens,
    cacheReadInputTokens: (first.cacheReadInputTokens ?? 0) + (second.cacheReadInputTokens ?? 0),
    cacheWriteInputTokens: (first.cacheWriteInputTokens ?? 0) + (second.cacheWriteInputTokens ?? 0),
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
  const {
    route,
    plans,
    estimate: oneTry,
    tries,
    citations,
    restore,
    remember,
    promptRef,
    screenInput,
    screenOutput,
  } = await prepareChat(deps, tenant, request, call, audit);
  const estimate = timesTries(oneTry, tries);
  const nowMs = deps.now();
  const answered = async (
    model: string,
    text: string,
    finishReason: string,
    usage: TokenUsage,
    toolCalls: readonly ToolCall[] = [],
  ): Promise<ChatCompletion> => {
    const answer = restore ? restore.restore(text) : text;
    const calls = restoredCalls(toolCalls, restore);
    await remember(answer, calls);
    return {
      id: `chatcmpl-${requestId}`,
      object: 'chat.completion',
      created: Math.floor(nowMs / 1000),
      model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: calls.length > 0 && answer === '' ? null : answer,
            refusal: null,
            ...(calls.length > 0 && { tool_calls: calls.map(openAiToolCall) }),
          },
          finish_reason: finishReason,
        },
      ],
      usage: usageView(usage),
      ...(citations && { citations }),
    };
  };

  const [first] = plans;
  const key = cacheable(tenant, request, options.noStore === true)
    ? cacheKey({ ...first.generate, prompt: promptRef })
    : undefined;
  if (key) {
    const hit = await deps.cache.get(tenant, key, nowMs);
    audit.cache = hit ? 'hit' : 'miss';
    if (hit) {
      noteTools(audit, hit.toolCalls);
      const costNanoUsd = deps.cacheHitNanoUsd ?? 0;
      const { auditAtSettle } = call;
      const model = first.target.model.name;
      await meterCacheHit(deps, tenant, { requestId, model, costNanoUsd, nowMs, auditAtSettle, user: request.user });
      return answered(model, hit.text, hit.finishReason, { inputTokens: 0, outputTokens: 0 }, hit.toolCalls);
    }
  }
  const meter = await admitModelCall(
    deps,
    tenant,
    {
      ...call,
      model: first.target.model,
      targets: plans.map((plan) => plan.target.model),
      estimate,
      nowMs,
      user: request.user,
    },
    screenInput,
  );
  const attempts: Attempt[] = [];
  let served: { plan: ChatPlan; result: GenerateResult };
  try {
    served = await tryRoute(
      deps,
      route,
      plans,
      call,
      meter,
      attempts,
      (plan, signal) => generateInFormat(plan.target.provider, tenant, { ...plan.generate, signal }, plan.estimate),
      // The model's own filter stopped the answer (not the tier's guardrail, whose refusal is the caller's).
      (result) => (result.finishReason === 'content_filter' && !result.blocked ? result : undefined),
    );
  } finally {
    audit.attempts = attemptsText(attempts);
  }
  const { plan, result } = served;
  // Before the settle, which writes the audit record.
  noteTools(audit, result.toolCalls);
  await meter.finished(result, plan.target.model);
  // Billed as it ran; the caller gets the refusal, and nothing is cached.
  if (result.blocked) throw blockedByGuardrail(result.blocked);
  await screenOutput(plan, result.text, result.toolCalls ?? []);
  // Only the first target's answer answers the cached request (the key names its model).
  if (key && plan === first) {
    const expiresAt = Math.floor(nowMs / 1000) + (tenant.cacheTtlSeconds ?? 0);
    // The model's own text (placeholders of redacted PII included): restored per request on a hit.
    // A cache write that fails makes the next call a miss, never this answer a failure.
    const answer = {
      text: result.text,
      finishReason: result.finishReason,
      ...(result.toolCalls && { toolCalls: result.toolCalls }),
    };
    await deps.cache.put(tenant, key, answer, expiresAt).catch(() => undefined);
  }
  return answered(plan.target.model.name, result.text, result.finishReason, result, result.toolCalls);
}

/** A streamed tool call's piece: its id and name first, then pieces of its arguments. */
interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

/** OpenAI's `chat.completion.chunk`: one delta of a streamed answer; the last holds `usage` when asked for. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string; tool_calls?: ToolCallDelta[] };
    finish_reason: string | null;
  }[];
  usage?: UsageView | null;
  citations?: ChatCompletion['citations'];
}

/**
 * Opens a target's stream and waits for its first event, so a failure to start (throttled, say) is
 * the attempt's, and the route may move on; the stream then goes on from that event.
 */
async function openStream(
  tenant: TenantContext,
  plan: ChatPlan,
  signal: AbortSignal | undefined,
): Promise<AsyncIterable<ModelStreamEvent>> {
  const events = plan.target.provider.stream(tenant, { ...plan.generate, signal })[Symbol.asyncIterator]();
  const first = await events.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* { [Symbol.asyncIterator]: () => events };
  })();
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
 * midway (the same, then a `StreamFailure` for the caller). Billed once, never zero times. A
 * requested format is checked when the answer is whole: what was sent cannot be taken back, so a
 * broken one ends the stream with an error instead of being tried again.
 */
export async function* streamChat(
  deps: ChatDeps,
  tenant: TenantContext,
  request: ChatRequest,
  call: ModelCall,
  options: ChatOptions = {},
): AsyncGenerator<ChatCompletionChunk | StreamFailure> {
  const audit = options.audit ?? {};
  const { route, plans, estimate, citations, restore, remember, screensText, screenInput, screenOutput } =
    await prepareChat(deps, tenant, request, call, audit);
  const restorer = restore?.restorer();
  const nowMs = deps.now();
  const [firstPlan] = plans;
  const meter = await admitModelCall(
    deps,
    tenant,
    {
      requestId: call.requestId,
      model: firstPlan.target.model,
      targets: plans.map((plan) => plan.target.model),
      estimate,
      nowMs,
      signal: call.signal,
      auditAtSettle: call.auditAtSettle,
      user: request.user,
    },
    screenInput,
  );
  // A stream moves on to the route's next target only before its first event: an attempt is its opening.
  const attempts: Attempt[] = [];
  let opened: { plan: ChatPlan; result: AsyncIterable<ModelStreamEvent> };
  try {
    const open = (plan: ChatPlan, signal: AbortSignal | undefined) => openStream(tenant, plan, signal);
    opened = await tryRoute(deps, route, plans, call, meter, attempts, open);
  } finally {
    audit.attempts = attemptsText(attempts);
  }
  const { plan } = opened;
  const model = plan.target.model;
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
  /** The tool calls as generated, and their arguments' restorers (the values back, JSON-escaped). */
  const toolCalls: ToolCall[] = [];
  const argumentRestorers: ReturnType<Redaction['restorer']>[] = [];
  let sentAny = false;
  /** Where text is screened after generation: what was generated but not screened yet, and tool-call chunks held till the end. */
  let unscreened = '';
  const heldChunks: ChatCompletionChunk['choices'][number]['delta'][] = [];
  let blocked: PlatformError | undefined;
  let end: Extract<ModelStreamEvent, { type: 'end' }> | undefined;
  let failure: PlatformError | undefined;
  /** The provider's count if it gave one; else the input estimate and what was generated, counted. */
  const used = (): TokenUsage => ({
    inputTokens: end?.inputTokens ?? plan.estimate.inputTokens,
    outputTokens:
      end?.outputTokens ??
      countTokens(generated) + toolCalls.reduce((sum, c) => sum + countTokens(`${c.name} ${c.arguments}`), 0),
    ...(end?.cacheReadInputTokens && { cacheReadInputTokens: end.cacheReadInputTokens }),
    ...(end?.cacheWriteInputTokens && { cacheWriteInputTokens: end.cacheWriteInputTokens }),
  });
  /** The first chunk says the role, and carries the citations. */
  const first = (delta: ChatCompletionChunk['choices'][number]['delta']) => {
    if (sentAny) return chunk(delta);
    sentAny = true;
    return { ...chunk({ role: 'assistant', ...delta }), ...(citations && { citations }) };
  };
  try {
    for await (const event of opened.result) {
      if (event.type === 'end') {
        end = event;
      } else if (event.type === 'text') {
        generated += event.text;
        unscreened += event.text;
        if (screensText(plan)) {
          // Nothing reaches the caller before the guardrail has screened it: a window at a time.
          if (!screeningWindowComplete(unscreened)) continue;
          try {
            await screenOutput(plan, unscreened, []);
          } catch (error) {
            blocked = error instanceof PlatformError ? error : new PlatformError('upstream_error', 'screening failed');
            break;
          }
        }
        const text = restorer ? restorer.push(unscreened) : unscreened;
        unscreened = '';
        delivered += text;
        yield first({ content: text });
      } else if (event.type === 'tool_call') {
        toolCalls[event.index] = { id: event.id, name: event.name, arguments: '' };
        noteTools(audit, toolCalls.filter(Boolean));
        if (restore) argumentRestorers[event.index] = restore.restorer(jsonStringContent);
        const delta = {
          tool_calls: [
            {
              index: event.index,
              id: event.id,
              type: 'function' as const,
              function: { name: event.name, arguments: '' },
            },
          ],
        };
        if (screensText(plan)) heldChunks.push(delta);
        else yield first(delta);
      } else if (toolCalls[event.index]) {
        const toolCall = toolCalls[event.index];
        toolCalls[event.index] = { ...toolCall, arguments: toolCall.arguments + event.arguments };
        const piece = argumentRestorers[event.index]?.push(event.arguments) ?? event.arguments;
        const delta = { tool_calls: [{ index: event.index, function: { arguments: piece } }] };
        if (screensText(plan)) heldChunks.push(delta);
        else yield first(delta);
      }
    }
  } catch (error) {
    // Nothing sent yet: an ordinary error answer, the call ended as any failed call is.
    if (!sentAny) {
      await meter.failed(error, model, plan.estimate);
      throw error;
    }
    failure = error instanceof PlatformError ? error : new PlatformError('upstream_error', 'the model stream broke');
  } finally {
    // Also when the caller stops the iteration (it hung up, or the deadline passed): what was generated.
    await meter.finished(used(), model);
  }
  const usage = used();
  // Refused by the guardrail before anything was sent: an ordinary 400, billed what it generated.
  if (blocked && !sentAny) throw blocked;
  if (failure ?? blocked) {
    yield { failure: (failure ?? blocked) as PlatformError };
    return;
  }
  const calls = restoredCalls(toolCalls.filter(Boolean), restore);
  try {
    if (end?.blocked) throw blockedByGuardrail(end.blocked);
    // The last window, and the tool calls' arguments (which Bedrock's guardrail does not read either).
    await screenOutput(plan, screensText(plan) ? unscreened : generated, toolCalls);
    const problem =
      plan.generate.responseFormat && calls.length === 0 && end?.finishReason !== 'length'
        ? await formatProblem(plan.generate.responseFormat, generated)
        : undefined;
    if (problem) throw new PlatformError('upstream_error', `the model's answer broke response_format: ${problem}`);
  } catch (error) {
    if (!sentAny && error instanceof PlatformError) throw error;
    yield { failure: error instanceof PlatformError ? error : new PlatformError('upstream_error', 'screening failed') };
    return;
  }
  const rest = (restorer ? restorer.push(unscreened) : unscreened) + (restorer?.flush() ?? '');
  if (rest) {
    delivered += rest;
    yield first({ content: rest });
  }
  for (const delta of heldChunks) yield first(delta);
  for (const [index, argumentRestorer] of argumentRestorers.entries()) {
    const piece = argumentRestorer?.flush();
    if (piece) yield first({ tool_calls: [{ index, function: { arguments: piece } }] });
  }
  try {
    await remember(delivered, calls);
  } catch (error) {
    yield {
      failure:
        error instanceof PlatformError ? error : new PlatformError('upstream_error', 'the session was not saved'),
    };
    return;
  }
  // An answer with no text and no calls still says its role first, as the SDKs' stream helpers need.
  if (!sentAny) yield first({ content: '' });
  yield chunk({}, end?.finishReason ?? 'stop');
  if (request.stream_options?.include_usage) {
    yield { ...chunk({}), choices: [], usage: usageView(usage) };
  }
}

/**
 * A chat stream recoded as another API's events: its first chunk is read before `recode` yields
 * anything (so a refusal stays an ordinary error answer), and the chat stream is stopped however
 * the caller ends the recoded one (a hang-up at any event: the stream settles what it made).
 */
export async function* recodeStream<E>(
  chunks: AsyncGenerator<ChatCompletionChunk | StreamFailure>,
  recode: (stream: AsyncIterable<ChatCompletionChunk | StreamFailure>) => AsyncGenerator<E | StreamFailure>,
): AsyncGenerator<E | StreamFailure> {
  const first = await chunks.next();
  async function* replayed() {
    if (first.done) return;
    yield first.value;
    yield* chunks;
  }
  try {
    yield* recode(replayed());
  } finally {
    await chunks.return(undefined);
  }
}
