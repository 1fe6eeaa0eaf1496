import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws';
import type { IndexedChunk, VectorIndex, VersionScope } from '../core/ports';
import { type Passage, type Placement, tenantIndex, tenantPlacements } from '../core/retrieval';
import type { TenantContext } from '../core/tenant';
import { perTenant } from './per-tenant';
import type { StsTenantCredentials } from './sts-tenant-credentials';

type Filter = Readonly<Record<string, string | number | boolean>>;

/** The mapping of every chunk index: k-NN vectors (HNSW, cosine), text, and keyword fields to filter on. */
export function indexBody(dimensions: number) {
  return {
    settings: { index: { knn: true, number_of_shards: 1 } },
    mappings: {
      dynamic: 'strict',
      properties: {
        tenant_id: { type: 'keyword' },
        document_id: { type: 'keyword' },
        version: { type: 'keyword' },
        chunk: { type: 'integer' },
        title: { type: 'text' },
        text: { type: 'text' },
        // One field whatever its keys and value types: no tenant's metadata can fix a type, or use
        // up the field limit, for the others in the shared index.
        metadata: { type: 'flat_object' },
        embedding: {
          type: 'knn_vector',
          dimension: dimensions,
          method: {
            name: 'hnsw',
            engine: 'lucene',
            space_type: 'cosinesimil',
            parameters: { m: 16, ef_construction: 128 },
          },
        },
      },
    },
  };
}

/**
 * Chunks in OpenSearch, signed with the tenant's scoped credentials (IAM lets a session reach only
 * `t-<tenantId>*` and the shared index). In the shared index every chunk carries `tenant_id`, is
 * routed by it, and every query, update and delete is filtered by it here, never by the caller.
 */
export class OpenSearchVectorIndex implements VectorIndex {
  /** One client per tenant, signing with that tenant's scoped credentials. */
  private readonly client = perTenant(
    (tenantId) =>
      new Client({
        ...AwsSigv4Signer({
          region: this.region,
          service: 'es',
          getCredentials: () => this.credentials.credentialsFor(tenantId),
        }),
        node: this.endpoint,
      }),
  );

  constructor(
    private readonly endpoint: string,
    private readonly region: string,
    private readonly credentials: StsTenantCredentials,
    private readonly dimensions: number,
  ) {}

  async ensureTenantIndex(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): Promise<void> {
    const { name } = tenantIndex(tenant);
    const client = this.client(tenant.tenantId);
    const exists = await client.indices.exists({ index: name });
    if (exists.body) return;
    try {
      // Through the transport: the client's typed `indices.create` does not know the k-NN plugin's `knn_vector` field.
      await client.transport.request({ method: 'PUT', path: `/${name}`, body: indexBody(this.dimensions) });
    } catch (error) {
      if (!JSON.stringify((error as { body?: unknown }).body ?? '').includes('resource_already_exists_exception'))
        throw error;
    }
  }

  async addChunks(
    tenant: TenantContext,
    document: { id: string; version: string },
    chunks: readonly IndexedChunk[],
  ): Promise<void> {
    const index = tenantIndex(tenant);
    const body = chunks.flatMap((chunk) => [
      // No `_index` in the body: the domain refuses explicit indexes, which would bypass index-level IAM.
      {
        index: {
          _id: `${tenant.tenantId}:${document.id}:${document.version}:${chunk.chunk}`,
          ...(index.shared && { routing: tenant.tenantId }),
        },
      },
      {
        tenant_id: tenant.tenantId,
        document_id: document.id,
        version: document.version,
        chunk: chunk.chunk,
        title: chunk.title,
        text: chunk.text,
        metadata: chunk.metadata ?? {},
        embedding: chunk.vector,
      },
    ]);
    const result = await this.client(tenant.tenantId).bulk({ index: index.name, body, refresh: 'wait_for' });
    if (result.body.errors) throw new Error('bulk indexing failed for some chunks');
  }

  /** Searches every placement of the tenant and keeps the best `topK` across them. */
  async search(
    tenant: TenantContext,
    query: { vector: readonly number[]; topK: number; filter?: Filter },
  ): Promise<Passage[]> {
    const client = this.client(tenant.tenantId);
    const perPlacement = await Promise.all(
      tenantPlacements(tenant).map(async (index) => {
        const result = await client.search({
          index: index.name,
          ...(index.shared && { routing: tenant.tenantId }),
          body: {
            size: query.topK,
            _source: { excludes: ['embedding'] },
            query: {
              knn: {
                embedding: {
                  vector: [...query.vector],
                  k: query.topK,
                  filter: { bool: { filter: filters(tenant.tenantId, index, query.filter) } },
                },
              },
            },
          },
        });
        return result.body.hits.hits as { _score: number; _source: Record<string, unknown> }[];
      }),
    );
    return perPlacement
      .flat()
      .sort((a, b) => b._score - a._score)
      .slice(0, query.topK)
      .map((hit) => ({
        documentId: String(hit._source.document_id),
        chunk: Number(hit._source.chunk),
        title: hit._source.title === undefined ? undefined : String(hit._source.title),
        text: String(hit._source.text),
        score: hit._score,
      }));
  }

  async deleteDocument(tenant: TenantContext, documentId: string, versions: VersionScope = {}): Promise<number> {
    const client = this.client(tenant.tenantId);
    const counts = await Promise.all(
      tenantPlacements(tenant).map(async (index) => {
        if (!(await client.indices.exists({ index: index.name })).body) return 0;
        const result = await client.deleteByQuery({
          index: index.name,
          ...(index.shared && { routing: tenant.tenantId }),
          refresh: true,
          body: {
            query: {
              bool: {
                filter: [
                  ...filters(tenant.tenantId, index),
                  { term: { document_id: documentId } },
                  ...(versions.only ? [{ term: { version: versions.only } }] : []),
                ],
                ...(versions.except && { must_not: [{ term: { version: versions.except } }] }),
              },
            },
          },
        });
        return deletedCount(result.body);
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  async deleteTenant(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Promise<number> {
    const client = this.client(tenant.tenantId);
    let deleted = 0;
    for (const index of tenantPlacements(tenant)) {
      if (!(await client.indices.exists({ index: index.name })).body) continue;
      if (!index.shared) {
        const { body } = await client.count({ index: index.name });
        await client.indices.delete({ index: index.name });
        deleted += Number(body.count);
        continue;
      }
      const result = await client.deleteByQuery({
        index: index.name,
        routing: tenant.tenantId,
        refresh: true,
        body: { query: { bool: { filter: filters(tenant.tenantId, index) } } },
      });
      deleted += deletedCount(result.body);
    }
    return deleted;
  }
}

/** The tenant filter (shared index only) and the caller's metadata equality filters. */
function filters(tenantId: string, index: Placement, metadata: Filter = {}): object[] {
  return [
    ...(index.shared ? [{ term: { tenant_id: tenantId } }] : []),
    ...Object.entries(metadata).map(([key, value]) => ({ term: { [`metadata.${key}`]: value } })),
  ];
}

function deletedCount(body: unknown): number {
  return Number((body as { deleted?: number }).deleted ?? 0);
}
