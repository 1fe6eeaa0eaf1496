import type { GuardrailRef } from '../../contract/environment';
import type { BudgetThresholdDetail } from '../../contract/events';
import type { ScopeLimits, TenantLimits, Tier } from '../../contract/tenancy';
import type { AdapterRecord } from './adapter-record';
import type { AuditEntry } from './audit';
import type { ItemKey, SiloWrite } from './catch-up';
import type { Estimate } from './limits';
import type { PromptRecord } from './prompt-record';
import type { TenantContext, TenantRecord } from './tenant';

/** A tool the model called: OpenAI's `tool_calls` entry, provider-neutral. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON text as the model gave it: handed back unchanged even when it does not parse. */
  readonly arguments: string;
}

/** A chat message as the model port takes it: roles, plain text, and the tool turns of an agent loop. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  /** An assistant turn's tool calls. */
  readonly toolCalls?: readonly ToolCall[];
  /** A `tool` turn: the call it answers. */
  readonly toolCallId?: string;
  /** Everything up to and including this message is a prompt-cache prefix (a provider cache point after it). */
  readonly cachePoint?: boolean;
}

/** A function the model may call: OpenAI's function tool. */
export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments (an object schema). */
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly strict?: boolean;
}

/** `auto`: the model decides; `none`: no call; `required`: at least one call; `{ name }`: that tool. */
export type ToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

/** The answer must be JSON: any object, or one valid against a schema. */
export type ResponseFormat =
  | { readonly type: 'json_object' }
  | {
      readonly type: 'json_schema';
      readonly name: string;
      readonly description?: string;
      readonly schema: Readonly<Record<string, unknown>>;
      readonly strict?: boolean;
    };

export interface GenerateRequest {
  /** The provider's model id (from the catalog), never the public name. */
  readonly modelId: string;
  readonly messages: readonly ChatMessage[];
  readonly maxTokens: number;
  readonly temperature?: number;
  readonly topP?: number;
  /** Generation stops before any of these. */
  readonly stop?: readonly string[];
  readonly tools?: readonly ToolDefinition[];
  readonly toolChoice?: ToolChoice;
  /** `false`: at most one tool call an answer. @default true */
  readonly parallelToolCalls?: boolean;
  /** The answer's text must be JSON of this format. */
  readonly responseFormat?: ResponseFormat;
  /** The tool definitions are a prompt-cache prefix (with the system messages before them). */
  readonly cacheTools?: boolean;
  /** The tier's guardrail, applied to the input and the output. */
  readonly guardrail?: GuardrailRef;
  /** Aborts the call; the provider then throws `upstream_timeout`. */
  readonly signal?: AbortSignal;
}

/** Input tokens by how the provider's prompt cache priced them; each part of the call's input tokens. */
export interface PromptCacheUsage {
  /** Read from the prompt cache. */
  readonly cacheReadInputTokens?: number;
  /** Written to the prompt cache. */
  readonly cacheWriteInputTokens?: number;
}

export interface GenerateResult extends PromptCacheUsage {
  readonly text: string;
  readonly finishReason: 'stop' | 'length' | 'content_filter' | 'tool_calls';
  /** Every input token, cached or not. */
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly toolCalls?: readonly ToolCall[];
  /** The guardrail intervened: the policies that fired (`topic:<name>`, `content:PROMPT_ATTACK`...). */
  readonly blocked?: readonly string[];
}

/**
 * A streamed generation: text and tool calls as they come (a call's id and name first, then pieces
 * of its arguments), then how it ended and, if the provider says, what it used.
 */
export type ModelStreamEvent =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'tool_call'; readonly index: number; readonly id: string; readonly name: string }
  | { readonly type: 'tool_arguments'; readonly index: number; readonly arguments: string }
  | ({
      readonly type: 'end';
      readonly finishReason: GenerateResult['finishReason'];
      readonly inputTokens?: number;
      readonly outputTokens?: number;
      readonly blocked?: readonly string[];
    } & PromptCacheUsage);

export interface ModelProvider {
  generate(tenant: TenantContext, request: GenerateRequest): Promise<GenerateResult>;
  /** The same call, streamed; stopping the iteration (or the signal) stops the generation. */
  stream(tenant: TenantContext, request: GenerateRequest): AsyncIterable<ModelStreamEvent>;
}

/** A file a tenant uploaded (OpenAI's `file` object): what `/v1/files` lists and batches read. */
export interface StoredFile {
  /** `file-<hex>`: the platform's own, never the caller's. */
  readonly id: string;
  readonly filename: string;
  /** `batch` (input lines of a batch) or `batch_output` (a batch's output and error lines). */
  readonly purpose: 'batch' | 'batch_output';
  readonly bytes: number;
  /** Epoch seconds. */
  readonly createdAt: number;
}

