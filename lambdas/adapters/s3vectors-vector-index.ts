import {
  CreateIndexCommand,
  DeleteIndexCommand,
  DeleteVectorsCommand,
  ListVectorsCommand,
  type ListVectorsOutput,
  PutVectorsCommand,
  QueryVectorsCommand,
  S3VectorsClient,
  type S3VectorsClientConfig,
} from '@aws-sdk/client-s3vectors';
import { S3VECTORS_INDEXES_PER_BUCKET } from '../../contract/search';
import * as z from '../../contract/zod';
import { PlatformError } from '../core/errors';
import type { ExportedChunk, IndexedChunk, Passage, VectorIndex, VersionScope } from '../core/ports';
import { type Placement, placementNamed, tenantIndex, tenantPlacements, type VectorStores } from '../core/retrieval';
import type { TenantContext } from '../core/tenant';
import { perTenant } from './per-tenant';
import type { StsTenantCredentials } from './sts-tenant-credentials';

type Filter = Readonly<Record<string, string | number | boolean>>;
type Metadata = Record<string, string | number | boolean>;

/** S3 Vectors' largest write and delete batch, and its largest top-K. */
const BATCH = 500;
const MAX_TOP_K = 100;
/** Chunk text and title are returned, never filtered on: they do not count against the 2 KB of filterable metadata. */
const NON_FILTERABLE = ['text', 'title'];
/** The tenant's own metadata keys, apart from the platform's. */
const TENANT_KEY = 'm_';
const EXPORT_PAGE_SIZE = 100;

/**
 * Chunks in S3 Vectors: an index of the tenant's own (`t-<tenantId>`) in the plane's vector bucket,
 * reached only with the tenant's scoped session (IAM names the index ARN from its `tenantId` tag).
 * A vector's key is `<documentId>/<version>/<chunk>`; its metadata holds the document, version and
 * chunk (filterable), the text and title (not filterable), and the tenant's own keys as `m_<key>`.
 */
export class S3VectorsIndex implements VectorIndex {
  /** One client per tenant, signing with that tenant's scoped credentials. */
  private readonly client = perTenant(
    (tenantId) => new S3VectorsClient({ ...this.config, credentials: () => this.credentials.credentialsFor(tenantId) }),
  );

  constructor(
    private readonly bucket: string,
    /** Region, and in local mode the endpoint; the credentials are the tenant's. */
    private readonly config: S3VectorsClientConfig,
    private readonly credentials: Pick<StsTenantCredentials, 'credentialsFor'>,
    private readonly dimensions: number,
    private readonly stores: VectorStores,
  ) {}

  async ensureTenantIndex(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): Promise<void> {
    try {
      await this.client(tenant.tenantId).send(
        new CreateIndexCommand({
          ...this.at(tenantIndex(tenant, this.stores)),
          dataType: 'float32',
          dimension: this.dimensions,
          distanceMetric: 'cosine',
          metadataConfiguration: { nonFilterableMetadataKeys: NON_FILTERABLE },
        }),
      );
    } catch (error) {
      // There already (a retried onboarding, a tier change back): what was wanted.
      if ((error as Error).name === 'ConflictException') return;
      if ((error as Error).name === 'ServiceQuotaExceededException') {
        throw new PlatformError(
          'conflict',
          `this plane's vector bucket holds ${S3VECTORS_INDEXES_PER_BUCKET} indexes, the most S3 Vectors allows: place this tenant's tier on OpenSearch (vectorStores) or in a silo`,
        );
      }
      throw error;
    }
  }

  async addChunks(
    tenant: TenantContext,
    document: { id: string; version: string },
    chunks: readonly IndexedChunk[],
  ): Promise<void> {
    const at = this.at(tenantIndex(tenant, this.stores));
    for (let from = 0; from < chunks.length; from += BATCH) {
      const vectors = chunks.slice(from, from + BATCH).map((chunk) => ({
        key: vectorKey(document.id, document.version, chunk.chunk),
        data: { float32: [...chunk.vector] },
        metadata: {
          document_id: document.id,
          version: document.version,
          chunk: chunk.chunk,
          text: chunk.text,
          ...(chunk.title !== undefined && { title: chunk.title }),
          ...tenantMetadata(chunk.metadata),
        },
      }));
      await this.client(tenant.tenantId).send(new PutVectorsCommand({ ...at, vectors }));
    }
  }

