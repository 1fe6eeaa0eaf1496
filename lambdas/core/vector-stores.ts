import type { VectorStore } from '../../contract/search';
import type { ExportedChunk, Passage, VectorIndex, VersionScope } from './ports';
import { placementNamed, tenantIndex, tenantPlacements, type VectorStores } from './retrieval';
import type { TenantContext } from './tenant';

type TenantPlaces = Pick<TenantContext, 'tenantId' | 'tier' | 'placements'>;

/**
 * The tenant's chunks across the stores its placements are in: new chunks go to its tier's store,
 * reads, deletes and exports reach every store that holds a placement of it (a tier moved between
 * stores keeps what it wrote before reachable), and each store serves only its own placements.
 */
export class StoreRoutedVectorIndex implements VectorIndex {
  constructor(
    private readonly tierStores: VectorStores,
    private readonly stores: Readonly<Partial<Record<VectorStore, VectorIndex>>>,
  ) {}

  ensureTenantIndex(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): Promise<void> {
    return this.current(tenant).ensureTenantIndex(tenant);
  }

  addChunks(...args: Parameters<VectorIndex['addChunks']>): Promise<void> {
    return this.current(args[0]).addChunks(...args);
  }

  async search(tenant: TenantContext, query: Parameters<VectorIndex['search']>[1]): Promise<Passage[]> {
    const found = await Promise.all(this.holding(tenant).map((store) => store.search(tenant, query)));
    return found
      .flat()
      .sort((a, b) => b.score - a.score)
      .slice(0, query.topK);
  }

  async deleteDocument(tenant: TenantContext, documentId: string, versions?: VersionScope): Promise<number> {
    const counts = await Promise.all(
      this.holding(tenant).map((store) => store.deleteDocument(tenant, documentId, versions)),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  async deleteTenant(tenant: TenantPlaces): Promise<number> {
    let deleted = 0;
    for (const store of this.holding(tenant)) deleted += await store.deleteTenant(tenant);
    return deleted;
  }

  deletePlacement(tenant: Pick<TenantContext, 'tenantId'>, placement: string): Promise<number> {
    return this.store(placementNamed(placement).store).deletePlacement(tenant, placement);
  }

  /** Store by store; the cursor says which store, and where in it. */
  async exportChunks(
    tenant: TenantContext,
    cursor?: string,
  ): Promise<{ chunks: ExportedChunk[]; nextCursor?: string }> {
    const stores = this.holding(tenant);
    const [at, inner] = cursor === undefined ? [0, undefined] : splitCursor(cursor);
    const store = stores[at];
    if (!store) return { chunks: [] };
    const page = await store.exportChunks(tenant, inner);
    const nextCursor =
      page.nextCursor !== undefined ? `${at}.${page.nextCursor}` : at + 1 < stores.length ? `${at + 1}.` : undefined;
    return { chunks: page.chunks, nextCursor };
  }

  private current(tenant: Pick<TenantContext, 'tenantId' | 'tier'>): VectorIndex {
    return this.store(tenantIndex(tenant, this.tierStores).store);
  }

  /**
   * The stores holding a placement of the tenant, its current one first (as each store lists its
   * current placement first): an export that is copied into the current index as it goes reads
   * that index before anything is copied into it, so nothing is read twice.
   */
  private holding(tenant: TenantPlaces): VectorIndex[] {
    const names = new Set(tenantPlacements(tenant, this.tierStores).map((placement) => placement.store));
    return [...names].map((name) => this.store(name));
  }

  private store(name: VectorStore): VectorIndex {
    const store = this.stores[name];
    if (!store) throw new Error(`no ${name} vector store is configured in this plane`);
    return store;
  }
}

/** `<store position>.<that store's cursor>` (empty: from its start). */
function splitCursor(cursor: string): [number, string | undefined] {
  const dot = cursor.indexOf('.');
  const at = Number(cursor.slice(0, dot));
  if (dot < 0 || !Number.isInteger(at) || at < 0) throw new Error('not an export cursor');
  const inner = cursor.slice(dot + 1);
  return [at, inner === '' ? undefined : inner];
}