/**
 * The tenant's files, each under its own prefix (`<tenantId>/`) of the plane's files bucket, reached
 * with the tenant's session: another tenant's file id is not found, whatever the code asks.
 */
export interface FileStore {
  /** Stores `body` as the file; `createdAt` is the store's own time. */
  put(tenant: TenantContext, file: Omit<StoredFile, 'bytes' | 'createdAt'>, body: Uint8Array): Promise<StoredFile>;
  get(tenant: TenantContext, id: string): Promise<StoredFile | undefined>;
  content(tenant: TenantContext, id: string): Promise<Uint8Array | undefined>;
  /**
   * A URL that reads the file's bytes for `expiresInSeconds`, signed with the tenant's own session
   * (so it reaches nothing but that tenant's files); undefined when the tenant has no such file.
   */
  downloadUrl(tenant: TenantContext, id: string, expiresInSeconds: number): Promise<string | undefined>;
  /** The tenant's files, newest first, `limit` at most, after the file `after` (OpenAI's cursor). */
  list(
    tenant: TenantContext,
    page: { readonly limit: number; readonly after?: string },
  ): Promise<{ readonly files: StoredFile[]; readonly hasMore: boolean }>;
  /** False when there was no such file. */
  delete(tenant: TenantContext, id: string): Promise<boolean>;
  /** Offboarding: every file of the tenant; returns how many. */
  deleteAll(tenantId: string): Promise<number>;
  /**
   * One step's rows of a running batch, as the runner wrote them: OpenAI's output lines (`lines`),
   * or the records of its Bedrock job being prepared (`records`); kept under the tenant's prefix apart
   * from its files until the batch ends. Each step names its own part (`BatchRecord.parts`), so a step
   * that loses its commit never replaces another's.
   */
  putPart(
    tenant: TenantContext,
    batchId: string,
    section: BatchPartSection,
    name: string,
    body: Uint8Array,
  ): Promise<void>;
  /** The batch's parts `names` of `section`, in that order. */
  parts(
    tenant: TenantContext,
    batchId: string,
    section: BatchPartSection,
    names: readonly string[],
  ): Promise<Uint8Array[]>;
  /**
   * Writes a Bedrock batch job's input for the batch beside its parts; returns where the job reads
   * it and where it writes its output (`s3://` URIs under the tenant's prefix).
   */
  putJobInput(
    tenant: TenantContext,
    batchId: string,
    body: Uint8Array,
  ): Promise<{ readonly inputUri: string; readonly outputUri: string }>;
  /** What the batch's Bedrock job wrote: each of its `.jsonl.out` files (none before it has). */
  jobOutputs(tenant: TenantContext, batchId: string): Promise<Uint8Array[]>;
  /** Every part of the batch (those of steps that lost their commit too), and its Bedrock job's files. */
  deleteParts(tenant: TenantContext, batchId: string): Promise<void>;
}

/** What a running batch keeps apart: its output lines, or its Bedrock job's records being prepared. */
export type BatchPartSection = 'lines' | 'records';

/** A Bedrock batch inference job's status, as Bedrock reports it. */
export type BatchInferenceStatus =
  | 'Submitted'
  | 'Validating'
  | 'Scheduled'
  | 'InProgress'
  | 'Stopping'
  | 'Stopped'
  | 'Completed'
  | 'PartiallyCompleted'
  | 'Failed'
  | 'Expired';

/**
 * Bedrock batch inference (`CreateModelInvocationJob`): a batch's lines run by Bedrock itself, at
 * its batch price, reading and writing the tenant's prefix of the files bucket with the plane's
 * batch service role.
 */
export interface BatchInference {
  /**
   * Starts a job over the JSON lines at `inputUri` (`{"recordId", "modelInput"}` each, `modelInput`
   * the model's `InvokeModel` body), which writes `<outputUri><job id>/<input file name>.out`;
   * returns the job's ARN. Tagged with its tenant; a retried start of the same `jobName` is the
   * same job (its client token).
   */
  start(job: {
    readonly jobName: string;
    readonly tenantId: string;
    readonly modelId: string;
    readonly inputUri: string;
    readonly outputUri: string;
  }): Promise<string>;
  state(jobArn: string): Promise<{ readonly status: BatchInferenceStatus; readonly message?: string }>;
  /** Stops the job; one that has ended already is no error. */
  stop(jobArn: string): Promise<void>;
}

/** OpenAI's batch statuses. */
export type BatchStatus =
  | 'validating'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** What one model of a batch used so far, at batch prices, and by how many of its lines. */
export interface BatchUsage extends ModelUsage {
  readonly requests: number;
}