  /** Every S3 Vectors placement of the tenant, best `topK` across them; score is OpenSearch's `(1 + cosine) / 2`. */
  async search(
    tenant: TenantContext,
    query: { vector: readonly number[]; topK: number; filter?: Filter },
  ): Promise<Passage[]> {
    const perPlacement = await Promise.all(
      this.placements(tenant).map(async (placement) => {
        const answer = await this.query(
          tenant.tenantId,
          placement,
          query.vector,
          query.topK,
          metadataFilter(query.filter),
        );
        return answer.map(({ metadata, distance }) => ({
          documentId: String(metadata.document_id),
          chunk: Number(metadata.chunk),
          title: metadata.title === undefined ? undefined : String(metadata.title),
          text: String(metadata.text),
          score: 1 - distance / 2,
        }));
      }),
    );
    return perPlacement
      .flat()
      .sort((a, b) => b.score - a.score)
      .slice(0, query.topK);
  }

  /** The document's vectors found by metadata, a top-K page at a time, and deleted by key. */
  async deleteDocument(tenant: TenantContext, documentId: string, versions: VersionScope = {}): Promise<number> {
    const filter = {
      $and: [
        { document_id: documentId },
        ...(versions.only ? [{ version: versions.only }] : []),
        ...(versions.except ? [{ version: { $ne: versions.except } }] : []),
      ],
    };
    const deleted = new Set<string>();
    for (const placement of this.placements(tenant)) {
      for (;;) {
        // Any vector finds the filtered ones: the filter, not the distance, decides what matches.
        const found = await this.query(tenant.tenantId, placement, unitVector(this.dimensions), MAX_TOP_K, filter);
        const keys = found.map((vector) => vector.key).filter((key) => !deleted.has(`${placement.name}/${key}`));
        // Nothing left, or only what was just deleted (should a read lag a delete): done.
        if (keys.length === 0) break;
        await this.client(tenant.tenantId).send(new DeleteVectorsCommand({ ...this.at(placement), keys }));
        for (const key of keys) deleted.add(`${placement.name}/${key}`);
      }
    }
    return deleted.size;
  }

