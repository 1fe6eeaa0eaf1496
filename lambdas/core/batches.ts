import { randomBytes } from 'node:crypto';
import type { ModelCatalog, ModelEntry } from '../../contract/catalog';
import { errorBody, statusOf } from '../../contract/errors';
import { BATCH_ENDPOINTS, BATCH_ID_PATTERN, FILE_ID_PATTERN } from '../../contract/files';
import * as z from '../../contract/zod';
import type { AuditDetail } from './audit';
import {
  BEDROCK_BATCH_MIN_RECORDS,
  type JobCodecDeps,
  type JobPlan,
  jobOutputLine,
  jobPlan,
  jobRecord,
  planFor,
  recordLine,
} from './batch-jobs';
import { atBatchPrices, costNanoUsd } from './catalog';
import { type ChatDeps, chatRequestSchema, completeChat } from './chat';
import { createEmbeddings, embeddingsRequestSchema } from './embeddings';
import { PlatformError } from './errors';
import { type BatchLine, checkBatchLines, fileContent, getFile, newFileId } from './files';
import { minuteWindow, monthKey, secondsUntilNextMinute } from './limits';
import { modelCallBudgetMs, reserveInScopes, usageByModel } from './metering';
import { cursorPage, newestFirstId } from './paging';
import type {
  BatchInference,
  BatchJobRef,
  BatchPartSection,
  BatchRecord,
  BatchStatus,
  BatchStore,
  BatchUsage,
  FileStore,
  IngestQueue,
  Ledger,
  Reservation,
  TenantRegistry,
} from './ports';
import { routeFor } from './routing';
import { actingFor, servedHere, type TenantContext } from './tenant';
import { countTokens } from './tokens';

/** OpenAI's one completion window: a batch not done by then expires, its lines run so far kept and billed. */
const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;
/** The submission's reservation holds through the window and the runner's last step after it. */
const BATCH_HOLD_MS = COMPLETION_WINDOW_MS + 2 * 3600 * 1000;
/** The share of the tenant's per-minute limits a batch's lines take: the rest stays its live traffic's. */
export const BATCH_RATE_SHARE = 0.5;
/** Lines a runner has in flight at once. */
const LINE_CONCURRENCY = 8;
/** A runner starts no line with less time than this left: the lines it started end, and are written, in time. */
const STEP_ROOM_MS = 30_000;
/** How long a step waits after a line the provider could not take (throttled, unavailable) before it goes on. */
const BACKOFF_SECONDS = 30;
/** How long a suspended tenant's batch waits before it looks again (its window runs meanwhile). */
const SUSPENDED_WAIT_SECONDS = 300;

/** Who the platform acts as when it reads a tenant's batches for the runner. */
const RUNNER = 'batch-runner';
/** Times a step decides again after a write that lost to another, before it is delivered again. */
const MAX_STEP_ROUNDS = 5;

/** The statuses a batch may move to from each: every write of a batch's status goes through `moved`. */
const TRANSITIONS: Readonly<Record<BatchStatus, readonly BatchStatus[]>> = {
  validating: ['in_progress', 'cancelling', 'expired', 'failed'],
  in_progress: ['finalizing', 'cancelling', 'expired', 'failed'],
  finalizing: ['completed'],
  cancelling: ['cancelled'],
  completed: [],
  failed: [],
  expired: [],
  cancelled: [],
};

const ENDINGS = ['completed', 'failed', 'expired', 'cancelled'] as const;
type Ending = (typeof ENDINGS)[number];

/** The batch at `to`, with the time it got there; a move the state machine does not allow is a 409. */
function moved(batch: BatchRecord, to: BatchStatus, nowMs: number): BatchRecord {
  if (!TRANSITIONS[batch.status].includes(to)) {
    throw new PlatformError('conflict', `batch ${batch.id} is ${batch.status}: it cannot become ${to}`, {
      current: batchView(batch),
    });
  }
  return { ...batch, status: to, times: { ...batch.times, [to]: Math.floor(nowMs / 1000) } };
}

const isEnding = (status: BatchStatus): status is Ending => (ENDINGS as readonly string[]).includes(status);

/** `POST /v1/batches`, as OpenAI's SDKs send it. */
export const batchCreateSchema = z.strictObject({
  input_file_id: z.string().check(z.regex(FILE_ID_PATTERN, 'input_file_id is a file id')),
  endpoint: z.enum(BATCH_ENDPOINTS),
  completion_window: z.literal('24h'),
  metadata: z.optional(
    z.nullable(
      z
        .record(z.string().check(z.maxLength(64)), z.string().check(z.maxLength(512)))
        .check(z.refine((metadata) => Object.keys(metadata).length <= 16, 'metadata holds at most 16 keys')),
    ),
  ),
});

/** `GET /v1/batches`: `limit` (1 to 100, default 20) and `after` (a batch id: the page after it). */
export const batchListQuerySchema = z.strictObject({
  limit: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(100)), 20),
  after: z.optional(z.string().check(z.regex(BATCH_ID_PATTERN, 'after is a batch id'))),
});

/** OpenAI's `batch` object. */
export function batchView(batch: BatchRecord) {
  const { times } = batch;
  const at = (status: BatchStatus) => times[status] ?? null;
  const ended = isEnding(batch.status);
  const sum = (field: 'inputTokens' | 'outputTokens') => batch.usage.reduce((total, part) => total + part[field], 0);
  return {
    id: batch.id,
    object: 'batch' as const,
    endpoint: batch.endpoint,
    errors: batch.errors
      ? { object: 'list' as const, data: batch.errors.map((error) => ({ ...error, param: null, line: null })) }
      : null,
    input_file_id: batch.inputFileId,
    completion_window: '24h' as const,
    status: batch.status,
    output_file_id: (ended && batch.outputFileId) || null,
    error_file_id: (ended && batch.errorFileId) || null,
    created_at: times.createdAt,
    in_progress_at: at('in_progress'),
    expires_at: times.expiresAt,
    finalizing_at: at('finalizing'),
    completed_at: at('completed'),
    failed_at: at('failed'),
    expired_at: at('expired'),
    cancelling_at: at('cancelling'),
    cancelled_at: at('cancelled'),
    request_counts: { total: batch.total, completed: batch.completed, failed: batch.failed },
    usage: {
      input_tokens: sum('inputTokens'),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: sum('outputTokens'),
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: sum('inputTokens') + sum('outputTokens'),
    },
    metadata: batch.metadata ?? null,
  };
}