/** A batch of a tenant: what `/v1/batches` shows and the runner works through, line by line. */
export interface BatchRecord {
  /** `batch_<...>`, sorting newest first. */
  readonly id: string;
  /** Raised by every write, each conditional on the version it read. */
  readonly version: number;
  readonly status: BatchStatus;
  readonly endpoint: '/v1/chat/completions' | '/v1/embeddings';
  readonly inputFileId: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Who submitted it: its lines run as that caller. */
  readonly principal: TenantContext['principal'];
  /** Its lines. */
  readonly total: number;
  /** The lines run so far (the next line to run): each line runs once, in order. */
  readonly next: number;
  /**
   * The parts holding its lines run so far and its job's records, in order: each written by the
   * step that recorded its lines, before that step's record (a part no record lists is a crashed or
   * lost step's, never read).
   */
  readonly parts: Readonly<Record<BatchPartSection, readonly string[]>>;
  readonly completed: number;
  readonly failed: number;
  /** What its lines used, by model: what its settle bills. */
  readonly usage: readonly BatchUsage[];
  /** The whole batch's estimate, held against the tenant's month since submission, until the batch ends. */
  readonly reservation?: Reservation;
  /** The same estimate held by its caller's scopes (project, API key, end user) with limits of their own. */
  readonly scoped?: readonly Reservation[];
  /** The runner's minute and what it ran in it: a batch runs at a share of the tenant's rate limits. */
  readonly window?: { readonly minute: number; readonly requests: number; readonly tokens: number };
  /**
   * The Bedrock batch inference job its lines run as, when they do: `preparing` while its lines
   * become records (up to `next`), `running` once started, `collecting` while its output becomes
   * output lines (up to `collected` records), `collected` when every record it answered is.
   */
  readonly job?: {
    readonly phase: 'preparing' | 'running' | 'collecting' | 'collected';
    /** The catalog model its records run. */
    readonly model: string;
    readonly records: number;
    readonly arn?: string;
    readonly collected: number;
    /** How Bedrock ended it, when not every record ran (`Stopped`, `Failed: ...`). */
    readonly ended?: string;
  };
  /** How it ends, once its last step began: its files, settle and last status follow. */
  readonly closing?: 'completed' | 'failed' | 'expired' | 'cancelled';
  /** Its output and error files, once written (chosen when it begins to end). */
  readonly outputFileId?: string;
  readonly errorFileId?: string;
  /** Why a batch failed as a whole. */
  readonly errors?: readonly { readonly code: string; readonly message: string }[];
  /** Epoch seconds of each status it reached; `expiresAt` when it expires unfinished. */
  readonly times: Readonly<Partial<Record<BatchStatus, number>>> & {
    readonly createdAt: number;
    readonly expiresAt: number;
  };
}

/** The tenant's batches, in its own partition of the documents table, reached with its session. */
export interface BatchStore {
  /** Fails with `conflict` when the id is taken. */
  create(tenant: TenantContext, batch: BatchRecord): Promise<void>;
  get(tenant: TenantContext, id: string): Promise<BatchRecord | undefined>;
  /** Newest first, `limit` at most, after the batch `after`. */
  list(
    tenant: TenantContext,
    page: { readonly limit: number; readonly after?: string },
  ): Promise<{ readonly batches: BatchRecord[]; readonly hasMore: boolean }>;
  /**
   * Writes `batch` as the next version over the one read (`batch.version`), and returns it as
   * written; undefined when another write came first, or the batch is gone (its tenant offboarded).
   */
  update(tenant: TenantContext, batch: BatchRecord): Promise<BatchRecord | undefined>;
}

/** What the work queue carries for a batch: ids only (its lines stay in the tenant's files). */
export interface BatchJobRef {
  readonly kind: 'batch';
  readonly tenantId: string;
  readonly batchId: string;
}

/** A request admitted by the ledger, to be settled or released exactly once. */
export interface Reservation {
  readonly tenantId: string;
  /** The tenant's tier when it was admitted: what its usage is counted under. */
  readonly tier: Tier;
  readonly requestId: string;
  readonly model: string;
  readonly month: string;
  readonly estimate: Estimate;
  readonly reservedAtMs: number;
  /** The ledger shard whose counters and lease hold it. */
  readonly shard: number;
  /** The ledger shard its reservation record lives on (its request's home), if it is held by one. */
  readonly recordShard: number;
  /** The epoch whose slot of its shard holds it; absent when a record holds it (a queued job). */
  readonly epoch?: number;
}

export interface ActualUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costNanoUsd: number;
  /**
   * The same usage by the model that used it, when the call's route ran more than the reserved
   * model (a fallback): each recorded under its own model, at its own price. Absent: all the
   * reservation's model's.
   */
  readonly byModel?: readonly ModelUsage[];
}

/** What one model of a call used. */
export interface ModelUsage {
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costNanoUsd: number;
  /** The requests it counts as in usage (a batch's lines); absent: one. */
  readonly requests?: number;
}

export interface UsageRecord {
  readonly date: string;
  readonly model: string;
  readonly requests: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costNanoUsd: number;
}

