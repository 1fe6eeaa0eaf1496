import { BUDGET_EVENTS } from '../../contract/events';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/** Budget announcements through a tenant's life: 80 % and 100 % once a month each, none once it is gone. */
describe('budget threshold events', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  const admin = () => ({ credential: platform.operatorToken });
  const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8 };
  /** Only the budget limits: no per-minute limit refuses first. */
  const roomy = { requestsPerMinute: 10_000, tokensPerMinute: 1_000_000 };
  const budgetEvents = () =>
    platform.eventBridge.events.filter(
      (event) => event.source === BUDGET_EVENTS.source && event.detailType === BUDGET_EVENTS.thresholdReached,
    );

  /** Calls until the budget refuses one; returns what the tenant spent, as its usage report says. */
  async function spendBudget(apiKey: string): Promise<number> {
    for (let calls = 0; calls < 200; calls++) {
      const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
      if (answer.status === 429) {
        expect(answer.body.error.code).toBe('budget_exceeded');
        break;
      }
      expect(answer.status).toBe(200);
    }
    return (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals.cost_usd;
  }

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
  });
  afterAll(() => platform.close());

  it('announces 80 % once, then 100 % once when the budget is lowered below the spend', async () => {
    const { apiKey } = await onboard(platform, 'thrifty-co', {
      tier: 'basic',
      limits: { ...roomy, monthlyBudgetUsd: 0.0001 },
    });
    expect(await platform.checkBudgets()).toEqual([]);
    const spent = await spendBudget(apiKey);
    // Admission keeps the spend under the budget: within one call's estimate of it.
    expect(spent).toBeGreaterThanOrEqual(0.00008);
    expect(spent).toBeLessThanOrEqual(0.0001);

    const month = new Date(clock.now()).toISOString().slice(0, 7);
    const eighty = {
      plane: 'pool',
      tenantId: 'thrifty-co',
      tier: 'basic',
      month,
      thresholdPercent: 80,
      spentUsd: spent,
      budgetUsd: 0.0001,
    };
    expect(await platform.checkBudgets()).toEqual([eighty]);
    expect(await platform.checkBudgets()).toEqual([]);
    expect(budgetEvents().map((event) => event.detail)).toEqual([eighty]);
    // the marks as a move to a silo reads them, to carry them over
    expect(await platform.deps.budgetAlertMarks.marked('thrifty-co')).toEqual([{ month, thresholdPercent: 80 }]);

    const lowered = await call(platform, 'PATCH', '/admin/tenants/thrifty-co', {
      ...admin(),
      body: { limits: { monthlyBudgetUsd: 0.00005 } },
    });
    expect(lowered.status).toBe(200);
    expect(await platform.checkBudgets()).toEqual([{ ...eighty, thresholdPercent: 100, budgetUsd: 0.00005 }]);
    expect(budgetEvents()).toHaveLength(2);
  });

  it('announces nothing for an offboarded tenant, and marks each threshold once however many runs race', async () => {
    const gone = await offboardCompletely(platform, clock, 'thrifty-co');
    expect(gone.status).toBe('offboarded');
    expect(await platform.checkBudgets()).toEqual([]);

    const { apiKey } = await onboard(platform, 'racing-co', {
      tier: 'basic',
      limits: { ...roomy, monthlyBudgetUsd: 0.0001 },
    });
    await spendBudget(apiKey);
    const runs = await Promise.all([platform.checkBudgets(), platform.checkBudgets(), platform.checkBudgets()]);
    expect(runs.flat().map((detail) => `${detail.tenantId} ${detail.thresholdPercent}`)).toEqual(['racing-co 80']);
    expect(budgetEvents()).toHaveLength(3);
  });
});