/** What the batch API needs. */
export interface BatchDeps {
  readonly files: FileStore;
  readonly batches: BatchStore;
  readonly queue: IngestQueue;
  readonly ledger: Ledger;
  readonly catalog: ModelCatalog;
  /** The tiers' routes: a chat line may name one (or one of its tenant's own). */
  readonly routing?: ChatDeps['routing'];
  readonly now: () => number;
}

/** The lines of the tenant's batch file `id`, as checked at its upload. */
async function inputLines(
  deps: Pick<BatchDeps, 'files' | 'now'>,
  tenant: TenantContext,
  id: string,
): Promise<BatchLine[]> {
  return checkBatchLines(new TextDecoder().decode(await fileContent(deps, tenant, id)));
}

/**
 * The catalog models a line may run on, as the chat core resolves its `model`: a route's targets (a
 * cross-region profile runs its model; an adapter is priced as its base model), none when it names
 * nothing there is (the line fails when it runs, using nothing).
 */
function lineModels(
  deps: Pick<BatchDeps, 'routing'>,
  catalog: ModelCatalog,
  tenant: TenantContext,
  line: BatchLine,
): ModelEntry[] {
  const name = typeof line.body.model === 'string' ? line.body.model : '';
  const entry = (model: string) => (Object.hasOwn(catalog, model) ? [catalog[model]] : []);
  if (line.url === '/v1/embeddings') return entry(name);
  let targets: readonly { readonly model: string }[];
  try {
    targets = routeFor(tenant.routing, deps.routing?.[tenant.tier], name).targets;
  } catch {
    return [];
  }
  return targets.flatMap(({ model }) => entry(/^ft:([^:]+):/.exec(model)?.[1] ?? model.split('@')[0]));
}

/**
 * What a line may use at most, on the dearest model it may run on: its input's tokens (over-counted:
 * the whole body) and its output's limit.
 */
function lineEstimate(
  deps: Pick<BatchDeps, 'routing'>,
  catalog: ModelCatalog,
  tenant: TenantContext,
  line: BatchLine,
): { tokens: number; costNanoUsd: number } {
  const input =
    line.url === '/v1/embeddings'
      ? countTokens(JSON.stringify(line.body.input ?? ''))
      : countTokens(JSON.stringify(line.body.messages ?? line.body.prompt ?? ''));
  const asked = line.body.max_completion_tokens ?? line.body.max_tokens;
  return lineModels(deps, catalog, tenant, line).reduce(
    (most, model) => {
      const output =
        model.kind === 'embedding'
          ? 0
          : typeof asked === 'number' && Number.isInteger(asked) && asked > 0
            ? Math.min(asked, model.maxOutputTokens)
            : model.defaultMaxTokens;
      return {
        tokens: Math.max(most.tokens, input + output),
        costNanoUsd: Math.max(most.costNanoUsd, costNanoUsd(model, input, output)),
      };
    },
    { tokens: 0, costNanoUsd: 0 },
  );
}

/**
 * `POST /v1/batches`: the input file's lines checked, the whole batch's estimate (at batch prices)
 * reserved against the tenant's monthly tokens and budget (a 429 when the month has no room for it,
 * so a batch is never half-run for want of budget), the batch recorded and its runner queued.
 */
export async function createBatch(
  deps: BatchDeps,
  tenant: TenantContext,
  request: z.infer<typeof batchCreateSchema>,
  audit: AuditDetail = {},
): Promise<BatchRecord> {
  const file = await getFile(deps, tenant, request.input_file_id);
  if (file.purpose !== 'batch') {
    throw new PlatformError('invalid_request', `file ${file.id} is a batch's output, not a batch input file`);
  }
  const lines = await inputLines(deps, tenant, file.id);
  if (lines.length === 0) throw new PlatformError('invalid_request', `file ${file.id} holds no lines`);
  if (lines[0].url !== request.endpoint) {
    throw new PlatformError(
      'invalid_request',
      `the lines of file ${file.id} call ${lines[0].url}, not the batch's endpoint ${request.endpoint}`,
    );
  }
  const catalog = atBatchPrices(deps.catalog);
  const estimate = lines.reduce(
    (sum, line) => {
      const one = lineEstimate(deps, catalog, tenant, line);
      return { tokens: sum.tokens + one.tokens, costNanoUsd: sum.costNanoUsd + one.costNanoUsd };
    },
    { tokens: 0, costNanoUsd: 0 },
  );
  const nowMs = deps.now();
  const id = newestFirstId('batch_', nowMs);
  audit.batch = { id, lines: lines.length };
  // Lines that can use nothing (none names a model there is) hold nothing: the ledger admits no empty estimate.
  // Against the tenant's month and its caller's scopes' (project, API key, end user): a key's own
  // budget holds its batches too. Lines that can use nothing (none names a model there is) hold
  // nothing: the ledger admits no empty estimate.
  const held =
    estimate.tokens > 0 || estimate.costNanoUsd > 0
      ? await reserveInScopes(
          deps,
          tenant,
          { requestId: id, model: 'batch', estimate, nowMs, holdMs: BATCH_HOLD_MS, perMinute: false },
          undefined,
        )
      : undefined;
  const releaseHeld = async () => {
    if (held) await Promise.all([held.reservation, ...held.scoped].map((each) => deps.ledger.release(each)));
  };
  const createdAt = Math.floor(nowMs / 1000);
  const batch: BatchRecord = {
    id,
    version: 1,
    status: 'validating',
    endpoint: request.endpoint,
    inputFileId: file.id,
    ...(request.metadata && { metadata: request.metadata }),
    principal: tenant.principal,
    total: lines.length,
    next: 0,
    parts: { lines: [], records: [] },
    completed: 0,
    failed: 0,
    usage: [],
    ...(held && { reservation: held.reservation, scoped: held.scoped }),
    times: { createdAt, expiresAt: createdAt + COMPLETION_WINDOW_MS / 1000 },
  };
  try {
    await deps.batches.create(tenant, batch);
  } catch (error) {
    await releaseHeld();
    throw error;
  }
  try {
    await deps.queue.enqueue([{ kind: 'batch', tenantId: tenant.tenantId, batchId: id }]);
  } catch (error) {
    // Never run: failed as a whole, its reservation given back.
    const failed = { ...moved(batch, 'failed', deps.now()), errors: [{ code: 'not_queued', message: 'retry' }] };
    if (await deps.batches.update(tenant, failed)) await releaseHeld();
    throw error;
  }
  return batch;
}