/** A scope below a tenant with limits of its own: one of its projects, API keys or end users. */
export interface LedgerScope {
  readonly kind: 'project' | 'key' | 'user';
  /** The project's name, the key's id, or the end user's id as the caller gave it. */
  readonly id: string;
  readonly limits: TenantLimits;
}

export interface ScopeUsageRecord extends UsageRecord {
  readonly scope: string;
}

export interface TenantUsageRecord extends UsageRecord {
  readonly tenantId: string;
}

/** The operator's view across tenants; never on a tenant's path. */
export interface UsageReports {
  monthOfAllTenants(month: string): Promise<TenantUsageRecord[]>;
}

export interface Ledger {
  /**
   * Admits the request against every limit in one conditional write, or throws a 429 `PlatformError`.
   * Idempotent by request id: a retried reserve of an admitted request admits it again, once.
   */
  reserve(
    tenant: TenantContext,
    request: {
      requestId: string;
      model: string;
      estimate: Estimate;
      nowMs: number;
      /** How long the reservation waits for its settle before it counts as abandoned; default: the handler's lifetime. */
      holdMs?: number;
      /**
       * false: held to the month's tokens and budget alone, never the minute's (a batch admitted whole at
       * submission, its estimate far beyond tokens per minute); only with `holdMs`.
       */
      perMinute?: false;
    },
  ): Promise<Reservation>;
  /**
   * Replaces the reservation with the actual usage and records it per day and model; idempotent by
   * request id. `audit`, the request's audit record, is written with it (one write instead of two
   * on every model call): in the same transaction, or alone when the reservation is settled already.
   */
  settle(reservation: Reservation, usage: ActualUsage, audit?: AuditEntry): Promise<void>;
  /** Gives the whole reservation back: the request used nothing (the model call failed). */
  release(reservation: Reservation): Promise<void>;
  /**
   * Admits the request against a scope's own limits (an API key's, an end user's), counted apart
   * from the tenant's in the same way and as exactly; its reservation is settled or released like
   * any other. A 429 when the scope's limits refuse it.
   */
  reserveScope(
    tenant: TenantContext,
    scope: LedgerScope,
    request: Parameters<Ledger['reserve']>[1],
  ): Promise<Reservation>;
  /** What each of the tenant's scopes of `kind` used in the inclusive date range, by scope and model. */
  scopeUsage(
    tenant: TenantContext,
    kind: LedgerScope['kind'],
    range: { from: string; to: string },
  ): Promise<ScopeUsageRecord[]>;
  /** The tenant's settled usage for the inclusive date range `yyyy-mm-dd`. */
  usage(tenant: TenantContext, range: { from: string; to: string }): Promise<UsageRecord[]>;
  /** Offboarding: deletes every ledger item of the tenant; returns how many. */
  deleteAll(tenantId: string): Promise<number>;
}

/** Metering's own metrics: things that should not happen, counted so an operator sees when they do. */
export interface MeteringMetrics {
  /** A model used `tokens` more than its reservation held: settled all the same, and counted here. */
  reservationOverage(reservation: Reservation, tokens: number): void;
  /** A model call settled: the tokens and cost it was billed, per tier, model and tenant. */
  settled(reservation: Reservation, usage: ActualUsage): void;
}

/** Which budget thresholds were announced: each once per tenant and month. */
export interface BudgetAlertMarks {
  /** Marks the threshold announced; false when it already was (another run got there first). */
  mark(tenantId: string, month: string, thresholdPercent: number): Promise<boolean>;
  /** Takes a mark back: its announcement failed, so the next run makes it again. */
  unmark(tenantId: string, month: string, thresholdPercent: number): Promise<void>;
  /** The tenant's marks (a move to its silo carries them, so no threshold is announced twice). */
  marked(tenantId: string): Promise<readonly { readonly month: string; readonly thresholdPercent: number }[]>;
}

/** Where budget announcements go (EventBridge on AWS). */
export interface BudgetEvents {
  publish(detail: BudgetThresholdDetail): Promise<void>;
}

/** One tenant request as operators count it: answered, refused or failed. */
export interface RequestOutcome {
  readonly tenantId: string;
  readonly tier: Tier;
  readonly requestId: string;
  /** `METHOD /resource`, e.g. `POST /v1/chat/completions`. */
  readonly route: string;
  readonly status: number;
  readonly errorCode?: string;
  readonly latencyMs: number;
  readonly cache?: 'hit' | 'miss';
}

/** A tenant's own inference profiles: one per Bedrock model, tagged with its id, for AWS's cost allocation. */
export interface InferenceProfiles {
  /**
   * Creates (or finds, after a retry) the tenant's profile of each model; returns their ARNs by
   * model name.
   */
  createFor(
    tenantId: string,
    models: readonly { readonly name: string; readonly bedrockModelId: string }[],
  ): Promise<Record<string, string>>;
  /** Deletes the profiles (those already gone count as deleted); returns how many. */
  deleteAll(profileArns: readonly string[]): Promise<number>;
}

