import type { TenantContext } from '../../lambdas/core/tenant';

/** A tenant context as the authorizer would build it, with generous limits unless overridden. */
export function tenantContext(tenantId: string, limits: Partial<TenantContext['limits']> = {}): TenantContext {
  return {
    tenantId,
    tier: 'basic',
    principal: { type: 'api_key', id: 'k1' },
    limits: {
      requestsPerMinute: 100,
      tokensPerMinute: 100_000,
      monthlyTokens: 1_000_000,
      monthlyBudgetUsd: 10,
      ...limits,
    },
    auditPrompts: false,
    placements: [],
  };
}