/** The tenant's batch `id`; another tenant's, or none, is a 404 alike. */
export async function getBatch(deps: Pick<BatchDeps, 'batches'>, tenant: TenantContext, id: string) {
  const batch = BATCH_ID_PATTERN.test(id) ? await deps.batches.get(tenant, id) : undefined;
  if (!batch) throw new PlatformError('not_found', `no batch '${id.slice(0, 80)}'`);
  return batch;
}

/** `GET /v1/batches`: OpenAI's cursor page, newest first. */
export async function listBatches(
  deps: Pick<BatchDeps, 'batches'>,
  tenant: TenantContext,
  query: z.infer<typeof batchListQuerySchema>,
) {
  const page = await deps.batches.list(tenant, query);
  return cursorPage(page.batches.map(batchView), page.hasMore);
}

/**
 * `POST /v1/batches/{id}/cancel`: `cancelling` until the runner's next step ends it (its lines run so
 * far kept and billed, the rest given back). Cancelling a cancelled or cancelling batch answers it
 * as it is; one that is finishing or ended is a 409.
 */
export async function cancelBatch(deps: Pick<BatchDeps, 'batches' | 'now'>, tenant: TenantContext, id: string) {
  for (;;) {
    const batch = await getBatch(deps, tenant, id);
    if (batch.status === 'cancelling' || batch.status === 'cancelled') return batch;
    if (batch.closing) {
      throw new PlatformError('conflict', `batch ${id} is ending (${batch.closing})`, { current: batchView(batch) });
    }
    const written = await deps.batches.update(tenant, moved(batch, 'cancelling', deps.now()));
    if (written) return written;
    // The runner wrote meanwhile: read it again.
  }
}

/** What the runner needs: the batch API's ports, the tenants, and the chat core's (its lines are model calls like any). */
export interface BatchRunnerDeps extends BatchDeps, Omit<ChatDeps, 'ledger' | 'catalog'> {
  readonly registry: Pick<TenantRegistry, 'getTenant'>;
  /** Bedrock batch inference: absent, every batch runs on demand. */
  readonly batchInference?: BatchInference;
  /** A silo plane's one tenant; absent in the pool. */
  readonly siloTenantId?: string;
}

/** What one step of a batch's runner did. */
export type BatchStepOutcome =
  | 'ran'
  | 'waiting'
  | 'ended'
  | 'dropped: tenant not active'
  | 'dropped: tenant served by its silo'
  | 'dropped: no such batch'
  | 'dropped: ended before'
  | 'dropped: lines run by another step'
  | 'paused: tenant suspended';

/** A write lost to another: decided again on the batch as it is now. */
type Lost = 'lost';

/**
 * One step of a batch, as the work queue delivers it: its next lines run (a minute's share of the
 * tenant's rate limits at most, as many as the time left allows), written, and the next step queued;
 * or, when its lines are done, it expired or was cancelled, its output and error files written and
 * its usage settled. Every write is conditional on the batch as read: a step delivered twice, or
 * racing a cancel, never runs a line twice into the batch or bills it twice.
 */
export async function runBatchStep(
  deps: BatchRunnerDeps,
  ref: BatchJobRef,
  remainingMs: () => number,
): Promise<BatchStepOutcome> {
  const record = await deps.registry.getTenant(ref.tenantId);
  // Offboarded or being offboarded: its data (this batch too) is purged, never written again.
  if (!record || record.status === 'offboarded' || record.status === 'offboarding') return 'dropped: tenant not active';
  // Moving or moved to its silo: the batch goes with the tenant's data, and runs there.
  if (!servedHere(record, deps.siloTenantId)) return 'dropped: tenant served by its silo';
  // Its lines run as its submitter, with the tenant as it is now; no limits below the tenant (the
  // batch was admitted whole), no response cache of the live traffic's.
  const { tenantId, tier, limits, auditPrompts, placements, inferenceProfiles, routing, piiRedaction } = actingFor(
    record,
    RUNNER,
  );
  const as = (principal: TenantContext['principal']): TenantContext =>
    Object.freeze({
      tenantId,
      tier,
      principal,
      limits,
      auditPrompts,
      placements,
      ...(inferenceProfiles && { inferenceProfiles }),
      ...(routing && { routing }),
      ...(piiRedaction && { piiRedaction }),
    });
  // A write that lost to another (a cancel, say) is decided again on the batch as it is now.
  for (let round = 0; round < MAX_STEP_ROUNDS; round++) {
    const batch = await deps.batches.get(as({ type: 'user', id: RUNNER }), ref.batchId);
    if (!batch) return 'dropped: no such batch';
    if (isEnding(batch.status)) {
      // A step that ended it and crashed before its clean-up left its parts: they go now.
      await deps.files.deleteParts(as(batch.principal), batch.id);
      return 'dropped: ended before';
    }
    const tenant = as(batch.principal);
    const closing = closingOf(batch, deps.now());
    const outcome = closing
      ? await endBatch(deps, tenant, batch, closing)
      : record.status === 'suspended'
        ? await requeue(deps, ref, SUSPENDED_WAIT_SECONDS).then(() => 'paused: tenant suspended' as const)
        : await runNext(deps, tenant, batch, ref, remainingMs);
    if (outcome !== 'lost') return outcome;
  }
  throw new Error(`batch ${ref.batchId} kept changing: its step is delivered again`);
}