/** What operators watch: CloudWatch metrics (embedded metric format) on AWS. */
export interface PlatformMetrics extends MeteringMetrics {
  request(outcome: RequestOutcome): void;
  /** A streamed answer whose caller hung up before its end. */
  streamDisconnected(tenant: { readonly tenantId: string; readonly tier: Tier }, route: string): void;
}

export interface StoredApiKey {
  readonly keyId: string;
  readonly tenantId: string;
  readonly secretHash: string;
  readonly status: 'active' | 'revoked';
  readonly createdAt: string;
  /** The key's own limits below its tenant's; absent: its tenant's alone. */
  readonly limits?: ScopeLimits;
  /** The project its calls count toward, if any. */
  readonly project?: string;
}

/** A tenant record as read: a write conditional on it lands only while the record is still at this version. */
export type TenantVersion = Pick<TenantRecord, 'tenantId' | 'version'>;

/** What a write of a named record (an adapter, a template) requires of what is stored. */
export interface RecordCondition<T> {
  /** The tenant record is still at this version. */
  readonly tenant?: TenantVersion;
  /** The record is still as read (`null`: there is none); absent: any (a copy to a silo). */
  readonly previous?: T | null;
}

/**
 * The tenant registry. Writes that change what an operator sees are conditional on what was read
 * and fail with `conflict` when another write came first; a copy to a silo writes unconditionally.
 */
export interface TenantRegistry {
  getTenant(tenantId: string): Promise<TenantRecord | undefined>;
  /** Every tenant (tombstones of offboarded ones too), a page at a time: the operator's list. */
  listTenants(page: { limit: number; cursor?: string }): Promise<{ tenants: TenantRecord[]; nextCursor?: string }>;
  /** Writes the record as version 1; fails with `conflict` when the tenant exists already. */
  createTenant(record: TenantRecord): Promise<TenantRecord>;
  /**
   * Writes `record` over the tenant read at `record.version`, as the next version, and returns
   * it; fails with `conflict` when the tenant changed since, `not_found` when there is none.
   */
  updateTenant(record: TenantRecord): Promise<TenantRecord>;
  /**
   * Deletes a record onboarding created but could not finish (its vector index refused), while it
   * is still at version 1, so onboarding may be tried again; a record changed since is kept.
   */
  discardNewTenant(tenantId: string): Promise<void>;
  getApiKey(keyId: string): Promise<StoredApiKey | undefined>;
  /** Writes the key and the tenant's entry for it, both or neither, while `tenant` is current. */
  putApiKey(key: StoredApiKey, tenant?: TenantVersion): Promise<void>;
  /** Fails with `not_found` unless the key exists and belongs to the tenant, `conflict` unless `tenant` is current. */
  revokeApiKey(keyId: string, tenant: TenantVersion): Promise<void>;
  /** Moves an active key of the tenant to `project` (undefined: none) while the tenant is at the version read. */
  setApiKeyProject(keyId: string, project: string | undefined, tenant: TenantVersion): Promise<void>;
  /** Offboarding: deletes all the tenant's API keys; returns how many there were. The record stays, as a tombstone. */
  deleteApiKeys(tenantId: string): Promise<number>;
  /** Every key of the tenant, revoked ones too: what a move to its silo copies. */
  listApiKeys(tenantId: string): Promise<StoredApiKey[]>;
  /**
   * A return to the pool's copy of the tenant's keys, as its build's session may write them: into the
   * tenant's own list (its partition) only, each with its hash, never over a revoked one; the pool's
   * own step makes them keys (`adoptCarriedKeys`), so no session writes a key item of any tenant.
   */
  carryApiKeys(tenantId: string, keys: readonly StoredApiKey[]): Promise<void>;
  /**
   * Makes the keys carried into the tenant's list keys: a key id no one has, or the tenant's own
   * active key (a revoked key stays revoked); another tenant's key is never touched. Returns how many.
   */
  adoptCarriedKeys(tenantId: string): Promise<number>;
  getAdapter(tenantId: string, name: string): Promise<AdapterRecord | undefined>;
  /** Creates or replaces the adapter's record. */
  putAdapter(tenantId: string, record: AdapterRecord, condition?: RecordCondition<AdapterRecord>): Promise<void>;
  listAdapters(tenantId: string): Promise<AdapterRecord[]>;
  deleteAdapter(tenantId: string, name: string, condition?: RecordCondition<AdapterRecord>): Promise<void>;
  /** The tenant's prompt templates, operator-managed. */
  getPrompt(tenantId: string, name: string): Promise<PromptRecord | undefined>;
  putPrompt(tenantId: string, record: PromptRecord, condition?: RecordCondition<PromptRecord>): Promise<void>;
  listPrompts(tenantId: string): Promise<PromptRecord[]>;
  deletePrompt(tenantId: string, name: string, condition?: RecordCondition<PromptRecord>): Promise<void>;
}

