import type { AdapterRecord } from '../../lambdas/core/adapter-record';
import { PlatformError } from '../../lambdas/core/errors';
import type {
  ActualUsage,
  AdapterHost,
  AuditLog,
  BatchRecord,
  BatchStore,
  CachedAnswer,
  DocumentRecord,
  DocumentStore,
  Embedder,
  FileStore,
  IndexedChunk,
  InferenceProfiles,
  IngestJob,
  IngestJobRef,
  IngestQueue,
  Ledger,
  ModelProvider,
  PlatformMetrics,
  RequestOutcome,
  Reservation,
  ResponseCache,
  ResponseStore,
  SessionStore,
  StoredApiKey,
  StoredFile,
  StoredResponse,
  StoredSession,
  TenantRegistry,
  TenantVersion,
  VectorIndex,
} from '../../lambdas/core/ports';
import type { PromptRecord } from '../../lambdas/core/prompt-record';
import { tenantPlacements } from '../../lambdas/core/retrieval';
import type { TenantContext, TenantRecord } from '../../lambdas/core/tenant';
import { countTokens } from '../../lambdas/core/tokens';
import { platformConfig } from '../../lib/config';

/**
 * In-memory stand-ins for every port, so the orchestration in `lambdas/core` is tested on its own:
 * each keeps what it was told in plain maps and arrays that tests read back. They model what the
 * core relies on (conflicts, versions, reservations, placements), not the AWS services.
 */
const FAKE_STORES = platformConfig().retrieval.vectorStores;