/**
 * How the batch ends, if it is to end now: its lines all run, cancelled, or past its window. A
 * Bedrock job that was started is stopped and its output collected first (its records may have run).
 */
function closingOf(batch: BatchRecord, nowMs: number): Ending | undefined {
  if (batch.closing) return batch.closing;
  const stopping = stoppingOf(batch, nowMs);
  const { job } = batch;
  // A job started (or, every record prepared, perhaps started by a step that crashed before it wrote
  // so: starting it again is the same job, by its client token) is stopped and collected first.
  const started = job?.phase === 'preparing' ? batch.next >= batch.total : job?.phase !== 'collected';
  if (job && started) return undefined;
  const done = job ? job.phase === 'collected' : batch.status === 'finalizing' || batch.next >= batch.total;
  // A job Bedrock failed that answered nothing fails its batch (its reason in the batch's errors).
  const jobFailed = job?.ended?.startsWith('Failed') && batch.completed === 0;
  return stopping ?? (done ? (jobFailed ? 'failed' : 'completed') : undefined);
}

/** How a batch is to stop before its lines all ran, if it is: cancelled, or past its window. */
function stoppingOf(batch: BatchRecord, nowMs: number): 'cancelled' | 'expired' | undefined {
  if (batch.status === 'cancelling') return 'cancelled';
  return nowMs >= batch.times.expiresAt * 1000 ? 'expired' : undefined;
}

async function requeue(deps: Pick<BatchDeps, 'queue'>, ref: BatchJobRef, delaySeconds = 0) {
  await deps.queue.enqueue([{ kind: 'batch', tenantId: ref.tenantId, batchId: ref.batchId }], { delaySeconds });
}

/** One line's outcome: its output line, and what it used (for the batch's settle). */
export interface BatchLineResult {
  readonly output: string;
  readonly ok: boolean;
  /** The provider could not take it now (throttled, unavailable): run again later, not failed. */
  readonly retry: boolean;
  readonly used: readonly BatchUsage[];
}

/**
 * The batch's next step: its start (on demand, or as one Bedrock job when it can: `jobPlan`), then
 * its lines on demand, or its job's phases. A batch whose input file was deleted before its lines
 * all ran fails.
 */
async function runNext(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  read: BatchRecord,
  ref: BatchJobRef,
  remainingMs: () => number,
): Promise<BatchStepOutcome | Lost> {
  let lines: BatchLine[];
  try {
    lines = await inputLines(deps, tenant, read.inputFileId);
  } catch (error) {
    if (!(error instanceof PlatformError && error.code === 'not_found')) throw error;
    return endBatch(deps, tenant, read, 'failed', {
      code: 'input_file_deleted',
      message: `the input file ${read.inputFileId} was deleted before every line ran`,
    });
  }
  let batch = read;
  if (batch.status === 'validating') {
    const plan = deps.batchInference && jobPlan(jobCodecDeps(deps), tenant, lines);
    const started = await deps.batches.update(tenant, {
      ...moved(batch, 'in_progress', deps.now()),
      ...(plan && { job: { phase: 'preparing', model: plan.model.name, records: 0, collected: 0 } }),
    });
    if (!started) return 'lost';
    batch = started;
  }
  return batch.job
    ? jobStep(deps, tenant, batch, lines, ref, remainingMs)
    : runLines(deps, tenant, batch, lines, ref, remainingMs);
}

/** The codec's view of the runner: the catalog at batch prices, the tier's safety. */
function jobCodecDeps(deps: BatchRunnerDeps): JobCodecDeps {
  const { piiRedaction, guardrails, contentGuardrail, routing } = deps;
  return { catalog: atBatchPrices(deps.catalog), piiRedaction, guardrails, contentGuardrail, routing };
}