/** A conversation kept server-side for one tenant: the user and assistant turns, oldest first. */
export interface StoredSession {
  readonly id: string;
  readonly messages: readonly ChatMessage[];
  /** Raised by every turn: a turn stored meanwhile is never overwritten. */
  readonly version: number;
  readonly updatedAt: string;
  /** Epoch seconds: gone after this (TTL). */
  readonly expiresAt: number;
}

/** An answer kept for a tenant: the model's text as it came (placeholders of redacted PII included). */
export interface CachedAnswer {
  readonly text: string;
  readonly finishReason: string;
  readonly toolCalls?: readonly ToolCall[];
}

/** What a tenant may see of one of its API keys: never its secret or hash. */
export interface ApiKeyListing {
  readonly keyId: string;
  readonly createdAt: string;
  readonly status: 'active' | 'revoked';
}

/** The caller's own API keys, read with its tenant-scoped credentials. */
export interface TenantKeys {
  list(tenant: TenantContext): Promise<ApiKeyListing[]>;
}

/** The caller's own adapters, read with its tenant-scoped credentials (the chat and models routes). */
/** A guardrail applied apart from a model call: for the models Bedrock does not serve (`ApplyGuardrail`). */
export interface ContentGuardrail {
  /** The policies that fired on these texts, or undefined when none did. */
  assess(
    guardrail: GuardrailRef,
    source: 'INPUT' | 'OUTPUT',
    texts: readonly string[],
  ): Promise<readonly string[] | undefined>;
}

/** Answers kept per tenant for deterministic requests: never shared across tenants. */
export interface ResponseCache {
  get(tenant: TenantContext, key: string, nowMs: number): Promise<CachedAnswer | undefined>;
  put(tenant: TenantContext, key: string, answer: CachedAnswer, expiresAtSeconds: number): Promise<void>;
  /** Offboarding: every entry of the tenant; answers how many. */
  deleteAll(tenantId: string): Promise<number>;
}

/** Conversations kept server-side, per tenant: read and written with the tenant's scoped session. */
/** A Responses API response kept for its tenant: to read back, list its input, and continue from. */
export interface StoredResponse {
  readonly id: string;
  /** `<type>:<id>` of the principal that made it: another one's is not found where principals are kept apart. */
  readonly principal: string;
  /** The response object as it was answered. */
  readonly response: Readonly<Record<string, unknown>>;
  /** The input items of its request, as given. */
  readonly inputItems: readonly unknown[];
  /** The conversation to continue from: the earlier turns, this input and this output, as chat messages. */
  readonly conversation: readonly ChatMessage[];
  /** Epoch seconds: gone after this (TTL). */
  readonly expiresAt: number;
}

/** Stored responses, in the tenant's own partition. */
export interface ResponseStore {
  get(tenant: TenantContext, id: string, nowMs: number): Promise<StoredResponse | undefined>;
  put(tenant: TenantContext, stored: StoredResponse): Promise<void>;
  /** Whether there was one to delete. */
  delete(tenant: TenantContext, id: string, nowMs: number): Promise<boolean>;
  /** Offboarding: every stored response of the tenant; how many there were. */
  deleteAll(tenantId: string): Promise<number>;
}

export interface SessionStore {
  /** The session, unless it never was, was deleted, or expired by `nowMs`. */
  get(tenant: TenantContext, id: string, nowMs: number): Promise<StoredSession | undefined>;
  /**
   * Stores it if the stored version is still `expectedVersion` (undefined: none, or expired by
   * `nowMs`); false when it moved on.
   */
  put(
    tenant: TenantContext,
    session: StoredSession,
    expectedVersion: number | undefined,
    nowMs: number,
  ): Promise<boolean>;
  /** False when there was none (or it had expired by `nowMs`). */
  delete(tenant: TenantContext, id: string, nowMs: number): Promise<boolean>;
  /** Offboarding: every session of the tenant; answers how many. */
  deleteAll(tenantId: string): Promise<number>;
}

/** The caller's own prompt templates, read with its tenant-scoped session. */
export interface TenantPrompts {
  get(tenant: TenantContext, name: string): Promise<PromptRecord | undefined>;
  list(tenant: TenantContext): Promise<PromptRecord[]>;
}

export interface TenantAdapters {
  get(tenant: TenantContext, name: string): Promise<AdapterRecord | undefined>;
  list(tenant: TenantContext): Promise<AdapterRecord[]>;
}

