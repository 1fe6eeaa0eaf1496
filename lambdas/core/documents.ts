import { randomUUID } from 'node:crypto';
import type { ModelCatalog } from '../../contract/catalog';
import type { RetrievalSettings } from '../../contract/environment';
import type { Tier } from '../../contract/tenancy';
import { bedrockModelIdFor, type ResolvedModel, resolveModel } from './catalog';
import { PlatformError } from './errors';
import { MeteredCall, type ModelCall, metered, reserveCall } from './metering';
import { type PiiPolicy, piiPolicyFor, redact } from './pii';
import type {
  DocumentRecord,
  DocumentStore,
  Embedder,
  IngestJob,
  IngestJobRef,
  IngestQueue,
  Ledger,
  MeteringMetrics,
  Passage,
  TenantRegistry,
  VectorIndex,
} from './ports';
import { chunkText, type DocumentRequest, documentIdSchema } from './retrieval';
import { contextFor, servedHere, type TenantContext } from './tenant';
import { countTokens } from './tokens';

export interface RetrievalDeps {
  readonly catalog: ModelCatalog;
  readonly retrieval: RetrievalSettings;
  readonly ledger: Ledger;
  readonly metrics: MeteringMetrics;
  readonly embedder: Embedder;
  readonly vectors: VectorIndex;
  readonly documents: DocumentStore;
  readonly queue: IngestQueue;
  readonly now: () => number;
  /** What each tier's text is cleaned of before a shared model (the embedding model too) reads it. */
  readonly piiRedaction?: Readonly<Record<Tier, PiiPolicy>>;
}

type EmbedDeps = Pick<
  RetrievalDeps,
  'catalog' | 'retrieval' | 'ledger' | 'metrics' | 'embedder' | 'now' | 'piiRedaction'
>;

/**
 * How long a queued job's reservation waits for the worker before it counts as abandoned: SQS hides
 * a received job for six worker timeouts and tries it three times, and a backlog adds its own wait.
 */
const QUEUED_JOB_HOLD_MS = 6 * 3600 * 1000;

/** What embedding `texts` is reserved at: every input token, no output. */
function embeddingEstimate(texts: readonly string[]) {
  return { inputTokens: texts.reduce((sum, text) => sum + countTokens(text), 0), outputTokens: 0 };
}

const embed = (
  deps: EmbedDeps,
  tenant: TenantContext,
  model: ResolvedModel<'embedding'>,
  texts: readonly string[],
  signal?: AbortSignal,
) =>
  // The shared embedding model reads the text cleaned of PII; the tenant's own index keeps it whole.
  deps.embedder.embed(tenant, {
    modelId: bedrockModelIdFor(tenant, model),
    texts: redact(texts, piiPolicyFor(deps, tenant)).texts,
    dimensions: model.dimensions,
    signal,
  });

/** Embeds texts with the retrieval model, metered like any model call. */
export async function embedTexts(
  deps: EmbedDeps,
  tenant: TenantContext,
  texts: readonly string[],
  { requestId, signal, auditAtSettle, user }: ModelCall & { readonly user?: string },
  modelName = deps.retrieval.embeddingModel,
) {
  const model = resolveModel(deps.catalog, modelName, 'embedding');
  // Refused here as the caller's 400: the model would refuse it too, after the tokens were reserved.
  const tooLong = texts.findIndex(
    (text) => text.length > model.maxInputChars || countTokens(text) > model.maxInputTokens,
  );
  if (tooLong >= 0) {
    throw new PlatformError(
      'invalid_request',
      `input ${tooLong} may exceed the limits of ${model.name} (${model.maxInputTokens} tokens, ${model.maxInputChars} characters): split it`,
    );
  }
  const call = { requestId, model, estimate: embeddingEstimate(texts), nowMs: deps.now(), signal, auditAtSettle, user };
  return metered(deps, tenant, call, () => embed(deps, tenant, model, texts, signal));
}

/**
 * Reserves every job's embedding tokens when the document is accepted, so a tenant at its limit is
 * refused (429) rather than queued; the worker settles each job's reservation, or releases it when
 * it drops the job. All or nothing: a refusal gives back the jobs reserved before it.
 */
async function reserveJobs(deps: EmbedDeps, tenant: TenantContext, jobs: readonly IngestJob[]): Promise<IngestJob[]> {
  const model = resolveModel(deps.catalog, deps.retrieval.embeddingModel, 'embedding');
  const reserved: IngestJob[] = [];
  try {
    for (const job of jobs) {
      const reservation = await reserveCall(deps.ledger, tenant, {
        requestId: `${job.requestId}:${job.batch}`,
        model,
        estimate: embeddingEstimate(job.chunks.map((chunk) => chunk.text)),
        nowMs: deps.now(),
        holdMs: QUEUED_JOB_HOLD_MS,
      });
      reserved.push({ ...job, reservation });
    }
  } catch (error) {
    await Promise.all(reserved.map((job) => job.reservation && deps.ledger.release(job.reservation)));
    throw error;
  }
  return reserved;
}

