import { assertLegal, phaseOf, siloMayExist } from '../../lambdas/core/lifecycle';
import { beginOffboarding } from '../../lambdas/core/offboarding';
import { failPlacement, markDeploying, requestSilo } from '../../lambdas/core/placement';
import type { PlacementStatus, TenantPlacement, TenantRecord } from '../../lambdas/core/tenant';
import { inMemoryPorts } from '../support/fakes';

const limits = { requestsPerMinute: 10, tokensPerMinute: 1000, monthlyTokens: 100_000, monthlyBudgetUsd: 10 };
const record = (placement?: Partial<TenantPlacement>): TenantRecord => ({
  tenantId: 'bank-co',
  version: 1,
  tier: 'enterprise',
  status: 'active',
  limits,
  auditPrompts: false,
  placements: [],
  createdAt: '2025-01-01T00:00:00.000Z',
  ...(placement && {
    placement: {
      current: 'pool',
      desired: 'silo',
      status: 'requested',
      migrated: {},
      updatedAt: '2025-01-01T00:00:00.000Z',
      ...placement,
    },
  }),
});

describe('the lifecycle table', () => {
  it('lets a tenant be offboarded at any moment of its move to a silo', () => {
    const statuses: [PlacementStatus, Partial<TenantPlacement>][] = [
      ['requested', {}],
      ['deploying', {}],
      ['copying', { siloUrl: 'https://silo.example' }],
      ['copied', { siloUrl: 'https://silo.example' }],
      ['catching_up', { current: 'silo', siloUrl: 'https://silo.example' }],
      ['cleaning', { current: 'silo', siloUrl: 'https://silo.example' }],
      ['complete', { current: 'silo', siloUrl: 'https://silo.example' }],
      ['failed', {}],
    ];
    const phases = statuses.map(([status, rest]) => phaseOf(record({ ...rest, status }), undefined));
    expect(new Set(phases)).toEqual(new Set(['preparing_move', 'moving', 'switching', 'moved', 'serving']));
    for (const [status, rest] of statuses) {
      expect(() => assertLegal(record({ ...rest, status }), 'offboard', undefined)).not.toThrow();
    }
  });

  it('still keeps what a move forbids forbidden: no key issued while the data is copied, no purge before offboarding', () => {
    expect(() => assertLegal(record({ status: 'copying' }), 'issue_key', undefined)).toThrow(/only revoking keys/);
    // (and the refusal no longer tells the operator to offboard after the move)
    expect(() => assertLegal(record({ status: 'deploying' }), 'purge', undefined)).toThrow(
      /is moving to its own stack \(deploying\)$/,
    );
  });
});

describe('whether a silo stack may exist for a tenant (what its offboarding decommissions)', () => {
  it('is so once its move got past `requested`, whatever step it is at', () => {
    expect(siloMayExist(record())).toBe(false);
    expect(siloMayExist(record({ status: 'requested' }))).toBe(false);
    for (const status of ['deploying', 'copying', 'copied'] as const)
      expect(siloMayExist(record({ status }))).toBe(true);
    for (const status of ['catching_up', 'cleaning', 'complete'] as const) {
      expect(siloMayExist(record({ status, current: 'silo', siloUrl: 'https://silo.example' }))).toBe(true);
    }
  });

  it('is so for a failed move whose deploy succeeded, and not for one that never deployed', () => {
    expect(siloMayExist(record({ status: 'failed', error: 'deploy failed' }))).toBe(false);
    expect(siloMayExist(record({ status: 'failed', siloUrl: 'https://silo.example' }))).toBe(true);
    expect(siloMayExist(record({ status: 'failed', siloResources: '{"region":"eu-central-1"}' }))).toBe(true);
    // asked again: the earlier silo is known until the new deploy
    expect(siloMayExist(record({ status: 'requested', siloUrl: 'https://silo.example' }))).toBe(true);
  });

  it('keeps, once offboarding began, the answer it began with', () => {
    const leaving = (silo: boolean): TenantRecord => ({
      ...record({ status: 'failed' }),
      status: 'offboarding',
      offboarding: {
        requestedAt: '2025-01-02T00:00:00.000Z',
        drainUntil: '2025-01-02T00:06:30.000Z',
        deleted: {},
        silo,
      },
    });
    expect(siloMayExist(leaving(true))).toBe(true);
    expect(siloMayExist(leaving(false))).toBe(false);
  });

  it('is decided when offboarding begins, so the move that offboarding fails does not change it', async () => {
    const { ports } = inMemoryPorts();
    const deps = { registry: ports.registry, now: () => Date.parse('2025-01-02T00:00:00Z'), drainMs: 390_000 };
    await ports.registry.createTenant({ ...record(), version: 0 });
    await requestSilo({ ...deps, workflow: { start: async () => undefined } }, 'bank-co');
    await markDeploying(deps, 'bank-co');
    const begun = await beginOffboarding(deps, 'bank-co');
    expect(begun).toMatchObject({ status: 'offboarding', offboarding: { silo: true } });
    // the deploy's next step finds the tenant leaving: the move fails, its silo unrecorded
    await expect(markDeploying(deps, 'bank-co')).rejects.toMatchObject({ code: 'conflict' });
    const failed = await failPlacement(deps, 'bank-co', 'not at this step: offboarding');
    expect(failed.placement).toMatchObject({ status: 'failed' });
    expect(siloMayExist(failed)).toBe(true);
  });

  it('stays known when a failed move whose silo was deployed is asked for again', async () => {
    const { ports } = inMemoryPorts();
    const deps = { registry: ports.registry, now: () => Date.parse('2025-01-02T00:00:00Z'), drainMs: 390_000 };
    await ports.registry.createTenant({
      ...record({ status: 'failed', siloUrl: 'https://silo.example', siloResources: '{}', error: 'copy failed' }),
      version: 0,
    });
    const again = await requestSilo({ ...deps, workflow: { start: async () => undefined } }, 'bank-co');
    expect(again.placement).toMatchObject({
      status: 'requested',
      siloUrl: 'https://silo.example',
      siloResources: '{}',
    });
    expect((await beginOffboarding(deps, 'bank-co')).offboarding?.silo).toBe(true);
  });
});