/** SageMaker's inference components: where adapters are loaded onto the GPU endpoint. */
export interface AdapterHost {
  create(component: {
    componentName: string;
    baseComponentName: string;
    endpointName: string;
    artifactUrl: string;
    /** Whose adapter it is: the component carries it as its tenant tag. */
    tenantId: string;
  }): Promise<void>;
  describe(componentName: string): Promise<{
    status: 'Creating' | 'Updating' | 'InService' | 'Failed' | 'Deleting';
    failureReason?: string;
  }>;
  /** Deleting one that does not exist is not an error. */
  delete(componentName: string): Promise<void>;
}

/** Follows a new adapter until SageMaker has it in service or failed (Step Functions on AWS). */
export interface AdapterWorkflow {
  start(adapter: { tenantId: string; name: string }): Promise<void>;
}

/** The durable move of a tenant to its silo stack (EventBridge event → Step Functions on AWS). */
export interface PlacementWorkflow {
  /** Starts the move of a tenant whose record asks for it: to its silo (`to` absent), or back to the pool. */
  start(tenant: { tenantId: string; to?: 'silo' | 'pool' }): Promise<void>;
}

/** The data tables keyed by tenant partition. */
export type TenantTable = 'ledger' | 'audit' | 'documents';

/**
 * A tenant's items in the data tables, exactly as stored: what a move to its silo copies, so
 * counters, reservations, TTLs and versions arrive unchanged.
 */
export interface TenantPartitions {
  /** A page of the tenant's items in `table`, those whose sort key starts with `prefix` when given. */
  read(
    tenantId: string,
    table: TenantTable,
    cursor?: string,
    prefix?: string,
  ): Promise<{ items: Record<string, unknown>[]; nextCursor?: string }>;
  /** The tenant's items at these keys, those that exist (strongly consistent). */
  get(tenantId: string, table: TenantTable, keys: readonly ItemKey[]): Promise<Record<string, unknown>[]>;
  /** Overwrites; refuses items of any other tenant's partition. */
  write(tenantId: string, table: TenantTable, items: readonly Record<string, unknown>[]): Promise<void>;
  /** The item's counter attributes: its writes add to them, so a move catches them up by their change. */
  counters(table: TenantTable, item: Readonly<Record<string, unknown>>): readonly string[];
  /** A move's catch-up of the silo: puts, deletes and counters added; refuses items of any other tenant's partition. */
  apply(tenantId: string, table: TenantTable, writes: readonly SiloWrite[]): Promise<void>;
}

/** The durable offboarding workflow (Step Functions on AWS): drain, purge, tombstone. */
export interface OffboardingWorkflow {
  /** Starts it for a tenant whose offboarding has begun; starting it again for the same tenant is harmless. */
  start(tenant: {
    tenantId: string;
    drainUntil: string;
    /** The tenant is served by a silo stack: its data is purged there, then the stack is destroyed. */
    silo: boolean;
  }): Promise<void>;
}

/** A verified bearer token's identity; throws on anything invalid. */
export interface TokenVerifier {
  /** The token's tenant, user and expiry, and its project (the configured claim) when it names one. */
  verify(token: string): Promise<{ tenantId: string; userId: string; expiresAt: number; project?: string }>;
}

export interface AuditLog {
  record(tenant: TenantContext, entry: AuditEntry): Promise<void>;
  /** Newest first; `cursor` continues where the previous page ended. */
  list(
    tenant: TenantContext,
    page: { limit: number; cursor?: string },
  ): Promise<{ entries: AuditEntry[]; nextCursor?: string }>;
  get(tenant: TenantContext, requestId: string): Promise<AuditEntry | undefined>;
  /** Offboarding: deletes every audit record of the tenant; returns how many. */
  deleteAll(tenantId: string): Promise<number>;
}

export interface Embedder {
  /** One vector per text, in order, and the input tokens the provider counted. */
  embed(
    tenant: TenantContext,
    request: { modelId: string; texts: readonly string[]; dimensions: number; signal?: AbortSignal },
  ): Promise<{
    vectors: number[][];
    inputTokens: number;
    outputTokens: 0;
  }>;
}

/** A chunk found by a search, with its similarity. */
export interface Passage {
  readonly documentId: string;
  readonly chunk: number;
  readonly title?: string;
  readonly text: string;
  readonly score: number;
}

/** One chunk as it is indexed: text, vector and where it comes from. */
export interface IndexedChunk {
  readonly documentId: string;
  readonly chunk: number;
  readonly title?: string;
  readonly text: string;
  readonly vector: readonly number[];
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
}

/** A chunk as a move exports it: with the document version it belongs to. */
export interface ExportedChunk extends IndexedChunk {
  readonly version: string;
}

/** Which versions of a document a delete removes: all (default), one, or all but one. */
export interface VersionScope {
  readonly only?: string;
  readonly except?: string;
}

/**
 * The tenant's vector index. The adapter writes to the tenant's current placement, reads and deletes
 * across every placement it ever had (`TenantContext.placements`), and confines every call to them.
 */
