import type { ModelCatalog } from '../../contract/catalog';
import type { GuardrailRef } from '../../contract/environment';
import { errorBody, statusOf } from '../../contract/errors';
import type { RoutingPolicy } from '../../contract/routing';
import type { PiiPolicy } from '../../contract/safety';
import type { Tier } from '../../contract/tenancy';
import type { BatchLineResult } from './batches';
import { costNanoUsd, type ResolvedModel } from './catalog';
import { type ChatRequest, chatRequestSchema, stopSequences, toChatMessages } from './chat';
import { embeddingsRequestSchema, encodeEmbedding } from './embeddings';
import { PlatformError } from './errors';
import type { BatchLine } from './files';
import { piiPolicyFor, redact } from './pii';
import type { ContentGuardrail } from './ports';
import { routeFor } from './routing';
import type { TenantContext } from './tenant';

/**
 * Bedrock's least records a batch inference job takes (its default quota): a smaller batch runs on
 * demand, through the same metered core, at the same batch prices.
 */
export const BEDROCK_BATCH_MIN_RECORDS = 100;

/** The `InvokeModel` bodies a job's records can hold: Nova's messages, Titan's text embeddings. */
type JobFormat = 'nova' | 'titan-embed';

/** The endpoint whose lines each format's records answer. */
const FORMAT_ENDPOINT: Readonly<Record<JobFormat, BatchLine['url']>> = {
  nova: '/v1/chat/completions',
  'titan-embed': '/v1/embeddings',
};

/** A batch that runs as one Bedrock job: its model and the body format of its records. */
export interface JobPlan {
  readonly model: ResolvedModel & { readonly bedrockModelId: string };
  readonly format: JobFormat;
}

/** What reading a batch's lines as job records needs: the catalog at batch prices, the tier's safety. */
export interface JobCodecDeps {
  /** At batch prices (`atBatchPrices`): what each record is billed. */
  readonly catalog: ModelCatalog;
  readonly piiRedaction?: Readonly<Record<Tier, PiiPolicy>>;
  readonly guardrails?: Readonly<Record<Tier, GuardrailRef>>;
  readonly contentGuardrail?: ContentGuardrail;
  /** The tiers' routes: a line naming a route with fallbacks runs on demand, where the route runs. */
  readonly routing?: Readonly<Record<Tier, RoutingPolicy>>;
}

function formatOf(model: ResolvedModel): JobFormat | undefined {
  if (!('bedrockModelId' in model) || !('batchInputUsdPerMillionTokens' in model)) return undefined;
  if (model.batchInputUsdPerMillionTokens === undefined) return undefined;
  if (model.kind === 'chat' && model.bedrockModelId.startsWith('amazon.nova-')) return 'nova';
  if (model.kind === 'embedding' && model.bedrockModelId.startsWith('amazon.titan-embed-text-v2')) return 'titan-embed';
  return undefined;
}

/** The plan of a batch whose job runs `name` (chosen at its start). */
export function planFor(catalog: ModelCatalog, name: string): JobPlan {
  const model = Object.hasOwn(catalog, name) ? ({ name, ...catalog[name] } as ResolvedModel) : undefined;
  const format = model && formatOf(model);
  if (!model || !format) throw new Error(`the catalog's ${name} runs no Bedrock batch job`);
  return { model: model as JobPlan['model'], format };
}

/** A chat line a job's record can hold: text messages and sampling only (no tools, formats, sessions, templates). */
const PLAIN_CHAT_FIELDS = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'n',
  'user',
  'metadata',
  'stream',
]);

/**
 * The job a batch runs as, if it can: every line for one model Bedrock runs in batch (catalog batch
 * prices, a record format known here), each plain (a line that would fail anyway fails alike),
 * at least Bedrock's least records, and the caller's route for that model its own (no fallbacks).
 */
export function jobPlan(deps: JobCodecDeps, tenant: TenantContext, lines: readonly BatchLine[]): JobPlan | undefined {
  if (lines.length < BEDROCK_BATCH_MIN_RECORDS) return undefined;
  const names = new Set(lines.map((line) => line.body.model));
  const [name] = names;
  if (names.size !== 1 || typeof name !== 'string' || !Object.hasOwn(deps.catalog, name)) return undefined;
  // Routed anywhere but to the model itself (a fallback, another model): the route runs on demand.
  const route = routeFor(tenant.routing, deps.routing?.[tenant.tier], name);
  if (route.targets.length !== 1 || route.targets[0].model !== name) return undefined;
  const model = { name, ...deps.catalog[name] } as ResolvedModel;
  const format = formatOf(model);
  // Lines of the other endpoint fail on demand, unbilled; as a job, the model would answer them.
  if (!format || lines[0].url !== FORMAT_ENDPOINT[format]) return undefined;
  const plain = lines.every((line) =>
    format === 'nova'
      ? Object.keys(line.body).every((field) => PLAIN_CHAT_FIELDS.has(field)) &&
        line.body.stream !== true &&
        (line.body.n === undefined || line.body.n === 1)
      : typeof line.body.input === 'string' && line.body.dimensions === undefined,
  );
  return plain ? { model: model as JobPlan['model'], format } : undefined;
}

