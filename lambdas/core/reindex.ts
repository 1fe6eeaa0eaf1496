import { PlatformError } from './errors';
import { assertLegal, changeTenant, readTenant } from './lifecycle';
import type { DocumentStore, ExportedChunk, TenantRegistry, VectorIndex } from './ports';
import { tenantIndex, tenantPlacements, type VectorStores } from './retrieval';
import { actingFor, type TenantContext } from './tenant';

/** Who a reindex acts as, in what it writes for the tenant. */
const REINDEX_ACTOR = 'platform:reindex';

export interface ReindexDeps {
  readonly registry: TenantRegistry;
  readonly vectors: VectorIndex;
  readonly documents: Pick<DocumentStore, 'get'>;
  readonly vectorStores: VectorStores;
  /** A silo plane's one tenant; absent in the pool. */
  readonly siloTenantId?: string;
}

/**
 * Moves the tenant's chunks into its current index (its tier's store, an index of its own) from
 * every other placement it has (the basic tier's shared OpenSearch index of old, a store its tier
 * left), then deletes them there and drops those placements from its record. Chunks of a document
 * version that is no longer current are not copied. Rerunnable: a copy overwrites, a delete of what
 * is gone counts nothing.
 */
export async function reindexTenant(deps: ReindexDeps, tenantId: string) {
  const tenant = await readTenant(deps.registry, tenantId);
  assertLegal(tenant, 'configure', deps.siloTenantId);
  const current = tenantIndex(tenant, deps.vectorStores).name;
  const others = tenantPlacements(tenant, deps.vectorStores)
    .map((placement) => placement.name)
    .filter((name) => name !== current);
  if (others.length === 0) return { tenant, moved: 0, dropped: [] as string[] };
  const context = actingFor(tenant, REINDEX_ACTOR);
  await deps.vectors.ensureTenantIndex(tenant);
  const moved = await copyChunks(deps.vectors, context, deps.vectors, context, async (chunk) => {
    const document = await deps.documents.get(context, chunk.documentId);
    return document?.version === chunk.version;
  });
  for (const placement of others) await deps.vectors.deletePlacement(context, placement);
  const reindexed = await changeTenant(deps.registry, tenantId, (latest) => {
    if (latest.tier !== tenant.tier) {
      throw new PlatformError('conflict', `tenant '${tenantId}' changed tier during the reindex: run it again`);
    }
    return { ...latest, placements: latest.placements.filter((name) => !others.includes(name)) };
  });
  return { tenant: reindexed, moved, dropped: others };
}

/** Chunks of every placement of `source`, page by page, into the current index of `target`, a document version at a time. */
export async function copyChunks(
  source: VectorIndex,
  from: TenantContext,
  target: VectorIndex,
  to: TenantContext,
  /** Whether a document version's chunks are copied (asked once a page); absent: all. */
  keep: (chunk: ExportedChunk) => Promise<boolean> = async () => true,
): Promise<number> {
  let copied = 0;
  let cursor: string | undefined;
  do {
    const page = await source.exportChunks(from, cursor);
    const byVersion = new Map<string, ExportedChunk[]>();
    for (const chunk of page.chunks) {
      const key = `${chunk.documentId}\u0000${chunk.version}`;
      byVersion.set(key, [...(byVersion.get(key) ?? []), chunk]);
    }
    for (const chunks of byVersion.values()) {
      if (!(await keep(chunks[0]))) continue;
      await target.addChunks(to, { id: chunks[0].documentId, version: chunks[0].version }, chunks);
      copied += chunks.length;
    }
    cursor = page.nextCursor;
  } while (cursor);
  return copied;
}