/**
 * Chunks a document and replaces any earlier version of the same id. The new version is written
 * beside the old one and the old one removed only once the new one is complete, so a refused or
 * failed upsert leaves the previous version retrievable. A small document is embedded and indexed
 * now (`indexed`); a large one is recorded as `queued` and its chunks go to the ingest queue in jobs
 * of `syncMaxChunks`, which the worker indexes.
 */
export async function ingestDocument(
  deps: RetrievalDeps,
  tenant: TenantContext,
  request: DocumentRequest,
  call: ModelCall,
): Promise<DocumentRecord> {
  const { requestId } = call;
  if (Buffer.byteLength(request.text) > deps.retrieval.maxDocumentBytes) {
    throw new PlatformError('payload_too_large', `documents are limited to ${deps.retrieval.maxDocumentBytes} bytes`);
  }
  if (!/\S/.test(request.text)) throw new PlatformError('invalid_request', 'text: the document has no text to index');
  const id = request.id ?? `doc_${randomUUID().replaceAll('-', '')}`;
  const version = randomUUID();
  const chunks = chunkText(request.text, deps.retrieval.chunkTokens, deps.retrieval.chunkOverlapTokens);
  const size = deps.retrieval.syncMaxChunks;
  let jobs: IngestJob[] = [];
  for (let batch = 0; batch * size < chunks.length; batch++) {
    const part = chunks.slice(batch * size, (batch + 1) * size).map(({ chunk, text }) => ({ chunk, text }));
    jobs.push({
      tenantId: tenant.tenantId,
      principal: tenant.principal,
      documentId: id,
      version,
      requestId,
      batch,
      title: request.title,
      metadata: request.metadata,
      chunks: part,
    });
  }
  const queued = jobs.length > 1;
  if (queued) jobs = await reserveJobs(deps, tenant, jobs);
  else await indexChunks(deps, tenant, jobs[0], call.signal);
  const record: DocumentRecord = {
    id,
    version,
    title: request.title,
    chunks: chunks.length,
    indexedChunks: queued ? 0 : chunks.length,
    tokens: chunks.reduce((sum, chunk) => sum + chunk.tokens, 0),
    metadata: request.metadata,
    status: queued ? 'queued' : 'indexed',
    createdAt: new Date(deps.now()).toISOString(),
  };
  if (queued) await deps.documents.putJobs(tenant, jobs);
  await deps.documents.put(tenant, record);
  if (queued) await deps.queue.enqueue(jobs.map(jobRef));
  else await deps.vectors.deleteDocument(tenant, id, { except: version });
  return record;
}

/** Embeds (metered: against the job's own reservation when it was queued) and indexes one job's chunks. */
async function indexChunks(
  deps: EmbedDeps & Pick<RetrievalDeps, 'vectors'>,
  tenant: TenantContext,
  job: IngestJob,
  signal?: AbortSignal,
): Promise<void> {
  const texts = job.chunks.map((chunk) => chunk.text);
  const model = resolveModel(deps.catalog, deps.retrieval.embeddingModel, 'embedding');
  const { vectors } = job.reservation
    ? await new MeteredCall(deps, model, job.reservation, { retriedWhenRefused: true }).run(() =>
        embed(deps, tenant, model, texts, signal),
      )
    : await embedTexts(deps, tenant, texts, { requestId: `${job.requestId}:${job.batch}`, signal });
  await deps.vectors.addChunks(
    tenant,
    { id: job.documentId, version: job.version },
    job.chunks.map((chunk, i) => ({
      documentId: job.documentId,
      chunk: chunk.chunk,
      title: job.title,
      text: chunk.text,
      vector: vectors[i],
      metadata: job.metadata,
    })),
  );
}

export type JobOutcome =
  | 'indexed'
  | 'paused: tenant suspended'
  | 'dropped: tenant not active'
  | 'dropped: tenant served by its silo'
  | 'dropped: stale version'
  | 'dropped: done before';

/** The first wait of a suspended tenant's job, doubled on each wait up to SQS's longest delay. */
const FIRST_PAUSE_SECONDS = 15;
const LONGEST_PAUSE_SECONDS = 900;

/**
 * The worker's part. The job's snapshot of the tenant is not trusted: the tenant is read again. A
 * suspended tenant's job waits: it is queued again with a growing delay, its reservation given
 * back (it is admitted afresh when it runs), until the tenant is active again or offboarded; a job
 * of a tenant that is leaving or gone is dropped, unbilled. A job whose document version is
 * no longer current (deleted or replaced) is dropped before indexing, and what it wrote is removed
 * when the version changed while it ran: a delete wins over in-flight indexing.
 */