/** A line read into a job's record, or the line's failure (a bad body, a guardrail's refusal): unbilled either way. */
export type JobRecordOutcome = { readonly record: string } | { readonly failure: PlatformError };

/**
 * The line's job record (`{"recordId", "modelInput"}`): its text cleaned of PII as the tier's policy
 * says, and a chat's screened by the tier's guardrail (Bedrock applies none to a job), as the live route does.
 */
export async function jobRecord(
  deps: JobCodecDeps,
  tenant: TenantContext,
  plan: JobPlan,
  line: BatchLine,
  index: number,
): Promise<JobRecordOutcome> {
  try {
    if (plan.format === 'titan-embed') {
      const request = embeddingsRequestSchema.parse(line.body);
      // As the live route embeds: cleaned of PII, with no guardrail (an embedding is no answer to screen).
      const [inputText] = redact([request.input as string], piiPolicyFor(deps, tenant)).texts;
      if (inputText.length > ('maxInputChars' in plan.model ? plan.model.maxInputChars : 0)) {
        throw new PlatformError('invalid_request', `input may exceed the limits of ${plan.model.name}: split it`);
      }
      const modelInput = { inputText, dimensions: 'dimensions' in plan.model ? plan.model.dimensions : 1024 };
      return { record: JSON.stringify({ recordId: String(index), modelInput }) };
    }
    const request = chatRequestSchema.parse(line.body);
    const messages = toChatMessages(request.messages);
    const texts = await screened(
      deps,
      tenant,
      messages.map((message) => message.content),
    );
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? chatLimit(plan, 'defaultMaxTokens');
    if (maxTokens > chatLimit(plan, 'maxOutputTokens')) {
      throw new PlatformError(
        'invalid_request',
        `max_tokens must be at most ${chatLimit(plan, 'maxOutputTokens')} for ${plan.model.name}`,
      );
    }
    const turns = messages.map((message, at) => ({ role: message.role, text: texts[at] }));
    const modelInput = {
      schemaVersion: 'messages-v1',
      ...(turns.some((turn) => turn.role === 'system') && {
        system: turns.filter((turn) => turn.role === 'system').map((turn) => ({ text: turn.text })),
      }),
      messages: turns
        .filter((turn) => turn.role !== 'system')
        .map((turn) => ({ role: turn.role, content: [{ text: turn.text }] })),
      inferenceConfig: inferenceConfig(request, maxTokens),
    };
    return { record: JSON.stringify({ recordId: String(index), modelInput }) };
  } catch (error) {
    return { failure: asPlatformError(error) };
  }
}

function chatLimit(plan: JobPlan, limit: 'defaultMaxTokens' | 'maxOutputTokens'): number {
  return plan.model.kind === 'chat' ? plan.model[limit] : 0;
}

function inferenceConfig(request: ChatRequest, maxTokens: number) {
  const stop = stopSequences(request.stop);
  return {
    maxTokens,
    // OpenAI's temperature runs to 2; Nova takes 0 to 1 (the live route's Converse call holds it there too).
    ...(request.temperature !== undefined &&
      request.temperature !== null && { temperature: Math.min(request.temperature, 1) }),
    ...(request.top_p !== undefined && request.top_p !== null && { topP: request.top_p }),
    ...(stop && { stopSequences: stop }),
  };
}

/** Texts cleaned of PII and screened on input by the tier's guardrail: a refusal is the line's 400. */
async function screened(deps: JobCodecDeps, tenant: TenantContext, texts: readonly string[]): Promise<string[]> {
  const cleaned = redact(texts, piiPolicyFor(deps, tenant)).texts;
  await screen(deps, tenant, 'INPUT', cleaned);
  return [...cleaned];
}

async function screen(deps: JobCodecDeps, tenant: TenantContext, source: 'INPUT' | 'OUTPUT', texts: readonly string[]) {
  const guardrail = deps.guardrails?.[tenant.tier];
  if (!guardrail || !deps.contentGuardrail || texts.every((text) => text === '')) return;
  const fired = await deps.contentGuardrail.assess(guardrail, source, texts);
  if (fired) throw new PlatformError('content_blocked', `blocked by the content policy: ${fired.join(', ')}`);
}

