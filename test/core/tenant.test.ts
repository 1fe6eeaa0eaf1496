import { assertNoTenantOverride, fromAuthorizerContext, toAuthorizerContext } from '../../lambdas/core/tenant';

const context = {
  tenantId: 'acme',
  tier: 'standard' as const,
  principal: { type: 'api_key' as const, id: 'k1' },
  limits: { requestsPerMinute: 1, tokensPerMinute: 2, monthlyTokens: 3, monthlyBudgetUsd: 4 },
  auditPrompts: false,
  placements: ['t-acme', 'shared-basic'],
};

describe('tenant context', () => {
  it('round-trips through the flat authorizer context and comes back frozen', () => {
    const rebuilt = fromAuthorizerContext({ ...toAuthorizerContext(context), principalId: 'k1' });
    expect(rebuilt).toEqual(context);
    expect(Object.isFrozen(rebuilt)).toBe(true);
    expect(Object.isFrozen(rebuilt.limits)).toBe(true);
    expect(() => {
      (rebuilt as { tenantId: string }).tenantId = 'other';
    }).toThrow(TypeError);
  });

  it('refuses a missing or invalid context instead of guessing a tenant', () => {
    expect(() => fromAuthorizerContext(undefined)).toThrow(expect.objectContaining({ code: 'unauthenticated' }));
    expect(() => fromAuthorizerContext({ ...toAuthorizerContext(context), tenantId: '../other' })).toThrow(
      /tenant context/,
    );
    expect(() => fromAuthorizerContext({ ...toAuthorizerContext(context), limits: '{' })).toThrow(/tenant context/);
  });

  it.each([
    [{ body: { tenant_id: 'other' } }],
    [{ body: { tenantId: 'other' } }],
    [{ query: { tenant: 'other' } }],
    [{ headers: { 'X-Tenant-Id': 'other' } }],
    [{ headers: { 'x-org-id': 'other' } }],
  ])('rejects a request that names a tenant: %j', (request) => {
    expect(() => assertNoTenantOverride(request)).toThrow(
      expect.objectContaining({ code: 'tenant_override_forbidden', status: 400 }),
    );
  });

  it('lets ordinary requests through', () => {
    expect(() =>
      assertNoTenantOverride({
        body: { model: 'm', messages: [] },
        query: { from: '2026-11-01' },
        headers: { 'content-type': 'application/json' },
      }),
    ).not.toThrow();
  });
});
