import { assertLegal, phaseOf, siloMayExist } from '../../lambdas/core/lifecycle';
import { beginOffboarding } from '../../lambdas/core/offboarding';
import { failPlacement, markDeploying, requestPool, requestSilo } from '../../lambdas/core/placement';
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

describe('a return to the pool, in the lifecycle table', () => {
  const returning = (status: PlacementStatus, current: 'pool' | 'silo') =>
    record({ desired: 'pool', current, status, siloUrl: 'https://silo.example' });

  it('leaves the tenant managed at its silo until the switch, then only the safe direction in the pool until done', () => {
    for (const status of ['requested', 'copying', 'copied', 'failed'] as const) {
      expect(phaseOf(returning(status, 'silo'), undefined)).toBe('moved');
      expect(() => assertLegal(returning(status, 'silo'), 'configure', undefined)).toThrow(/managed at its own stack/);
      expect(() => assertLegal(returning(status, 'silo'), 'offboard', undefined)).not.toThrow();
    }
    for (const status of ['catching_up', 'cleaning'] as const) {
      const switched = returning(status, 'pool');
      expect(phaseOf(switched, undefined)).toBe('returning');
      for (const operation of ['suspend', 'revoke_key', 'offboard', 'request_pool'] as const) {
        expect(() => assertLegal(switched, operation, undefined)).not.toThrow();
      }
      for (const operation of [
        'configure',
        'issue_key',
        'change_adapters',
        'change_prompts',
        'request_silo',
      ] as const) {
        expect(() => assertLegal(switched, operation, undefined)).toThrow(/returning to the pool/);
      }
    }
    expect(phaseOf(returning('complete', 'pool'), undefined)).toBe('serving');
  });

  it('has the silo, once switched back, forward the tenant and refuse changes to it', () => {
    const silo = record({ current: 'pool', desired: 'pool', status: 'complete', poolUrl: 'https://pool.example' });
    expect(phaseOf(silo, 'bank-co')).toBe('moved');
    expect(() => assertLegal(silo, 'issue_key', 'bank-co')).toThrow(/returned to the pool .*https:\/\/pool\.example/);
    expect(phaseOf(record({ current: 'silo', desired: 'silo', status: 'complete' }), 'bank-co')).toBe('serving');
  });

  it('is asked for once a move to the silo is done, and refuses a promotion while it is under way', async () => {
    const { ports } = inMemoryPorts();
    const started: unknown[] = [];
    const deps = {
      registry: ports.registry,
      now: () => 0,
      workflow: { start: async (t: unknown) => void started.push(t) },
    };
    await ports.registry.createTenant(
      record({ current: 'silo', status: 'catching_up', siloUrl: 'https://silo.example' }),
    );
    await expect(requestPool(deps, 'bank-co')).rejects.toThrow(/still moving to its silo \(catching_up\)/);
    const done = await ports.registry.getTenant('bank-co');
    if (!done?.placement) throw new Error('no placement');
    await ports.registry.updateTenant({ ...done, placement: { ...done.placement, status: 'complete' } });
    const asked = await requestPool(deps, 'bank-co');
    expect(asked.placement).toMatchObject({
      current: 'silo',
      desired: 'pool',
      status: 'requested',
      siloUrl: 'https://silo.example',
    });
    expect(started).toEqual([{ tenantId: 'bank-co', to: 'pool' }]);
    await expect(requestSilo(deps, 'bank-co')).rejects.toThrow(/returning to the pool \(requested\)/);
    // failed before its switch: still served by its silo; asked again, it resumes
    const failed = await failPlacement(deps, 'bank-co', 'migration failed: boom');
    expect(failed.placement).toMatchObject({ current: 'silo', status: 'failed', error: 'migration failed: boom' });
    expect((await requestPool(deps, 'bank-co')).placement?.error).toBeUndefined();
    expect(started).toHaveLength(2);
  });
});

describe('whether a silo stack may exist for a tenant (what its offboarding decommissions)', () => {
  it('is not so once a return to the pool is complete: the return decommissioned the silo', () => {
    expect(siloMayExist(record({ desired: 'pool', current: 'pool', status: 'complete' }))).toBe(false);
    expect(siloMayExist(record({ desired: 'pool', current: 'pool', status: 'cleaning', siloUrl: 'https://s' }))).toBe(
      true,
    );
  });

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
