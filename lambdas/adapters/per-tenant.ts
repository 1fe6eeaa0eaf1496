/** Tenants whose clients are kept at once; the least recently used is dropped first. */
const MAX_TENANTS = 256;

/**
 * One `create(tenantId)` result per tenant, kept while the tenant is among the most recently used:
 * SDK clients are built once per tenant and container, without growing with every tenant ever seen.
 */
export function perTenant<T>(create: (tenantId: string) => T): (tenantId: string) => T {
  const cache = new Map<string, T>();
  return (tenantId) => {
    const cached = cache.get(tenantId);
    const value = cached ?? create(tenantId);
    cache.delete(tenantId);
    if (cached === undefined && cache.size >= MAX_TENANTS) cache.delete(cache.keys().next().value as string);
    cache.set(tenantId, value);
    return value;
  };
}