/** Runs the batch's next lines on demand: a minute's share of the tenant's rate limits at most. */
async function runLines(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  batch: BatchRecord,
  lines: readonly BatchLine[],
  ref: BatchJobRef,
  remainingMs: () => number,
): Promise<BatchStepOutcome | Lost> {
  const nowMs = deps.now();
  const minute = minuteWindow(nowMs);
  const used = batch.window?.minute === minute ? batch.window : { minute, requests: 0, tokens: 0 };
  const share = (limit: number) => Math.max(1, Math.floor(limit * BATCH_RATE_SHARE));
  const catalog = atBatchPrices(deps.catalog);
  // This minute's share of requests and tokens; a line larger than the whole share runs alone.
  const picked: number[] = [];
  let tokens = used.tokens;
  for (let index = batch.next; index < batch.total; index++) {
    if (used.requests + picked.length >= share(tenant.limits.requestsPerMinute)) break;
    const estimate = lineEstimate(deps, catalog, tenant, lines[index]).tokens;
    if (tokens + estimate > share(tenant.limits.tokensPerMinute) && (picked.length > 0 || tokens > 0)) break;
    tokens += estimate;
    picked.push(index);
  }
  if (picked.length === 0) {
    await requeue(deps, ref, secondsUntilNextMinute(nowMs));
    return 'waiting';
  }
  const results = await whileTimeLeft(picked.length, remainingMs, (slot) => {
    const signal = AbortSignal.timeout(modelCallBudgetMs(remainingMs()));
    return runLine(deps, tenant, batch, lines[picked[slot]], picked[slot], signal);
  });
  // Lines are written in order up to the first the provider could not take: it and those after run again.
  const retryAt = results.findIndex((result) => result.retry);
  const done = retryAt === -1 ? results : results.slice(0, retryAt);
  const from = batch.next;
  const part = await keepPart(deps, tenant, batch.id, 'lines', from, outputsOf(done));
  const window = {
    minute,
    requests: used.requests + done.length,
    tokens:
      used.tokens +
      done.reduce((sum, result) => sum + result.used.reduce((s, u) => s + u.inputTokens + u.outputTokens, 0), 0),
  };
  const written = await recordLines(
    deps,
    tenant,
    batch,
    (now) => now.next === from,
    () => ({ next: from + done.length, window }),
    done,
    { lines: part },
  );
  if (!written) return 'dropped: lines run by another step';
  if (retryAt !== -1) {
    await requeue(deps, ref, BACKOFF_SECONDS);
    return 'ran';
  }
  const closing = closingOf(written, deps.now());
  if (closing) return endBatch(deps, tenant, written, closing);
  await requeue(deps, ref);
  return 'ran';
}

/**
 * Runs `task` on items 0..`count`-1, `LINE_CONCURRENCY` at a time, in order; none starts once the
 * step has too little time left (those not started are left to the next step, the results cut
 * before them).
 */
async function whileTimeLeft<T>(
  count: number,
  remainingMs: () => number,
  task: (item: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  let started = 0;
  const worker = async () => {
    while (started < count && remainingMs() > STEP_ROOM_MS) {
      const item = started++;
      results[item] = await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LINE_CONCURRENCY, count) }, worker));
  return results.slice(0, started);
}

/** One line, through the same metered core as the live route, against a ledger that counts what it used. */
async function runLine(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  batch: BatchRecord,
  line: BatchLine,
  index: number,
  signal: AbortSignal,
): Promise<BatchLineResult> {
  const used = new Map<string, BatchUsage>();
  const lineDeps = { ...deps, catalog: atBatchPrices(deps.catalog), ledger: lineLedger(used) };
  const requestId = `${batch.id}-${index}`;
  const outputLine = lineOutput(batch, line, index);
  try {
    const body =
      batch.endpoint === '/v1/embeddings'
        ? await createEmbeddings(lineDeps, tenant, embeddingsRequestSchema.parse(line.body), { requestId, signal })
        : await completeChat(lineDeps, tenant, batchChatRequest(line.body), { requestId, signal });
    const output = outputLine({ status_code: 200, request_id: requestId, body });
    return { output, ok: true, retry: false, used: [...used.values()] };
  } catch (error) {
    const { code, message } =
      error instanceof PlatformError
        ? error
        : error instanceof z.ZodError
          ? { code: 'invalid_request' as const, message: zodMessage(error) }
          : { code: 'internal_error' as const, message: 'internal error' };
    const retry =
      error instanceof PlatformError &&
      (error.status === 429 || (error.code === 'upstream_unavailable' && error.upstream !== 'context_length'));
    const output = outputLine({ status_code: statusOf(code), request_id: requestId, body: errorBody(code, message) });
    return { output, ok: false, retry, used: [...used.values()] };
  }
}

/** How often a running Bedrock job is looked at; one being stopped, sooner. */
const JOB_POLL_SECONDS = 60;
const JOB_STOPPING_POLL_SECONDS = 10;
/** A job in these states runs no more records: its output is collected. */
const JOB_ENDED = new Set(['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired']);

/** A batch's Bedrock job, a phase a step: its records prepared, the job started and followed, its output collected. */
async function jobStep(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  batch: BatchRecord,
  lines: readonly BatchLine[],
  ref: BatchJobRef,
  remainingMs: () => number,
): Promise<BatchStepOutcome | Lost> {
  const job = batch.job as NonNullable<BatchRecord['job']>;
  const inference = deps.batchInference;
  if (!inference) throw new Error(`batch ${batch.id} runs as a Bedrock job, and this plane has no batch inference`);
  const codec = jobCodecDeps(deps);
  const plan = planFor(codec.catalog, job.model);
  const step = { deps, tenant, batch, lines, ref, remainingMs, codec, plan, inference };
  if (job.phase === 'preparing') return prepareJob(step);
  if (job.phase === 'running') return followJob(step);
  return collectJob(step);
}

interface JobStep {
  readonly deps: BatchRunnerDeps;
  readonly tenant: TenantContext;
  readonly batch: BatchRecord;
  readonly lines: readonly BatchLine[];
  readonly ref: BatchJobRef;
  readonly remainingMs: () => number;
  readonly codec: JobCodecDeps;
  readonly plan: JobPlan;
  readonly inference: BatchInference;
}

const jobOf = (batch: BatchRecord) => batch.job as NonNullable<BatchRecord['job']>;

/**
 * Reads the next lines into job records (PII redacted, input screened by the tier's guardrail): a
 * line that cannot run fails alone, unbilled. Once every line is read, starts the job.
 */