export interface VectorIndex {
  /** Creates the tenant's own index if its tier has one (idempotent). */
  ensureTenantIndex(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): Promise<void>;
  /** Adds (or overwrites) these chunks of one version of a document. */
  addChunks(
    tenant: TenantContext,
    document: { id: string; version: string },
    chunks: readonly IndexedChunk[],
  ): Promise<void>;
  search(
    tenant: TenantContext,
    query: { vector: readonly number[]; topK: number; filter?: Readonly<Record<string, string | number | boolean>> },
  ): Promise<Passage[]>;
  /** Returns how many chunks were deleted. */
  deleteDocument(tenant: TenantContext, documentId: string, versions?: VersionScope): Promise<number>;
  /** Offboarding: every chunk of the tenant in every placement (own indexes are deleted); returns how many. */
  deleteTenant(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Promise<number>;
  /** Every chunk of the tenant in one placement (an own index is deleted): a reindex's last step. Returns how many. */
  deletePlacement(tenant: Pick<TenantContext, 'tenantId'>, placement: string): Promise<number>;
  /** Every chunk of the tenant in every placement, vectors included, a page at a time. */
  exportChunks(tenant: TenantContext, cursor?: string): Promise<{ chunks: ExportedChunk[]; nextCursor?: string }>;
}

export interface DocumentRecord {
  readonly id: string;
  /** Each upsert writes a new version; chunks of any other version are stale and removed. */
  readonly version: string;
  readonly title?: string;
  readonly chunks: number;
  /** Chunks embedded and indexed so far; equals `chunks` once `status` is `indexed`. */
  readonly indexedChunks: number;
  /** Queued documents: the ingest jobs (batches) done so far, so a redelivered job is not done twice. */
  readonly indexedBatches?: readonly number[];
  readonly tokens: number;
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
  /** `queued`: a large document whose chunks a worker is still indexing. */
  readonly status: 'queued' | 'indexed';
  readonly createdAt: string;
}

export interface DocumentStore {
  put(tenant: TenantContext, record: DocumentRecord): Promise<void>;
  get(tenant: TenantContext, id: string): Promise<DocumentRecord | undefined>;
  list(
    tenant: TenantContext,
    page: { limit: number; cursor?: string },
  ): Promise<{ records: DocumentRecord[]; nextCursor?: string }>;
  delete(tenant: TenantContext, id: string): Promise<boolean>;
  deleteAll(tenantId: string): Promise<number>;
  /** Keeps queued jobs' chunks in the tenant's partition until the worker has indexed them. */
  putJobs(tenant: TenantContext, jobs: readonly IngestJob[]): Promise<void>;
  /** The job's chunks, or nothing when the job is done, or its document or tenant is gone. */
  getJob(tenant: TenantContext, ref: IngestJobRef): Promise<IngestJob | undefined>;
  deleteJob(tenant: TenantContext, ref: IngestJobRef): Promise<void>;
  /** The jobs not done yet, a page at a time: what a move to a silo queues again there. */
  listJobs(tenant: TenantContext, cursor?: string): Promise<{ jobs: IngestJobRef[]; nextCursor?: string }>;
  /**
   * Counts batch `batch` (`count` chunks) of this document version as indexed, once however often
   * it is told, marking the document `indexed` when all chunks are: `complete` then, `partial`
   * before, `stale` when the document was deleted or replaced by another version meanwhile.
   */
  recordIndexed(
    tenant: TenantContext,
    document: { id: string; version: string },
    batch: number,
    count: number,
  ): Promise<'partial' | 'complete' | 'stale'>;
}

/**
 * What the ingest queue carries: ids only. The chunks wait in the tenant's own partition of the
 * documents table, so no tenant content sits in a queue or its dead-letter queue, where offboarding
 * could not reach it.
 */
export interface IngestJobRef {
  readonly tenantId: string;
  /** Who uploaded the document: the worker acts for them, with the tenant's record as it is now. */
  readonly principal: TenantContext['principal'];
  readonly documentId: string;
  /** The document version this job indexes: a job of any other version is stale and dropped. */
  readonly version: string;
  readonly requestId: string;
  readonly batch: number;
  /** How often the job has waited for its suspended tenant: each wait is longer. */
  readonly pauses?: number;
}

/** One batch of a large document's chunks, to embed and index off the request path. */
export interface IngestJob extends IngestJobRef {
  /** The job's embedding tokens, reserved when the document was accepted; the worker settles or releases it. */
  readonly reservation?: Reservation;
  readonly title?: string;
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
  readonly chunks: readonly { readonly chunk: number; readonly text: string }[];
}

/** The plane's work queue: large documents' ingest jobs, and running batches' next steps. */
export interface IngestQueue {
  /** `delaySeconds` (at most 900): the jobs are delivered no sooner. */
  enqueue(jobs: readonly (IngestJobRef | BatchJobRef)[], options?: { readonly delaySeconds?: number }): Promise<void>;
}
