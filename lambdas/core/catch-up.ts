import { createHash } from 'node:crypto';

/**
 * Catching a silo up with what the pool wrote for a tenant after copying it there: the copy runs
 * while the pool serves the tenant, and the pool's calls in flight at the switch (or admitted on a
 * cached decision just after) still write to the pool. Beside each item it copies, the copy leaves
 * a base in the silo (`MOVED#<sk>`: the item's hash and counters as copied); after the drain, each
 * item is merged three ways, base, pool now, silo now:
 *
 * - counters (the ledger's leases, open reservations, usage cells) get the pool's change added,
 *   so the pool's late calls and the silo's own add up, each billed once, whichever plane took it;
 * - any other item the pool changed (written, deleted) takes the pool's change unless the silo
 *   changed it too: then the silo's, made after the switch, is the later word.
 */

/** A stored item, as a tenant's partitions hold it. */
export type StoredItem = Readonly<Record<string, unknown>> & { readonly pk: string; readonly sk: string };

/** An item's key. */
export type ItemKey = Pick<StoredItem, 'pk' | 'sk'>;

/** What one item of the silo needs to catch up. */
export type SiloWrite =
  /** Each conditional on the silo's item being as read (`read`: its version, or its absence), else skipped. */
  | { readonly kind: 'put'; readonly item: StoredItem; readonly read: SiloRead }
  | { readonly kind: 'delete'; readonly key: ItemKey; readonly read: SiloRead }
  /**
   * The counters' change added (a number's change; a set's members, which adding merges), the item's
   * other attributes written only where the silo has none, and in the same transaction its base moved
   * on to the pool's item: a rerun of the catch-up adds nothing twice.
   */
  | {
      readonly kind: 'add';
      readonly item: StoredItem;
      readonly deltas: Readonly<Record<string, number | Set<unknown>>>;
      readonly base: StoredItem;
      /** The hash of the base as read (absent: there was none): a concurrent catch-up that moved it first wins. */
      readonly readBase?: string;
    };

/**
 * The silo's item as the catch-up read it, for its write's condition: absent, or present at this
 * `version` (its own attribute, which every item that changes after its first write carries: documents,
 * sessions); an item without one is written once and never changed in place (audit records, stored
 * responses, cache entries), so it needs none.
 */
export type SiloRead = { readonly exists: false } | { readonly exists: true; readonly version?: unknown };

/** The sort key prefix of a copied item's base. */
export const BASE_PREFIX = 'MOVED#';

/** An item's base, kept in the silo beside its copy: its hash and the counters it was copied with. */
export function baseOf(item: StoredItem, counters: readonly string[]): StoredItem {
  return {
    pk: item.pk,
    sk: `${BASE_PREFIX}${item.sk}`,
    h: itemHash(item),
    n: Object.fromEntries(
      counters.filter((name) => !(item[name] instanceof Set)).map((name) => [name, numberOf(item[name])]),
    ),
  };
}

export function isBase(item: ItemKey): boolean {
  return item.sk.startsWith(BASE_PREFIX);
}

/** The key of the item a base was taken from. */
export function baseFor(base: ItemKey): ItemKey {
  return { pk: base.pk, sk: base.sk.slice(BASE_PREFIX.length) };
}

/**
 * The write that catches one item of the silo up, if any. `counters` are the item's counter
 * attributes (the pool's item, else the silo's); `base` what the copy left beside it (absent: the
 * pool wrote the item after the copy).
 */
export function catchUpWrite(
  key: ItemKey,
  counters: readonly string[],
  base: StoredItem | undefined,
  pool: StoredItem | undefined,
  silo: StoredItem | undefined,
): SiloWrite | undefined {
  const baseHash = base?.h;
  if ((pool && itemHash(pool)) === baseHash) return undefined;
  if (counters.length > 0) {
    // A counter item is never taken away (it expires): what the pool added since the copy is added.
    if (!pool) return undefined;
    const copied = (base?.n ?? {}) as Record<string, unknown>;
    const deltas: Record<string, number | Set<unknown>> = {};
    // A counter the pool's item no longer has (its cells rolled out into other items) went to zero.
    for (const name of new Set([...counters, ...Object.keys(copied)])) {
      const now = pool[name];
      if (now instanceof Set) {
        if (now.size > 0) deltas[name] = now;
      } else if (numberOf(now) !== numberOf(copied[name])) deltas[name] = numberOf(now) - numberOf(copied[name]);
    }
    // Its other attributes are written where the silo has none; its counters only ever added to
    // (one the silo rolled out of the item must not come back).
    const others = Object.fromEntries(Object.entries(pool).filter(([name]) => !counters.includes(name)));
    return {
      kind: 'add',
      item: { ...others, pk: pool.pk, sk: pool.sk },
      deltas,
      base: baseOf(pool, counters),
      readBase: baseHash as string | undefined,
    };
  }
  if ((silo && itemHash(silo)) !== baseHash) return undefined;
  const read: SiloRead = silo ? { exists: true, version: silo.version } : { exists: false };
  return pool ? { kind: 'put', item: pool, read } : { kind: 'delete', key, read };
}

/** A hash of the item's attributes, in a canonical order (DynamoDB returns them in any). */
export function itemHash(item: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(canonical(item)).digest('base64url');
}

function canonical(value: unknown): string {
  if (value instanceof Set) return `set(${[...value].map(canonical).sort().join(',')})`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return `{${Object.keys(value)
      .sort()
      .map((name) => `${JSON.stringify(name)}:${canonical((value as Record<string, unknown>)[name])}`)
      .join(',')}}`;
  }
  if (value instanceof Uint8Array) return `bin(${Buffer.from(value).toString('base64')})`;
  return JSON.stringify(value) ?? 'undefined';
}

function numberOf(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}
