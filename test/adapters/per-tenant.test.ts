import { perTenant } from '../../lambdas/adapters/per-tenant';

describe('perTenant', () => {
  it('builds once per tenant and drops the least recently used beyond 256 tenants', () => {
    const built: string[] = [];
    const clientOf = perTenant((tenantId) => {
      built.push(tenantId);
      return { tenantId };
    });
    const first = clientOf('t-0');
    expect(clientOf('t-0')).toBe(first);
    for (let i = 1; i < 256; i++) clientOf(`t-${i}`);
    clientOf('t-0'); // used again: now the most recent
    clientOf('t-256'); // evicts t-1, the least recently used
    expect(clientOf('t-0')).toBe(first);
    clientOf('t-1');
    expect(built.filter((id) => id === 't-1')).toHaveLength(2);
    expect(built.filter((id) => id === 't-0')).toHaveLength(1);
  });
});
