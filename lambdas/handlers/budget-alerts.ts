import middy from '@middy/core';
import { type BudgetThresholdDetail, POOL_PLANE } from '../../contract/events';
import { announceBudgetThresholds } from '../core/budget-alerts';
import { monthKey } from '../core/limits';
import { budgetAlertMarks, lambdaHandler, type PlatformDeps, registry, reports } from '../runtime';
import { budgetEvents } from '../runtime-eventbridge';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type BudgetAlertsDeps = Pick<
  PlatformDeps,
  'settings' | 'reports' | 'registry' | 'budgetAlertMarks' | 'budgetEvents' | 'now'
>;

/** On a schedule: announces each tenant whose spend this month reached 80 % or 100 % of its budget. */
export function create(deps: BudgetAlertsDeps) {
  return lambdaFunction(
    middy<unknown, { month: string; announced: BudgetThresholdDetail[] }>().handler(async () => {
      const month = monthKey(deps.now());
      const announced = await announceBudgetThresholds(
        { reports: deps.reports, registry: deps.registry, marks: deps.budgetAlertMarks, events: deps.budgetEvents },
        deps.settings.siloTenantId ?? POOL_PLANE,
        month,
      );
      return { month, announced };
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    settings: wiring.settings,
    reports: reports(wiring),
    registry: registry(wiring),
    budgetAlertMarks: budgetAlertMarks(wiring),
    budgetEvents: budgetEvents(wiring),
    now: Date.now,
  }),
);