function asPlatformError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  const issue = (error as { issues?: { path: PropertyKey[]; message: string }[] }).issues?.[0];
  if (issue) {
    return new PlatformError(
      'invalid_request',
      `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
    );
  }
  throw error;
}

/** One record of a job's output, as Bedrock writes it. */
interface JobOutputRecord {
  readonly recordId: string;
  readonly modelOutput?: {
    readonly output?: { readonly message?: { readonly content?: readonly { readonly text?: string }[] } };
    readonly stopReason?: string;
    readonly usage?: { readonly inputTokens?: number; readonly outputTokens?: number };
    readonly embedding?: readonly number[];
    readonly inputTextTokenCount?: number;
  };
  readonly error?: { readonly errorCode?: number; readonly errorMessage?: string };
}

/** The line index a record of a job's output answers; undefined when it names none. */
export function recordLine(row: string): number | undefined {
  try {
    const { recordId } = JSON.parse(row) as JobOutputRecord;
    return typeof recordId === 'string' && /^\d{1,6}$/.test(recordId) ? Number(recordId) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A record of the job's output as the line's OpenAI output line, and what it used at batch prices
 * (a record the model ran is billed, its answer refused by the tier's guardrail too, as live).
 */
export async function jobOutputLine(
  deps: JobCodecDeps,
  tenant: TenantContext,
  plan: JobPlan,
  line: BatchLine,
  row: string,
  answer: { readonly requestId: string; readonly created: number },
  outputLine: (response: unknown) => string,
): Promise<BatchLineResult> {
  const record = JSON.parse(row) as JobOutputRecord;
  const failed = (
    status: number,
    code: Parameters<typeof errorBody>[0],
    message: string,
    used: BatchLineResult['used'],
  ) =>
    ({
      output: outputLine({ status_code: status, request_id: answer.requestId, body: errorBody(code, message) }),
      ok: false,
      retry: false,
      used,
    }) satisfies BatchLineResult;
  const output = record.modelOutput;
  if (!output) {
    const status = record.error?.errorCode ?? 500;
    const code = status >= 500 ? 'upstream_error' : 'invalid_request';
    return failed(statusOf(code), code, record.error?.errorMessage ?? 'the model did not answer this record', []);
  }
  if (plan.format === 'titan-embed') {
    const inputTokens = output.inputTextTokenCount ?? 0;
    const used = [usedBy(plan, inputTokens, 0)];
    const format = line.body.encoding_format === 'base64' ? 'base64' : 'float';
    const body = {
      object: 'list',
      model: plan.model.name,
      data: [{ object: 'embedding', index: 0, embedding: encodeEmbedding(output.embedding ?? [], format) }],
      usage: { prompt_tokens: inputTokens, total_tokens: inputTokens },
    };
    return {
      output: outputLine({ status_code: 200, request_id: answer.requestId, body }),
      ok: true,
      retry: false,
      used,
    };
  }
  const inputTokens = output.usage?.inputTokens ?? 0;
  const outputTokens = output.usage?.outputTokens ?? 0;
  const used = [usedBy(plan, inputTokens, outputTokens)];
  const text = (output.output?.message?.content ?? []).map((block) => block.text ?? '').join('');
  try {
    await screen(deps, tenant, 'OUTPUT', [text]);
  } catch (error) {
    const refusal = asPlatformError(error);
    return failed(refusal.status, refusal.code, refusal.message, used);
  }
  // The record was read with this redaction (it is deterministic): its placeholders stand for the line's values.
  const policy = piiPolicyFor(deps, tenant);
  const content = policy.restore
    ? redact(
        toChatMessages(chatRequestSchema.parse(line.body).messages).map((message) => message.content),
        policy,
      ).restore(text)
    : text;
  const body = {
    id: `chatcmpl-${answer.requestId}`,
    object: 'chat.completion',
    created: answer.created,
    model: plan.model.name,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        finish_reason: output.stopReason === 'max_tokens' ? 'length' : 'stop',
      },
    ],
    usage: {
      prompt_tokens: inputTokens,
      completion_tokens: outputTokens,
      total_tokens: inputTokens + outputTokens,
      prompt_tokens_details: { cached_tokens: 0 },
    },
  };
  return { output: outputLine({ status_code: 200, request_id: answer.requestId, body }), ok: true, retry: false, used };
}

function usedBy(plan: JobPlan, inputTokens: number, outputTokens: number) {
  return {
    model: plan.model.name,
    requests: 1,
    inputTokens,
    outputTokens,
    costNanoUsd: costNanoUsd(plan.model, inputTokens, outputTokens),
  };
}