  async deleteTenant(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Promise<number> {
    let deleted = 0;
    for (const placement of this.placements(tenant)) deleted += await this.deletePlacement(tenant, placement.name);
    return deleted;
  }

  /** Counts what the index holds, then deletes it; one gone already (a rerun) counts nothing. */
  async deletePlacement(tenant: Pick<TenantContext, 'tenantId'>, name: string): Promise<number> {
    const placement = placementNamed(name);
    let deleted = 0;
    let nextToken: string | undefined;
    try {
      do {
        const page = await this.list(tenant.tenantId, placement, { nextToken, maxResults: 1000 });
        deleted += page.vectors?.length ?? 0;
        nextToken = page.nextToken;
      } while (nextToken);
      await this.client(tenant.tenantId).send(new DeleteIndexCommand(this.at(placement)));
    } catch (error) {
      if ((error as Error).name !== 'NotFoundException') throw error;
    }
    return deleted;
  }

  /** Placement by placement, in S3 Vectors' listing order, continuing with its `nextToken`. */
  async exportChunks(
    tenant: TenantContext,
    cursor?: string,
  ): Promise<{ chunks: ExportedChunk[]; nextCursor?: string }> {
    const placements = this.placements(tenant);
    const at = cursor === undefined ? { placement: 0 } : exportCursorSchema.parse(decode(cursor));
    const placement = placements[at.placement];
    if (!placement) return { chunks: [] };
    const page = await this.list(tenant.tenantId, placement, {
      nextToken: at.token,
      maxResults: EXPORT_PAGE_SIZE,
      returnData: true,
      returnMetadata: true,
    }).catch((error: Error) => {
      if (error.name === 'NotFoundException') return { vectors: [] } as ListVectorsOutput;
      throw error;
    });
    const chunks = (page.vectors ?? []).map(({ data, metadata = {} }) => {
      const fields = metadata as Metadata;
      return {
        documentId: String(fields.document_id),
        version: String(fields.version),
        chunk: Number(fields.chunk),
        title: fields.title === undefined ? undefined : String(fields.title),
        text: String(fields.text),
        vector: data?.float32 ?? [],
        metadata: ownMetadata(fields),
      };
    });
    const next = page.nextToken
      ? { placement: at.placement, token: page.nextToken }
      : at.placement + 1 < placements.length
        ? { placement: at.placement + 1 }
        : undefined;
    return { chunks, nextCursor: next && encode(next) };
  }

  /** The tenant's placements in S3 Vectors (its others are another store's). */
  private placements(tenant: Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>): Placement[] {
    return tenantPlacements(tenant, this.stores).filter((placement) => placement.store === 's3vectors');
  }

  private at(placement: Placement) {
    return { vectorBucketName: this.bucket, indexName: placement.index };
  }

  private async query(
    tenantId: string,
    placement: Placement,
    vector: readonly number[],
    topK: number,
    filter: object | undefined,
  ): Promise<{ key: string; metadata: Metadata; distance: number }[]> {
    try {
      const answer = await this.client(tenantId).send(
        new QueryVectorsCommand({
          ...this.at(placement),
          topK: Math.min(topK, MAX_TOP_K),
          queryVector: { float32: [...vector] },
          ...(filter && { filter: filter as never }),
          returnMetadata: true,
          returnDistance: true,
        }),
      );
      return (answer.vectors ?? []).map((found) => ({
        key: found.key ?? '',
        metadata: (found.metadata ?? {}) as Metadata,
        distance: found.distance ?? 2,
      }));
    } catch (error) {
      // An index a tier change never wrote to, or one deleted meanwhile: nothing there.
      if ((error as Error).name === 'NotFoundException') return [];
      throw error;
    }
  }

  private list(
    tenantId: string,
    placement: Placement,
    page: { nextToken?: string; maxResults: number; returnData?: boolean; returnMetadata?: boolean },
  ): Promise<ListVectorsOutput> {
    return this.client(tenantId).send(new ListVectorsCommand({ ...this.at(placement), ...page }));
  }
}

/** A chunk's vector key: unique per document version and chunk, within the tenant's own index. */
function vectorKey(documentId: string, version: string, chunk: number): string {
  return `${documentId}/${version}/${chunk}`;
}

function tenantMetadata(metadata: Readonly<Metadata> | undefined): Metadata {
  return Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [`${TENANT_KEY}${key}`, value]));
}

function ownMetadata(fields: Metadata): Metadata | undefined {
  const own = Object.entries(fields).filter(([key]) => key.startsWith(TENANT_KEY));
  return own.length === 0
    ? undefined
    : Object.fromEntries(own.map(([key, value]) => [key.slice(TENANT_KEY.length), value]));
}

/** The caller's metadata equality filters, on the tenant's own keys. */
function metadataFilter(filter: Filter | undefined): object | undefined {
  const terms = Object.entries(filter ?? {}).map(([key, value]) => ({ [`${TENANT_KEY}${key}`]: value }));
  return terms.length === 0 ? undefined : { $and: terms };
}

function unitVector(dimensions: number): number[] {
  return Array.from({ length: dimensions }, (_, i) => (i === 0 ? 1 : 0));
}

const exportCursorSchema = z.object({
  placement: z.number().check(z.int(), z.nonnegative()),
  token: z.optional(z.string()),
});

function encode(cursor: z.infer<typeof exportCursorSchema>): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decode(cursor: string): unknown {
  return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
}