export function inMemoryPorts() {
  const events: string[] = [];

  const tenants = new Map<string, TenantRecord>();
  const keys = new Map<string, StoredApiKey>();
  /** Keys a return to the pool carried into their tenant's list, not yet adopted. */
  const carried = new Map<string, StoredApiKey>();
  const adapters = new Map<string, AdapterRecord>();
  const prompts = new Map<string, PromptRecord>();
  const storedSessions = new Map<string, StoredSession>();
  const cached = new Map<string, { answer: CachedAnswer; expiresAt: number }>();
  const cache: ResponseCache = {
    get: async (tenant, key, nowMs) => {
      const entry = cached.get(`${tenant.tenantId}/${key}`);
      return entry && entry.expiresAt > nowMs / 1000 ? entry.answer : undefined;
    },
    put: async (tenant, key, answer, expiresAt) => void cached.set(`${tenant.tenantId}/${key}`, { answer, expiresAt }),
    deleteAll: async (tenantId) => {
      const owned = [...cached.keys()].filter((key) => key.startsWith(`${tenantId}/`));
      for (const key of owned) cached.delete(key);
      return owned.length;
    },
  };
  const storedResponses = new Map<string, StoredResponse>();
  const responses: ResponseStore = {
    get: async (tenant, id) => storedResponses.get(`${tenant.tenantId}/${id}`),
    put: async (tenant, stored) => void storedResponses.set(`${tenant.tenantId}/${stored.id}`, stored),
    delete: async (tenant, id) => storedResponses.delete(`${tenant.tenantId}/${id}`),
    deleteAll: async (tenantId) => {
      const owned = [...storedResponses.keys()].filter((key) => key.startsWith(`${tenantId}/`));
      for (const key of owned) storedResponses.delete(key);
      return owned.length;
    },
  };
  /** Files by `<tenantId>/<id>`, with their bodies. */
  const storedFiles = new Map<string, { file: StoredFile; body: Uint8Array }>();
  /** Batches by `<tenantId>/<id>`, each write conditional on the version read, as the DynamoDB store's. */
  const storedBatches = new Map<string, BatchRecord>();
  const batches: BatchStore = {
    create: async (tenant, batch) => {
      if (storedBatches.has(`${tenant.tenantId}/${batch.id}`)) throw new PlatformError('conflict', 'exists');
      storedBatches.set(`${tenant.tenantId}/${batch.id}`, batch);
    },
    get: async (tenant, id) => storedBatches.get(`${tenant.tenantId}/${id}`),
    list: async (tenant, { limit, after }) => {
      const owned = [...storedBatches]
        .filter(([key]) => key.startsWith(`${tenant.tenantId}/`))
        .map(([, batch]) => batch)
        .filter((batch) => after === undefined || batch.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      return { batches: owned.slice(0, limit), hasMore: owned.length > limit };
    },
    update: async (tenant, batch) => {
      const key = `${tenant.tenantId}/${batch.id}`;
      if (storedBatches.get(key)?.version !== batch.version) return undefined;
      const written = { ...batch, version: batch.version + 1 };
      storedBatches.set(key, written);
      return written;
    },
  };
  /** Running batches' parts by `<tenantId>/<batchId>/<from>`. */
  const batchParts = new Map<string, Uint8Array>();
  const files: FileStore = {
    put: async (tenant, file, body) => {
      const stored = { ...file, bytes: body.length, createdAt: Math.floor(Date.now() / 1000) };
      storedFiles.set(`${tenant.tenantId}/${file.id}`, { file: stored, body });
      return stored;
    },
    get: async (tenant, id) => storedFiles.get(`${tenant.tenantId}/${id}`)?.file,
    content: async (tenant, id) => storedFiles.get(`${tenant.tenantId}/${id}`)?.body,
    downloadUrl: async (tenant, id, expiresInSeconds) =>
      storedFiles.has(`${tenant.tenantId}/${id}`)
        ? `https://files.test/${tenant.tenantId}/${id}?expires=${expiresInSeconds}`
        : undefined,
    // In id order, as the S3 adapter lists them (the core's ids sort newest first).
    list: async (tenant, { limit, after }) => {
      const owned = [...storedFiles]
        .filter(([key]) => key.startsWith(`${tenant.tenantId}/`))
        .map(([, { file }]) => file)
        .filter((file) => after === undefined || file.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      return { files: owned.slice(0, limit), hasMore: owned.length > limit };
    },
    delete: async (tenant, id) => storedFiles.delete(`${tenant.tenantId}/${id}`),
    deleteAll: async (tenantId) => {
      const owned = [...storedFiles.keys()].filter((key) => key.startsWith(`${tenantId}/`));
      for (const key of owned) storedFiles.delete(key);
      return owned.length;
    },
    putPart: async (tenant, batchId, section, name, body) =>
      void batchParts.set(`${tenant.tenantId}/${batchId}/${section}/${name}`, body),
    parts: async (tenant, batchId, section, names) =>
      names.map((name) => batchParts.get(`${tenant.tenantId}/${batchId}/${section}/${name}`) ?? new Uint8Array()),
    putJobInput: async (tenant, batchId, body) => {
      batchParts.set(`${tenant.tenantId}/${batchId}/job/input.jsonl`, body);
      return {
        inputUri: `s3://files/${tenant.tenantId}/${batchId}/input.jsonl`,
        outputUri: `s3://files/${tenant.tenantId}/${batchId}/output/`,
      };
    },
    jobOutputs: async () => [],
    deleteParts: async (tenant, batchId) => {
      for (const key of [...batchParts.keys()]) {
        if (key.startsWith(`${tenant.tenantId}/${batchId}/`)) batchParts.delete(key);
      }
    },
  };
  const sessions: SessionStore = {
    get: async (tenant, id) => storedSessions.get(`${tenant.tenantId}/${id}`),
    put: async (tenant, session, expected) => {
      if (storedSessions.get(`${tenant.tenantId}/${session.id}`)?.version !== expected) return false;
      storedSessions.set(`${tenant.tenantId}/${session.id}`, session);
      return true;
    },
    delete: async (tenant, id) => storedSessions.delete(`${tenant.tenantId}/${id}`),
    deleteAll: async (tenantId) => {
      const owned = [...storedSessions.keys()].filter((key) => key.startsWith(`${tenantId}/`));
      for (const key of owned) storedSessions.delete(key);
      return owned.length;
    },
  };
  /** Like the registry's conditional writes: the tenant must still be at the version read. */
  const assertCurrent = (read: TenantVersion) => {
    const stored = tenants.get(read.tenantId);
    if (!stored) throw new PlatformError('not_found', 'no such tenant');
    if (stored.version !== read.version) throw new PlatformError('conflict', `tenant '${read.tenantId}' changed`);
  };
  const registry: TenantRegistry = {
    getTenant: async (id) => tenants.get(id),
    listTenants: async () => ({ tenants: [...tenants.values()] }),
    createTenant: async (record) => {
      if (tenants.has(record.tenantId)) throw new PlatformError('conflict', 'exists');
      const created = { ...record, version: 1 };
      tenants.set(record.tenantId, created);
      return created;
    },
    discardNewTenant: async (id) => {
      if (tenants.get(id)?.version === 1) tenants.delete(id);
    },
    updateTenant: async (record) => {
      assertCurrent(record);
      const updated = { ...record, version: record.version + 1 };
      tenants.set(record.tenantId, updated);
      return updated;
    },
    getApiKey: async (keyId) => keys.get(keyId),
    putApiKey: async (key, tenant) => {
      if (tenant) assertCurrent(tenant);
      keys.set(key.keyId, key);
    },
    revokeApiKey: async (keyId, tenant) => {
      assertCurrent(tenant);
      const key = keys.get(keyId);
      if (key?.tenantId !== tenant.tenantId) throw new PlatformError('not_found', 'no such API key');
      keys.set(keyId, { ...key, status: 'revoked' });
    },
    setApiKeyProject: async (keyId, project, tenant) => {
      assertCurrent(tenant);
      const key = keys.get(keyId);
      if (key?.tenantId !== tenant.tenantId || key.status !== 'active') {
        throw new PlatformError('not_found', 'no such active API key');
      }
      const { project: _, ...rest } = key;
      keys.set(keyId, { ...rest, ...(project && { project }) });
    },
    deleteApiKeys: async (tenantId) => {
      const owned = [...keys.values()].filter((key) => key.tenantId === tenantId);
      for (const key of owned) keys.delete(key.keyId);
      return owned.length;
    },
    listApiKeys: async (tenantId) => [...keys.values()].filter((key) => key.tenantId === tenantId),
    carryApiKeys: async (tenantId, carriedKeys) => {
      for (const key of carriedKeys) {
        if (carried.get(key.keyId)?.status !== 'revoked') carried.set(key.keyId, { ...key, tenantId });
      }
    },
    adoptCarriedKeys: async (tenantId) => {
      const mine = [...carried.values()].filter((key) => key.tenantId === tenantId);
      for (const key of mine) {
        const existing = keys.get(key.keyId);
        if (!existing || (existing.tenantId === tenantId && existing.status === 'active')) keys.set(key.keyId, key);
        carried.delete(key.keyId);
      }
      return mine.length;
    },
    getAdapter: async (tenantId, name) => adapters.get(`${tenantId}/${name}`),
    putAdapter: async (tenantId, record) => void adapters.set(`${tenantId}/${record.name}`, record),
    listAdapters: async (tenantId) =>
      [...adapters].filter(([key]) => key.startsWith(`${tenantId}/`)).map(([, record]) => record),
    deleteAdapter: async (tenantId, name) => void adapters.delete(`${tenantId}/${name}`),
    getPrompt: async (tenantId, name) => prompts.get(`${tenantId}/${name}`),
    putPrompt: async (tenantId, record) => void prompts.set(`${tenantId}/${record.name}`, record),
    listPrompts: async (tenantId) =>
      [...prompts].filter(([key]) => key.startsWith(`${tenantId}/`)).map(([, record]) => record),
    deletePrompt: async (tenantId, name) => void prompts.delete(`${tenantId}/${name}`),
  };

  /** Month tokens and open reservations per tenant; refuses past `monthlyTokens` like the real ledger. */
  const monthTokens = new Map<string, number>();
  const reservations = new Map<string, Reservation>();
  const settled: { requestId: string; inputTokens: number; outputTokens: number; costNanoUsd: number }[] = [];
  const ledger: Ledger = {
    reserve: async (tenant, request) => {
      const used = monthTokens.get(tenant.tenantId) ?? 0;
      if (used + request.estimate.tokens > tenant.limits.monthlyTokens) {
        events.push(`refuse ${request.requestId}`);
        throw new PlatformError('quota_exceeded', 'monthly token quota reached', { retryAfterSeconds: 60 });
      }
      monthTokens.set(tenant.tenantId, used + request.estimate.tokens);
      const reservation = {
        tenantId: tenant.tenantId,
        tier: tenant.tier,
        requestId: request.requestId,
        model: request.model,
        month: '2026-11',
        estimate: request.estimate,
        reservedAtMs: request.nowMs,
        shard: 0,
        recordShard: 0,
      };
      reservations.set(request.requestId, reservation);
      events.push(`reserve ${request.requestId} ${request.estimate.tokens}`);
      return reservation;
    },
    settle: async (reservation, usage, entry) => {
      if (entry) await audit.record({ tenantId: reservation.tenantId } as TenantContext, entry);
      if (!reservations.delete(reservation.requestId)) return;
      const tokens = usage.inputTokens + usage.outputTokens;
      monthTokens.set(
        reservation.tenantId,
        (monthTokens.get(reservation.tenantId) ?? 0) - reservation.estimate.tokens + tokens,
      );
      settled.push({ requestId: reservation.requestId, ...usage });
      events.push(`settle ${reservation.requestId} ${tokens}`);
    },
    // A scope is admitted as a tenant of its own (`<tenant>#<kind>#<id>`), with its limits.
    reserveScope: (tenant, scope, request) =>
      ledger.reserve(
        { ...tenant, tenantId: `${tenant.tenantId}#${scope.kind}#${scope.id}`, limits: scope.limits },
        request,
      ),
    scopeUsage: async () => [],
    release: async (reservation) => {
      if (!reservations.delete(reservation.requestId)) return;
      monthTokens.set(reservation.tenantId, (monthTokens.get(reservation.tenantId) ?? 0) - reservation.estimate.tokens);
      events.push(`release ${reservation.requestId}`);
    },
    usage: async () => [],
    deleteAll: async (tenantId) => (monthTokens.delete(tenantId) ? 1 : 0),
  };

  const auditEntries: { tenantId: string; requestId: string }[] = [];
  const audit: AuditLog = {
    record: async (tenant, entry) => void auditEntries.push({ tenantId: tenant.tenantId, requestId: entry.requestId }),
    list: async () => ({ entries: [] }),
    get: async () => undefined,
    deleteAll: async (tenantId) => {
      const mine = auditEntries.filter((entry) => entry.tenantId === tenantId).length;
      auditEntries.splice(0, auditEntries.length, ...auditEntries.filter((entry) => entry.tenantId !== tenantId));
      return mine;
    },
  };

  const records = new Map<string, DocumentRecord>();
  const jobs = new Map<string, IngestJob>();
  const docKey = (tenantId: string, id: string) => `${tenantId}/${id}`;
  const jobKey = (tenantId: string, ref: IngestJobRef) => `${tenantId}/${ref.documentId}/${ref.version}/${ref.batch}`;
  const documents: DocumentStore = {
    put: async (tenant, record) => void records.set(docKey(tenant.tenantId, record.id), record),
    get: async (tenant, id) => records.get(docKey(tenant.tenantId, id)),
    list: async (tenant) => ({
      records: [...records].filter(([key]) => key.startsWith(`${tenant.tenantId}/`)).map(([, record]) => record),
    }),
    delete: async (tenant, id) => records.delete(docKey(tenant.tenantId, id)),
    deleteAll: async (tenantId) => {
      const mine = [...records.keys()].filter((key) => key.startsWith(`${tenantId}/`));
      for (const key of mine) records.delete(key);
      for (const key of [...jobs.keys()].filter((key) => key.startsWith(`${tenantId}/`))) jobs.delete(key);
      return mine.length;
    },
    putJobs: async (tenant, queued) => {
      for (const job of queued) jobs.set(jobKey(tenant.tenantId, job), job);
    },
    getJob: async (tenant, ref) => jobs.get(jobKey(tenant.tenantId, ref)),
    deleteJob: async (tenant, ref) => void jobs.delete(jobKey(tenant.tenantId, ref)),
    listJobs: async (tenant) => ({
      jobs: [...jobs].filter(([key]) => key.startsWith(`${tenant.tenantId}/`)).map(([, job]) => job),
    }),
    recordIndexed: async (tenant, document, batch, count) => {
      const record = records.get(docKey(tenant.tenantId, document.id));
      if (record?.version !== document.version) return 'stale';
      if (record.indexedBatches?.includes(batch)) return record.indexedChunks < record.chunks ? 'partial' : 'complete';
      const indexedChunks = record.indexedChunks + count;
      const complete = indexedChunks >= record.chunks;
      records.set(docKey(tenant.tenantId, document.id), {
        ...record,
        indexedChunks,
        indexedBatches: [...(record.indexedBatches ?? []), batch],
        status: complete ? 'indexed' : record.status,
      });
      return complete ? 'complete' : 'partial';
    },
  };

  /** Chunks by index name, as the adapter would place them (every tier in S3 Vectors, the default). */
  const chunks: { index: string; tenantId: string; documentId: string; version: string; chunk: IndexedChunk }[] = [];
  const vectors: VectorIndex = {
    ensureTenantIndex: async () => undefined,
    addChunks: async (tenant, document, added) => {
      const [index] = tenantPlacements(tenant, FAKE_STORES);
      for (const chunk of added) {
        chunks.push({
          index: index.name,
          tenantId: tenant.tenantId,
          documentId: document.id,
          version: document.version,
          chunk,
        });
      }
    },
    search: async (tenant, query) => {
      const placements = tenantPlacements(tenant, FAKE_STORES).map((placement) => placement.name);
      return chunks
        .filter((stored) => stored.tenantId === tenant.tenantId && placements.includes(stored.index))
        .slice(0, query.topK)
        .map((stored) => ({
          documentId: stored.documentId,
          chunk: stored.chunk.chunk,
          text: stored.chunk.text,
          score: 1,
        }));
    },
    deleteDocument: async (tenant, documentId, versions = {}) => {
      const doomed = chunks.filter(
        (stored) =>
          stored.tenantId === tenant.tenantId &&
          stored.documentId === documentId &&
          (versions.only === undefined || stored.version === versions.only) &&
          (versions.except === undefined || stored.version !== versions.except),
      );
      chunks.splice(0, chunks.length, ...chunks.filter((stored) => !doomed.includes(stored)));
      return doomed.length;
    },
    deletePlacement: async (tenant, placement) => {
      const doomed = chunks.filter((stored) => stored.tenantId === tenant.tenantId && stored.index === placement);
      chunks.splice(0, chunks.length, ...chunks.filter((stored) => !doomed.includes(stored)));
      return doomed.length;
    },
    deleteTenant: async (tenant) => {
      const placements = tenantPlacements(tenant, FAKE_STORES).map((placement) => placement.name);
      const doomed = chunks.filter(
        (stored) => stored.tenantId === tenant.tenantId && placements.includes(stored.index),
      );
      chunks.splice(0, chunks.length, ...chunks.filter((stored) => !doomed.includes(stored)));
      return doomed.length;
    },
    exportChunks: async (tenant) => {
      const placements = tenantPlacements(tenant, FAKE_STORES).map((placement) => placement.name);
      return {
        chunks: chunks
          .filter((stored) => stored.tenantId === tenant.tenantId && placements.includes(stored.index))
          .map((stored) => ({ ...stored.chunk, version: stored.version })),
      };
    },
  };

  const embedder: Embedder = {
    embed: async (_tenant, request) => {
      events.push(`embed ${request.texts.length}`);
      return {
        vectors: request.texts.map(() => new Array(request.dimensions).fill(0.1)),
        inputTokens: request.texts.reduce((sum, text) => sum + countTokens(text), 0),
        outputTokens: 0,
      };
    },
  };
  const generated: { messages: readonly { role: string; content: string }[] }[] = [];
  const models: ModelProvider = {
    generate: async (_tenant, request) => {
      generated.push({ messages: request.messages });
      events.push('generate');
      return { text: 'answer', finishReason: 'stop', inputTokens: 10, outputTokens: 2 };
    },
    async *stream(_tenant, request) {
      generated.push({ messages: request.messages });
      events.push('stream');
      yield { type: 'text' as const, text: 'ans' };
      yield { type: 'text' as const, text: 'wer' };
      yield { type: 'end' as const, finishReason: 'stop' as const, inputTokens: 10, outputTokens: 2 };
    },
  };
  const queued: IngestJobRef[] = [];
  // These fakes run no batches: what they queue is ingest jobs.
  const queue: IngestQueue = { enqueue: async (refs) => void queued.push(...(refs as IngestJobRef[])) };
  /** SageMaker's components by name: status and failure reason, which tests set. */
  const components = new Map<string, { status: 'Creating' | 'InService' | 'Failed'; failureReason?: string }>();
  const adapterHost: AdapterHost = {
    create: async (component) => {
      events.push(`create ${component.componentName} on ${component.baseComponentName}`);
      components.set(component.componentName, { status: 'Creating' });
    },
    describe: async (name) => components.get(name) ?? { status: 'Failed', failureReason: 'gone' },
    delete: async (name) => {
      events.push(`delete ${name}`);
      components.delete(name);
    },
  };
  /** Inference profiles by ARN: what onboarding made, until offboarding deletes them. */
  const profiles = new Map<string, { tenantId: string; model: string }>();
  const inferenceProfiles: InferenceProfiles = {
    createFor: async (tenantId, models) =>
      Object.fromEntries(
        models.map((model) => {
          const arn = `arn:aws:bedrock:us-east-1:000000000000:application-inference-profile/${tenantId}-${model.name}`;
          profiles.set(arn, { tenantId, model: model.name });
          return [model.name, arn];
        }),
      ),
    deleteAll: async (arns) => arns.filter((arn) => profiles.delete(arn)).length,
  };
  const overages: number[] = [];
  const requestOutcomes: RequestOutcome[] = [];
  const billed: ActualUsage[] = [];
  const disconnects: string[] = [];
  const metrics: PlatformMetrics = {
    reservationOverage: (_reservation, tokens) => void overages.push(tokens),
    settled: (_reservation, usage) => void billed.push(usage),
    request: (outcome) => void requestOutcomes.push(outcome),
    streamDisconnected: (tenant, route) => void disconnects.push(`${tenant.tenantId} ${route}`),
  };

  return {
    ports: {
      registry,
      ledger,
      audit,
      documents,
      vectors,
      embedder,
      models,
      queue,
      metrics,
      inferenceProfiles,
      adapterHost,
      prompts: {
        get: (tenant: TenantContext, name: string) => registry.getPrompt(tenant.tenantId, name),
        list: (tenant: TenantContext) => registry.listPrompts(tenant.tenantId),
      },
      sessions,
      cache,
      responses,
      files,
      batches,
    },
    storedFiles,
    components,
    events,
    tenants,
    keys,
    reservations,
    settled,
    auditEntries,
    records,
    jobs,
    chunks,
    generated,
    queued,
    overages,
    requestOutcomes,
    profiles,
    billed,
    disconnects,
  };
}

/** A tenant context for the fakes, as the authorizer would build it from a record. */
export function contextOf(record: TenantRecord): TenantContext {
  const { tenantId, tier, limits, auditPrompts, placements } = record;
  return { tenantId, tier, limits, auditPrompts, placements, principal: { type: 'api_key', id: 'k1' } };
}
