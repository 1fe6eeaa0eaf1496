import { BUDGET_EVENTS, type BudgetThresholdDetail } from '../../contract/events';
import { nanoUsdToUsd } from './catalog';
import type { BudgetAlertMarks, BudgetEvents, TenantRegistry, UsageReports } from './ports';

export interface BudgetAlertDeps {
  readonly reports: UsageReports;
  readonly registry: Pick<TenantRegistry, 'getTenant'>;
  readonly marks: Pick<BudgetAlertMarks, 'mark' | 'unmark'>;
  readonly events: BudgetEvents;
}

/** The thresholds (percent of the budget) a spend has reached. */
export function thresholdsReached(spentNanoUsd: number, budgetUsd: number): number[] {
  return BUDGET_EVENTS.thresholdsPercent.filter((percent) => spentNanoUsd >= budgetUsd * percent * 10_000_000);
}

/**
 * Announces every tenant whose spend this month reached 80 % or 100 % of its budget, once per
 * threshold: the mark is written first (conditionally, so concurrent runs announce once), and taken
 * back if the announcement fails, so the next run makes it. Returns what it announced.
 */
export async function announceBudgetThresholds(
  deps: BudgetAlertDeps,
  plane: string,
  month: string,
): Promise<BudgetThresholdDetail[]> {
  const spent = new Map<string, number>();
  for (const record of await deps.reports.monthOfAllTenants(month)) {
    spent.set(record.tenantId, (spent.get(record.tenantId) ?? 0) + record.costNanoUsd);
  }
  const announced: BudgetThresholdDetail[] = [];
  for (const [tenantId, spentNanoUsd] of spent) {
    const tenant = await deps.registry.getTenant(tenantId);
    // Gone, or leaving: its usage stays for the bill, but there is nobody left to warn about.
    if (tenant?.status !== 'active' && tenant?.status !== 'suspended') continue;
    const budgetUsd = tenant.limits.monthlyBudgetUsd;
    for (const thresholdPercent of thresholdsReached(spentNanoUsd, budgetUsd)) {
      if (!(await deps.marks.mark(tenantId, month, thresholdPercent))) continue;
      const detail = {
        plane,
        tenantId,
        tier: tenant.tier,
        month,
        thresholdPercent,
        spentUsd: nanoUsdToUsd(spentNanoUsd),
        budgetUsd,
      };
      try {
        await deps.events.publish(detail);
      } catch (error) {
        await deps.marks.unmark(tenantId, month, thresholdPercent);
        throw error;
      }
      announced.push(detail);
    }
  }
  return announced;
}
