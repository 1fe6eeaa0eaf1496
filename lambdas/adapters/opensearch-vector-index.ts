import * as z from '../../contract/zod';
import type { ExportedChunk, IndexedChunk, Passage, VectorIndex, VersionScope } from '../core/ports';
import { type Placement, placementNamed, tenantIndex, tenantPlacements, type VectorStores } from '../core/retrieval';
import type { TenantContext } from '../core/tenant';
import { perTenant } from './per-tenant';
import { OpenSearchRequestError, SignedOpenSearch } from './signed-opensearch';
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
    (tenantId) => new SignedOpenSearch(this.endpoint, this.region, () => this.credentials.credentialsFor(tenantId)),
  );

  constructor(
    private readonly endpoint: string,
    private readonly region: string,
    // Tenant-scoped sessions; the pipeline's migration passes its own credentials.
    private readonly credentials: Pick<StsTenantCredentials, 'credentialsFor'>,
    private readonly dimensions: number,
    private readonly stores: VectorStores,
  ) {}

  /** The tenant's placements in OpenSearch (its others are another store's). */
  private placements(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Placement[] {
    return tenantPlacements(tenant, this.stores).filter((placement) => placement.store === 'opensearch');
  }

  async ensureTenantIndex(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): Promise<void> {
    const { name } = tenantIndex(tenant, this.stores);
    const client = this.client(tenant.tenantId);
    if (await client.exists(name)) return;
    try {
      await client.request('PUT', `/${name}`, { body: indexBody(this.dimensions) });
    } catch (error) {
      // Created meanwhile by a concurrent call: what was wanted.
      if (!(error instanceof OpenSearchRequestError && error.type === 'resource_already_exists_exception')) throw error;
    }
  }

  async addChunks(
    tenant: TenantContext,
    document: { id: string; version: string },
    chunks: readonly IndexedChunk[],
  ): Promise<void> {
    const index = tenantIndex(tenant, this.stores);
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
    const result = await this.client(tenant.tenantId).request<{ errors: boolean }>('PUT', `/${index.name}/_bulk`, {
      query: { refresh: 'wait_for' },
      ndjson: body,
    });
    if (result.errors) throw new Error('bulk indexing failed for some chunks');
  }

  /** Searches every placement of the tenant and keeps the best `topK` across them. */
  async search(
    tenant: TenantContext,
    query: { vector: readonly number[]; topK: number; filter?: Filter },
  ): Promise<Passage[]> {
    const client = this.client(tenant.tenantId);
    const perPlacement = await Promise.all(
      this.placements(tenant).map(async (index) => {
        const result = await client
          .request<SearchAnswer>('POST', `/${index.name}/_search`, {
            query: index.shared ? { routing: tenant.tenantId } : {},
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
          })
          // An index the tenant never wrote to, or one deleted: nothing there.
          .catch((error: unknown) => {
            if (error instanceof OpenSearchRequestError && error.type === 'index_not_found_exception') return NO_HITS;
            throw error;
          });
        return result.hits.hits;
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
      this.placements(tenant).map(async (index) => {
        if (!(await client.exists(index.name))) return 0;
        const result = await client.request<DeleteAnswer>('POST', `/${index.name}/_delete_by_query`, {
          query: { ...(index.shared && { routing: tenant.tenantId }), refresh: 'true' },
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
        return result.deleted ?? 0;
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  async deleteTenant(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Promise<number> {
    let deleted = 0;
    for (const index of this.placements(tenant)) deleted += await this.deletePlacement(tenant, index.name);
    return deleted;
  }

  async deletePlacement(tenant: Pick<TenantContext, 'tenantId'>, name: string): Promise<number> {
    const index = placementNamed(name);
    const client = this.client(tenant.tenantId);
    if (!(await client.exists(index.index))) return 0;
    if (!index.shared) {
      const { count } = await client.request<{ count: number }>('POST', `/${index.index}/_count`);
      await client.request('DELETE', `/${index.index}`);
      return count;
    }
    const result = await client.request<DeleteAnswer>('POST', `/${index.index}/_delete_by_query`, {
      query: { routing: tenant.tenantId, refresh: 'true' },
      body: { query: { bool: { filter: filters(tenant.tenantId, index) } } },
    });
    return result.deleted ?? 0;
  }

  /** Placement by placement, in (document, version, chunk) order, continuing with `search_after`. */
  async exportChunks(
    tenant: TenantContext,
    cursor?: string,
  ): Promise<{ chunks: ExportedChunk[]; nextCursor?: string }> {
    const placements = this.placements(tenant);
    const at = cursor === undefined ? { placement: 0 } : decodeExportCursor(cursor);
    const index = placements[at.placement];
    if (!index) return { chunks: [] };
    const client = this.client(tenant.tenantId);
    const next = (after?: [string, string, number]) =>
      after
        ? encodeExportCursor({ placement: at.placement, after })
        : at.placement + 1 < placements.length
          ? encodeExportCursor({ placement: at.placement + 1 })
          : undefined;
    if (!(await client.exists(index.name))) return { chunks: [], nextCursor: next() };
    const result = await client.request<SearchAnswer>('POST', `/${index.name}/_search`, {
      query: index.shared ? { routing: tenant.tenantId } : {},
      body: {
        size: EXPORT_PAGE_SIZE,
        query: { bool: { filter: filters(tenant.tenantId, index) } },
        sort: [{ document_id: 'asc' }, { version: 'asc' }, { chunk: 'asc' }],
        ...(at.after && { search_after: at.after }),
      },
    });
    const chunks = result.hits.hits.map(({ _source: source }) => ({
      documentId: String(source.document_id),
      version: String(source.version),
      chunk: Number(source.chunk),
      title: source.title === undefined || source.title === null ? undefined : String(source.title),
      text: String(source.text),
      vector: source.embedding as number[],
      metadata: source.metadata as ExportedChunk['metadata'],
    }));
    const last = chunks.at(-1);
    const full = chunks.length === EXPORT_PAGE_SIZE && last;
    return { chunks, nextCursor: next(full ? [last.documentId, last.version, last.chunk] : undefined) };
  }
}

function encodeExportCursor(cursor: z.infer<typeof exportCursorSchema>): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeExportCursor(cursor: string): z.infer<typeof exportCursorSchema> {
  return exportCursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
}

/** Where an export stands: which of the tenant's placements, and after which chunk of it. */
const exportCursorSchema = z.object({
  placement: z.number().check(z.int(), z.nonnegative()),
  after: z.optional(z.tuple([z.string(), z.string(), z.number()])),
});

const EXPORT_PAGE_SIZE = 100;

/** The tenant filter (shared index only) and the caller's metadata equality filters. */
function filters(tenantId: string, index: Placement, metadata: Filter = {}): object[] {
  return [
    ...(index.shared ? [{ term: { tenant_id: tenantId } }] : []),
    ...Object.entries(metadata).map(([key, value]) => ({ term: { [`metadata.${key}`]: value } })),
  ];
}

const NO_HITS: SearchAnswer = { hits: { hits: [] } };

interface SearchAnswer {
  hits: { hits: { _score: number; _source: Record<string, unknown> }[] };
}

interface DeleteAnswer {
  deleted?: number;
}