export async function indexQueuedJob(
  deps: RetrievalDeps & {
    readonly registry: Pick<TenantRegistry, 'getTenant'>;
    /** A silo plane's one tenant; absent in the pool. */
    readonly siloTenantId?: string;
  },
  ref: IngestJobRef,
  /** Aborts the embedding call before the worker is killed. */
  signal?: AbortSignal,
): Promise<JobOutcome> {
  const record = await deps.registry.getTenant(ref.tenantId);
  // Offboarded: its partitions, this job's chunks and reservation included, are gone already.
  if (!record || record.status === 'offboarded') return 'dropped: tenant not active';
  // Moving or moved to its silo: the job's item and reservation go with the tenant's data, and the
  // silo's queue gets the job; here it is left untouched.
  if (!servedHere(record, deps.siloTenantId)) return 'dropped: tenant served by its silo';
  // The tenant as it is now: a tier change since the upload moves where chunks go.
  const tenant = contextFor(record, ref.principal);
  const job = await deps.documents.getJob(tenant, ref);
  if (record.status === 'suspended' && job) return pauseJob(deps, tenant, job, ref.pauses ?? 0);
  const outcome =
    record.status === 'active' ? await indexCurrentJob(deps, tenant, ref, job, signal) : 'dropped: tenant not active';
  if (outcome !== 'indexed' && job?.reservation) await deps.ledger.release(job.reservation);
  await deps.documents.deleteJob(tenant, ref);
  return outcome;
}

/** Queues the job again, to run after a wait; the job's item keeps its chunks meanwhile. */
async function pauseJob(
  deps: RetrievalDeps,
  tenant: TenantContext,
  job: IngestJob,
  pauses: number,
): Promise<JobOutcome> {
  const { reservation, ...unreserved } = job;
  if (reservation) {
    // Written without it first: a crash in between leaves a job that is admitted when it runs.
    await deps.documents.putJobs(tenant, [unreserved]);
    await deps.ledger.release(reservation);
  }
  const delaySeconds = Math.min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** pauses);
  await deps.queue.enqueue([{ ...jobRef(job), pauses: pauses + 1 }], { delaySeconds });
  return 'paused: tenant suspended';
}

async function indexCurrentJob(
  deps: Omit<RetrievalDeps, 'queue'>,
  tenant: TenantContext,
  ref: IngestJobRef,
  job: IngestJob | undefined,
  signal?: AbortSignal,
): Promise<JobOutcome> {
  const current = await deps.documents.get(tenant, ref.documentId);
  if (current?.version !== ref.version) return 'dropped: stale version';
  // A redelivery of a job that completed: neither embedded nor billed again.
  if (!job || current.indexedBatches?.includes(ref.batch)) return 'dropped: done before';
  await indexChunks(deps, tenant, job, signal);
  const document = { id: ref.documentId, version: ref.version };
  const progress = await deps.documents.recordIndexed(tenant, document, ref.batch, job.chunks.length);
  if (progress === 'stale') {
    // The embedding was used and is billed; what it wrote goes.
    await deps.vectors.deleteDocument(tenant, ref.documentId, { only: ref.version });
    return 'dropped: stale version';
  }
  if (progress === 'complete') await deps.vectors.deleteDocument(tenant, ref.documentId, { except: ref.version });
  return 'indexed';
}

/** The queue message of a job: everything but its content. */
function jobRef(job: IngestJob): IngestJobRef {
  const { tenantId, principal, documentId, version, requestId, batch } = job;
  return { tenantId, principal, documentId, version, requestId, batch };
}

/** The tenant's passages nearest to `query`: its own index, or its own documents in the shared one. */
export async function retrievePassages(
  deps: EmbedDeps & Pick<RetrievalDeps, 'vectors'>,
  tenant: TenantContext,
  request: { query: string; topK: number; filter?: Readonly<Record<string, string | number | boolean>> },
  /** `user`: the end user the request names, whose limits the query's embedding counts against too. */
  call: ModelCall & { readonly user?: string },
): Promise<Passage[]> {
  // Not the request's audit record: the answer comes after the search (or, in a chat, the model's).
  const { vectors } = await embedTexts(deps, tenant, [request.query], {
    requestId: `${call.requestId}:query`,
    signal: call.signal,
    user: call.user,
  });
  return deps.vectors.search(tenant, { vector: vectors[0], topK: request.topK, filter: request.filter });
}

/** A document of the tenant, or 404 for one that does not exist, whoever else may have it. */
export async function getDocument(
  deps: Pick<RetrievalDeps, 'documents'>,
  tenant: TenantContext,
  id: string,
): Promise<DocumentRecord> {
  const record = documentIdSchema.safeParse(id).success ? await deps.documents.get(tenant, id) : undefined;
  if (!record) throw new PlatformError('not_found', 'no such document');
  return record;
}

export async function deleteDocument(
  deps: Pick<RetrievalDeps, 'documents' | 'vectors'>,
  tenant: TenantContext,
  id: string,
) {
  await getDocument(deps, tenant, id);
  // The record first: a job still indexing this version then finds it gone and removes what it wrote.
  await deps.documents.delete(tenant, id);
  const chunks = await deps.vectors.deleteDocument(tenant, id);
  return { id, object: 'document', deleted: true, chunks_deleted: chunks };
}

export function documentView(record: DocumentRecord) {
  return {
    id: record.id,
    object: 'document',
    ...(record.title && { title: record.title }),
    chunks: record.chunks,
    indexed_chunks: record.indexedChunks,
    tokens: record.tokens,
    ...(record.metadata && { metadata: record.metadata }),
    status: record.status,
    ...(record.status === 'queued' && { status_url: `/v1/documents/${record.id}` }),
    created_at: record.createdAt,
  };
}
