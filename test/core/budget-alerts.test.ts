import type { BudgetThresholdDetail } from '../../contract/events';
import { announceBudgetThresholds, thresholdsReached } from '../../lambdas/core/budget-alerts';
import type { TenantUsageRecord } from '../../lambdas/core/ports';
import type { TenantRecord } from '../../lambdas/core/tenant';

describe('budget thresholds', () => {
  it('reaches 80 % and 100 % at exactly those shares of the budget', () => {
    // $10 budget: 80 % is 8e9 nano-dollars
    expect(thresholdsReached(7_999_999_999, 10)).toEqual([]);
    expect(thresholdsReached(8_000_000_000, 10)).toEqual([80]);
    expect(thresholdsReached(10_000_000_000, 10)).toEqual([80, 100]);
  });

  /** Usage of two tenants this month, their records, marks and a bus that fails when told to. */
  function world(failPublish: () => boolean) {
    const usage: TenantUsageRecord[] = [
      {
        tenantId: 'a-co',
        date: '2026-11-02',
        model: 'm1',
        requests: 1,
        inputTokens: 1,
        outputTokens: 1,
        costNanoUsd: 6e9,
      },
      {
        tenantId: 'a-co',
        date: '2026-11-03',
        model: 'm2',
        requests: 1,
        inputTokens: 1,
        outputTokens: 1,
        costNanoUsd: 3e9,
      },
      {
        tenantId: 'b-co',
        date: '2026-11-03',
        model: 'm1',
        requests: 1,
        inputTokens: 1,
        outputTokens: 1,
        costNanoUsd: 1e9,
      },
    ];
    const record = (tenantId: string, status: TenantRecord['status']) =>
      ({ tenantId, tier: 'standard', status, limits: { monthlyBudgetUsd: 10 } }) as TenantRecord;
    const marks = new Set<string>();
    const published: BudgetThresholdDetail[] = [];
    const deps = {
      reports: { monthOfAllTenants: async () => usage },
      registry: { getTenant: async (id: string) => record(id, 'active') },
      marks: {
        mark: async (tenantId: string, month: string, percent: number) =>
          !marks.has(`${tenantId} ${month} ${percent}`) && Boolean(marks.add(`${tenantId} ${month} ${percent}`)),
        unmark: async (tenantId: string, month: string, percent: number) =>
          void marks.delete(`${tenantId} ${month} ${percent}`),
      },
      events: {
        publish: async (detail: BudgetThresholdDetail) => {
          if (failPublish()) throw new Error('bus down');
          published.push(detail);
        },
      },
    };
    return { deps, marks, published, record };
  }

  it("sums a tenant's models and days, and announces each threshold it reached once", async () => {
    const { deps, published } = world(() => false);
    const first = await announceBudgetThresholds(deps, 'pool', '2026-11');
    expect(first).toEqual([
      {
        plane: 'pool',
        tenantId: 'a-co',
        tier: 'standard',
        month: '2026-11',
        thresholdPercent: 80,
        spentUsd: 9,
        budgetUsd: 10,
      },
    ]);
    expect(await announceBudgetThresholds(deps, 'pool', '2026-11')).toEqual([]);
    expect(published).toEqual(first);
  });

  it('takes the mark back when the announcement fails, so the next run makes it', async () => {
    let down = true;
    const { deps, marks, published } = world(() => down);
    await expect(announceBudgetThresholds(deps, 'pool', '2026-11')).rejects.toThrow('bus down');
    expect(marks.size).toBe(0);
    down = false;
    expect(await announceBudgetThresholds(deps, 'pool', '2026-11')).toHaveLength(1);
    expect(published).toHaveLength(1);
  });

  it('warns about no tenant that is offboarding or gone', async () => {
    const { deps, record } = world(() => false);
    deps.registry.getTenant = async (id: string) =>
      (id === 'a-co' ? record(id, 'offboarding') : undefined) as TenantRecord;
    expect(await announceBudgetThresholds(deps, 'pool', '2026-11')).toEqual([]);
  });
});
