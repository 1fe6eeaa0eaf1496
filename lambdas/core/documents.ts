import { randomUUID } from 'node:crypto';
import type { DocumentRecord, DocumentStore, Embedder, Ledger, VectorIndex } from '../ports';
import { type ModelCatalog, resolveModel } from './catalog';
import { PlatformError } from './errors';
import { metered } from './metering';
import { chunkText, type DocumentRequest, documentIdSchema, type Passage } from './retrieval';
import type { TenantContext } from './tenant';
import { countTokens } from './tokens';

export interface RetrievalSettings {
  /** Public name of the embedding model that documents and queries are embedded with. */
  readonly embeddingModel: string;
  readonly chunkTokens: number;
  readonly chunkOverlapTokens: number;
  readonly maxDocumentBytes: number;
}

export interface RetrievalDeps {
  readonly catalog: ModelCatalog;
  readonly retrieval: RetrievalSettings;
  readonly ledger: Ledger;
  readonly embedder: Embedder;
  readonly vectors: VectorIndex;
  readonly documents: DocumentStore;
  readonly now: () => number;
}

/** Embeds texts with the retrieval model, metered like any model call. */
export async function embedTexts(
  deps: Omit<RetrievalDeps, 'vectors' | 'documents'>,
  tenant: TenantContext,
  texts: readonly string[],
  requestId: string,
  modelName = deps.retrieval.embeddingModel,
) {
  const model = resolveModel(deps.catalog, modelName, 'embedding');
  const estimate = { inputTokens: texts.reduce((sum, text) => sum + countTokens(text), 0), outputTokens: 0 };
  return metered(deps.ledger, tenant, { requestId, model, estimate, nowMs: deps.now() }, () =>
    deps.embedder.embed(tenant, { modelId: model.bedrockModelId, texts, dimensions: model.dimensions }),
  );
}

/** Chunks, embeds and indexes a document (replacing an earlier version of the same id), then records it. */
export async function ingestDocument(
  deps: RetrievalDeps,
  tenant: TenantContext,
  request: DocumentRequest,
  requestId: string,
): Promise<DocumentRecord> {
  if (Buffer.byteLength(request.text) > deps.retrieval.maxDocumentBytes) {
    throw new PlatformError('payload_too_large', `documents are limited to ${deps.retrieval.maxDocumentBytes} bytes`);
  }
  const id = request.id ?? `doc_${randomUUID().replaceAll('-', '')}`;
  const chunks = chunkText(request.text, deps.retrieval.chunkTokens, deps.retrieval.chunkOverlapTokens);
  const { vectors } = await embedTexts(
    deps,
    tenant,
    chunks.map((chunk) => chunk.text),
    requestId,
  );
  await deps.vectors.putDocument(
    tenant,
    id,
    chunks.map((chunk, i) => ({
      documentId: id,
      chunk: chunk.chunk,
      title: request.title,
      text: chunk.text,
      vector: vectors[i],
      metadata: request.metadata,
    })),
  );
  const record: DocumentRecord = {
    id,
    title: request.title,
    chunks: chunks.length,
    tokens: chunks.reduce((sum, chunk) => sum + chunk.tokens, 0),
    metadata: request.metadata,
    status: 'indexed',
    createdAt: new Date(deps.now()).toISOString(),
  };
  await deps.documents.put(tenant, record);
  return record;
}

/** The tenant's passages nearest to `query`: its own index, or its own documents in the shared one. */
export async function retrievePassages(
  deps: Omit<RetrievalDeps, 'documents'>,
  tenant: TenantContext,
  request: { query: string; topK: number; filter?: Readonly<Record<string, string | number | boolean>> },
  requestId: string,
): Promise<Passage[]> {
  const { vectors } = await embedTexts(deps, tenant, [request.query], `${requestId}:query`);
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
  const chunks = await deps.vectors.deleteDocument(tenant, id);
  await deps.documents.delete(tenant, id);
  return { id, object: 'document', deleted: true, chunks_deleted: chunks };
}

export function documentView(record: DocumentRecord) {
  return {
    id: record.id,
    object: 'document',
    ...(record.title && { title: record.title }),
    chunks: record.chunks,
    tokens: record.tokens,
    ...(record.metadata && { metadata: record.metadata }),
    status: record.status,
    created_at: record.createdAt,
  };
}