async function prepareJob(step: JobStep): Promise<BatchStepOutcome | Lost> {
  const { deps, tenant, batch, lines, ref } = step;
  const from = batch.next;
  if (from >= batch.total) return startJob(step);
  const outcomes = await whileTimeLeft(batch.total - from, step.remainingMs, (k) =>
    jobRecord(step.codec, tenant, step.plan, lines[from + k], from + k),
  );
  const records = outcomes.flatMap((outcome) => ('record' in outcome ? [outcome.record] : []));
  const failures = outcomes.flatMap((outcome, k): BatchLineResult[] => {
    if (!('failure' in outcome)) return [];
    const { status, code, message } = outcome.failure;
    const response = { status_code: status, request_id: `${batch.id}-${from + k}`, body: errorBody(code, message) };
    return [{ output: lineOutput(batch, lines[from + k], from + k)(response), ok: false, retry: false, used: [] }];
  });
  const kept = {
    records: await keepPart(deps, tenant, batch.id, 'records', from, records),
    lines: await keepPart(deps, tenant, batch.id, 'lines', from, outputsOf(failures)),
  };
  const to = from + outcomes.length;
  const written = await recordLines(
    deps,
    tenant,
    batch,
    (now) => now.next === from && now.job?.phase === 'preparing',
    (now) => ({ next: to, job: { ...jobOf(now), records: jobOf(now).records + records.length } }),
    failures,
    kept,
  );
  if (!written) return 'dropped: lines run by another step';
  if (to < batch.total) {
    await requeue(deps, ref);
    return 'ran';
  }
  return startJob({ ...step, batch: written });
}

/**
 * Starts the job over the prepared records. Too few for a job (lines that failed their reading took
 * it under Bedrock's least): the batch starts again on demand, its parts no longer listed (nothing
 * ran, or was billed, yet) but left to its clean-up: a cancel that wins this write ends the batch
 * reading them.
 */
async function startJob(step: JobStep): Promise<BatchStepOutcome | Lost> {
  const { deps, tenant, batch, ref, inference, plan } = step;
  const job = jobOf(batch);
  if (job.records < BEDROCK_BATCH_MIN_RECORDS) {
    // Stopping: it ends here, nothing run, the lines that failed their reading kept.
    const stopping = stoppingOf(batch, deps.now());
    if (stopping) return endBatch(deps, tenant, batch, stopping);
    const { job: _dropped, ...onDemand } = batch;
    const written = await deps.batches.update(tenant, {
      ...onDemand,
      next: 0,
      parts: { lines: [], records: [] },
      completed: 0,
      failed: 0,
      usage: [],
    });
    if (!written) return 'lost';
    await requeue(deps, ref);
    return 'ran';
  }
  const input = (await deps.files.parts(tenant, batch.id, 'records', batch.parts.records)).map((part) =>
    Buffer.from(part),
  );
  const { inputUri, outputUri } = await deps.files.putJobInput(tenant, batch.id, Buffer.concat(input));
  let arn: string;
  try {
    // Its name is its client token: a start tried again after a crash is the same job.
    arn = await inference.start({
      jobName: batch.id.replace('_', '-'),
      tenantId: tenant.tenantId,
      modelId: plan.model.bedrockModelId,
      inputUri,
      outputUri,
    });
  } catch (error) {
    if ((error as Error).name !== 'ValidationException') throw error;
    return endBatch(deps, tenant, batch, 'failed', {
      code: 'job_refused',
      message: `Bedrock refused the batch's job: ${(error as Error).message}`.slice(0, 500),
    });
  }
  // Recorded on the batch as it is now: a cancel that came meanwhile finds the job to stop (it runs, and is billed, until stopped).
  const written = await recordLines(
    deps,
    tenant,
    batch,
    (now) => now.job?.phase === 'preparing',
    (now) => ({ job: { ...jobOf(now), phase: 'running', arn } }),
    [],
    {},
  );
  if (!written) return 'dropped: lines run by another step';
  await requeue(deps, ref, JOB_POLL_SECONDS);
  return 'ran';
}

/** Looks at the job: stops it when the batch is cancelled or expired, collects its output once it ends. */
async function followJob(step: JobStep): Promise<BatchStepOutcome | Lost> {
  const { deps, tenant, batch, ref, inference } = step;
  const job = jobOf(batch);
  const arn = job.arn as string;
  const state = await inference.state(arn).catch((error: Error) => {
    // Gone (a local Bedrock restarted, say): what it wrote is collected, the rest reported not run.
    if (error.name === 'ResourceNotFoundException') return { status: 'Failed' as const, message: 'the job is gone' };
    throw error;
  });
  if (!JOB_ENDED.has(state.status)) {
    const stopping = batch.status === 'cancelling' || deps.now() >= batch.times.expiresAt * 1000;
    if (stopping && state.status !== 'Stopping') await inference.stop(arn);
    await requeue(deps, ref, stopping ? JOB_STOPPING_POLL_SECONDS : JOB_POLL_SECONDS);
    return 'waiting';
  }
  const ended = state.status === 'Completed' ? undefined : [state.status, state.message].filter(Boolean).join(': ');
  const written = await deps.batches.update(tenant, {
    ...batch,
    job: { ...job, phase: 'collecting', ...(ended && { ended }) },
  });
  if (!written) return 'lost';
  return collectJob({ ...step, batch: written });
}

/**
 * Reads the job's output records into output lines, each billed at the batch price of what it used
 * (its answer screened by the tier's guardrail: a refusal is billed, as on the live route), a part
 * a step; once every record is read, the batch ends.
 */
