import {
  AUTHORIZER_CONTEXT_FIELDS,
  assertNoTenantOverride,
  fromAuthorizerContext,
  tenantContexts,
  toAuthorizerContext,
} from '../../lambdas/core/tenant';

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

  it('serves one deeply frozen context to every request with the same authorizer output', () => {
    // GIVEN
    const contexts = tenantContexts(2);
    const piiRedaction = { entities: ['email' as const], patterns: [{ name: 'ref', regex: 'R-\\d+' }], restore: false };
    const raw = { ...toAuthorizerContext({ ...context, piiRedaction }), principalId: 'k1' };

    // WHEN
    const first = contexts(raw);
    const again = contexts({ ...raw });
    const otherKey = contexts({ ...raw, principalId: 'k2' });

    // THEN
    expect(again).toBe(first);
    expect(otherKey).not.toBe(first);
    expect(otherKey.principal.id).toBe('k2');
    expect(Object.isFrozen(first.piiRedaction?.patterns[0])).toBe(true);
    expect(() => contexts({ ...raw, limits: '{' })).toThrow(/tenant context/);
  });

  it('remembers contexts by every value the authorizer writes: two keys apart only in their own limits build two', () => {
    const full = {
      ...context,
      cacheTtlSeconds: 60,
      sessionScope: 'principal' as const,
      piiRedaction: { entities: ['email' as const], patterns: [], restore: false },
      inferenceProfiles: { 'nova-micro': 'arn:aws:bedrock:us-east-1:1:application-inference-profile/p' },
      routing: { 'nova-micro': { targets: [{ model: 'nova-lite' }], on: ['throttled' as const], retries: 0 } },
      keyLimits: { requestsPerMinute: 5 },
      userLimits: { monthlyTokens: 100 },
      expiresAt: 2_000_000_000,
    };
    const written = Object.keys(toAuthorizerContext(full));
    expect(written.filter((field) => !(AUTHORIZER_CONTEXT_FIELDS as readonly string[]).includes(field))).toEqual([]);
    const contexts = tenantContexts();
    const raw = toAuthorizerContext(full);
    const other = contexts({ ...raw, keyLimits: JSON.stringify({ requestsPerMinute: 50 }) });
    expect(contexts(raw).keyLimits).toEqual({ requestsPerMinute: 5 });
    expect(other.keyLimits).toEqual({ requestsPerMinute: 50 });
  });

  it('tells apart authorizer outputs that differ only in type', () => {
    const contexts = tenantContexts();
    const raw = { ...toAuthorizerContext(context), principalId: 'k1' };
    expect(contexts({ ...raw, cacheTtlSeconds: 60 }).cacheTtlSeconds).toBe(60);
    expect(() => contexts({ ...raw, cacheTtlSeconds: 'sixty' })).toThrow(/tenant context/);
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