async function collectJob(step: JobStep): Promise<BatchStepOutcome | Lost> {
  const { deps, tenant, batch, lines, ref } = step;
  const rows = (await deps.files.jobOutputs(tenant, batch.id))
    .map((part) => new TextDecoder().decode(part))
    .join('\n')
    .split('\n')
    .filter((row) => row.trim() !== '');
  const from = jobOf(batch).collected;
  const created = Math.floor(deps.now() / 1000);
  const read = await whileTimeLeft(rows.length - from, step.remainingMs, async (k) => {
    const index = recordLine(rows[from + k]);
    const line = index === undefined ? undefined : lines[index];
    // A record that cannot be read, or names no line of the batch, answers nothing: its line is reported not run.
    if (index === undefined || !line) return undefined;
    const answer = { requestId: `${batch.id}-${index}`, created };
    return jobOutputLine(step.codec, tenant, step.plan, line, rows[from + k], answer, lineOutput(batch, line, index));
  });
  const results = read.filter((result) => result !== undefined);
  const part = await keepPart(deps, tenant, batch.id, 'lines', batch.total + from, outputsOf(results));
  const to = from + read.length;
  const written = await recordLines(
    deps,
    tenant,
    batch,
    (now) => now.job?.phase === 'collecting' && now.job.collected === from,
    (now) => ({ job: { ...jobOf(now), collected: to, phase: to >= rows.length ? 'collected' : 'collecting' } }),
    results,
    { lines: part },
  );
  if (!written) return 'dropped: lines run by another step';
  const closing = closingOf(written, deps.now());
  if (closing) return endBatch(deps, tenant, written, closing);
  await requeue(deps, ref);
  return 'ran';
}

/** A line's id in the output and error files: unique, from the batch's id and the line's place. */
function lineId(batch: BatchRecord, index: number): string {
  return `batch_req_${batch.id.slice('batch_'.length)}_${index}`;
}

/** The line's output line, answered `response` (OpenAI's format: `custom_id` kept). */
function lineOutput(batch: BatchRecord, line: BatchLine, index: number) {
  return (response: unknown) =>
    JSON.stringify({ id: lineId(batch, index), custom_id: line.custom_id, response, error: null });
}

/** A chat line's request: the route's own, never streamed (a batch's answer is its output line). */
function batchChatRequest(body: Readonly<Record<string, unknown>>) {
  const request = chatRequestSchema.parse(body);
  if (request.stream) throw new PlatformError('invalid_request', 'stream: a batch line is answered whole');
  return request;
}

function zodMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}`;
}

/**
 * The ledger a batch's lines run against: the batch's reservation admitted them all at submission,
 * so a line is admitted without a write, and what it used is counted for the batch's one settle.
 */
function lineLedger(used: Map<string, BatchUsage>): Ledger {
  const admitted = (
    tenant: TenantContext,
    request: { requestId: string; model: string; estimate: Reservation['estimate']; nowMs: number },
  ): Reservation => ({
    tenantId: tenant.tenantId,
    tier: tenant.tier,
    requestId: request.requestId,
    model: request.model,
    month: monthKey(request.nowMs),
    estimate: request.estimate,
    reservedAtMs: request.nowMs,
    shard: 0,
    recordShard: 0,
  });
  const notOnALine = () => {
    throw new Error("not on a batch line's path");
  };
  return {
    reserve: async (tenant, request) => admitted(tenant, request),
    reserveScope: async () => notOnALine(),
    settle: async (reservation, usage) => {
      for (const part of usageByModel(reservation, usage)) {
        const sum = used.get(part.model);
        used.set(part.model, {
          model: part.model,
          requests: (sum?.requests ?? 0) + 1,
          inputTokens: (sum?.inputTokens ?? 0) + part.inputTokens,
          outputTokens: (sum?.outputTokens ?? 0) + part.outputTokens,
          costNanoUsd: (sum?.costNanoUsd ?? 0) + part.costNanoUsd,
        });
      }
    },
    release: async () => undefined,
    scopeUsage: async () => notOnALine(),
    usage: async () => notOnALine(),
    deleteAll: async () => notOnALine(),
  };
}

/** Adds `usage` to a batch's usage by model. */
function addUsage(total: readonly BatchUsage[], usage: readonly BatchUsage[]): BatchUsage[] {
  const byModel = new Map(total.map((part) => [part.model, part]));
  for (const part of usage) {
    const sum = byModel.get(part.model);
    byModel.set(part.model, {
      model: part.model,
      requests: (sum?.requests ?? 0) + part.requests,
      inputTokens: (sum?.inputTokens ?? 0) + part.inputTokens,
      outputTokens: (sum?.outputTokens ?? 0) + part.outputTokens,
      costNanoUsd: (sum?.costNanoUsd ?? 0) + part.costNanoUsd,
    });
  }
  return [...byModel.values()];
}

/**
 * Keeps a step's rows (output lines, or job records) as a part of their own, named by where they
 * start and a name of the step's: a duplicate of the step, running the same lines, writes another
 * part, and only the one its record lists is ever read. Undefined when there are none.
 */
async function keepPart(
  deps: Pick<BatchDeps, 'files'>,
  tenant: TenantContext,
  batchId: string,
  section: BatchPartSection,
  from: number,
  rows: readonly string[],
): Promise<string | undefined> {
  if (rows.length === 0) return undefined;
  const name = `${from}-${randomBytes(6).toString('hex')}`;
  await deps.files.putPart(
    tenant,
    batchId,
    section,
    name,
    new TextEncoder().encode(rows.map((row) => `${row}\n`).join('')),
  );
  return name;
}

const outputsOf = (done: readonly BatchLineResult[]) => done.map((result) => result.output);

/**
 * Records a step's lines (their counts, usage and the parts it kept) and where it got to (`advance`)
 * on the batch as it is now (a cancel may have come meanwhile); undefined when another step got there
 * first (`at` no longer holds: a duplicate delivery, whose lines stand, these dropped), or began to end
 * the batch (its files and settle are of the lines recorded before).
 */
async function recordLines(
  deps: Pick<BatchDeps, 'batches'>,
  tenant: TenantContext,
  read: BatchRecord,
  at: (batch: BatchRecord) => boolean,
  advance: (batch: BatchRecord) => Partial<BatchRecord>,
  done: readonly BatchLineResult[],
  kept: Partial<Record<BatchPartSection, string>>,
): Promise<BatchRecord | undefined> {
  let batch: BatchRecord | undefined = read;
  while (batch && at(batch) && !isEnding(batch.status) && !batch.closing) {
    const parts = batch.parts;
    const written = await deps.batches.update(tenant, {
      ...batch,
      ...advance(batch),
      parts: {
        lines: kept.lines ? [...parts.lines, kept.lines] : parts.lines,
        records: kept.records ? [...parts.records, kept.records] : parts.records,
      },
      completed: batch.completed + done.filter((result) => result.ok).length,
      failed: batch.failed + done.filter((result) => !result.ok).length,
      usage: addUsage(
        batch.usage,
        done.flatMap((result) => result.used),
      ),
    });
    if (written) return written;
    batch = await deps.batches.get(tenant, read.id);
  }
  return undefined;
}

/**
 * Ends the batch as `ending`: its output and error files written (lines never run listed in the
 * error file as expired or cancelled), what its lines used settled against its reservation at
 * batch prices (the rest of the estimate given back), then its last status. Each step may run
 * again after a crash: the files' ids are chosen once, the settle is idempotent, and every write
 * is conditional on the batch as read.
 */
async function endBatch(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  read: BatchRecord,
  ending: Ending,
  error?: { code: string; message: string },
): Promise<BatchStepOutcome | Lost> {
  let batch = read;
  if (!batch.closing) {
    const nowMs = deps.now();
    const written = await deps.batches.update(tenant, {
      ...(ending === 'completed' ? moved(batch, 'finalizing', nowMs) : batch),
      closing: ending,
      outputFileId: newFileId(nowMs),
      errorFileId: newFileId(nowMs),
      ...(error && { errors: [error] }),
      ...(!error &&
        ending === 'failed' &&
        batch.job?.ended && { errors: [{ code: 'job_failed', message: batch.job.ended }] }),
    });
    if (!written) return 'lost';
    batch = written;
  }
  const files = await writeOutputFiles(deps, tenant, batch, ending);
  if (batch.reservation) await settleBatch(deps.ledger, [batch.reservation, ...(batch.scoped ?? [])], batch.usage);
  const {
    reservation: _settled,
    scoped: _scopesSettled,
    closing: _closing,
    outputFileId,
    errorFileId,
    ...rest
  } = batch;
  const ended = await deps.batches.update(tenant, {
    ...moved(rest as BatchRecord, ending, deps.now()),
    ...(files.output && { outputFileId }),
    ...(files.errors && { errorFileId }),
    // Lines a finished job left out failed; those a cancel or expiry stopped are only counted in `total`.
    ...((ending === 'completed' || ending === 'failed') && { failed: batch.failed + files.notRun }),
  });
  if (!ended) return 'lost';
  await deps.files.deleteParts(tenant, batch.id);
  return 'ended';
}

/** Bills what a batch's lines used, each model at its batch price, and gives the rest of its estimate back. */
async function settleBatch(ledger: Ledger, held: readonly Reservation[], usage: readonly BatchUsage[]): Promise<void> {
  // Each settle and release is idempotent by the batch's id: a step that fails part-way settles again.
  if (usage.length === 0) {
    await Promise.all(held.map((each) => ledger.release(each)));
    return;
  }
  const total = (field: 'inputTokens' | 'outputTokens' | 'costNanoUsd') =>
    usage.reduce((sum, part) => sum + part[field], 0);
  const actual = {
    inputTokens: total('inputTokens'),
    outputTokens: total('outputTokens'),
    costNanoUsd: total('costNanoUsd'),
    byModel: usage,
  };
  await Promise.all(held.map((each) => ledger.settle(each, actual)));
}

/**
 * The output file (lines answered 200) and the error file (every other line, and every line that
 * never ran: expired, cancelled, or left out by its Bedrock job), each only if it has lines; and
 * how many lines never ran.
 */
async function writeOutputFiles(
  deps: BatchRunnerDeps,
  tenant: TenantContext,
  batch: BatchRecord,
  ending: Ending,
): Promise<{ output: boolean; errors: boolean; notRun: number }> {
  const ran = (await deps.files.parts(tenant, batch.id, 'lines', batch.parts.lines))
    .map((part) => new TextDecoder().decode(part))
    .join('')
    .split('\n')
    .filter((row) => row !== '');
  const output: string[] = [];
  const errors: string[] = [];
  const answered = new Set<string>();
  for (const row of ran) {
    const { custom_id, response } = JSON.parse(row) as { custom_id: string; response: { status_code: number } };
    answered.add(custom_id);
    (response.status_code === 200 ? output : errors).push(row);
  }
  const lines = answered.size < batch.total ? await inputLines(deps, tenant, batch.inputFileId).catch(() => []) : [];
  const code = { expired: 'batch_expired', cancelled: 'batch_cancelled', failed: 'batch_failed', completed: 'not_run' }[
    ending
  ];
  const message =
    ending === 'completed'
      ? `this line was not run: ${batch.job?.ended ?? 'its job left it out'}`
      : `this line was not run: the batch ${ending === 'failed' ? 'failed' : `was ${ending}`} first`;
  let notRun = 0;
  for (const [index, line] of lines.entries()) {
    if (answered.has(line.custom_id)) continue;
    notRun++;
    errors.push(
      JSON.stringify({ id: lineId(batch, index), custom_id: line.custom_id, response: null, error: { code, message } }),
    );
  }
  const put = (id: string | undefined, rows: string[], name: string) =>
    id && rows.length > 0
      ? deps.files.put(
          tenant,
          { id, filename: `${batch.id}_${name}.jsonl`, purpose: 'batch_output' },
          new TextEncoder().encode(rows.map((row) => `${row}\n`).join('')),
        )
      : undefined;
  await Promise.all([put(batch.outputFileId, output, 'output'), put(batch.errorFileId, errors, 'error')]);
  return { output: output.length > 0, errors: errors.length > 0, notRun };
}
