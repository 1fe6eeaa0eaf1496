import { type AdminUsageLine, adminUsageReport, usageCsv, usageRange, usageReport } from '../../lambdas/core/usage';

const records = [
  { date: '2026-11-02', model: 'nova-micro', requests: 2, inputTokens: 10, outputTokens: 20, costNanoUsd: 3_150 },
  { date: '2026-11-02', model: 'nova-lite', requests: 1, inputTokens: 5, outputTokens: 5, costNanoUsd: 1_500 },
  { date: '2026-11-03', model: 'nova-micro', requests: 1, inputTokens: 1, outputTokens: 1, costNanoUsd: 175 },
];

describe('usage reports', () => {
  it('defaults to the current month up to today', () => {
    expect(usageRange({}, Date.UTC(2026, 10, 24, 8))).toEqual({ from: '2026-11-01', to: '2026-11-24' });
  });

  it('groups by day, by model, or both, with exact totals', () => {
    const range = { from: '2026-11-01', to: '2026-11-30' };
    expect(usageReport(records, range, 'model').data).toEqual([
      { model: 'nova-lite', requests: 1, input_tokens: 5, output_tokens: 5, cost_usd: 0.0000015 },
      { model: 'nova-micro', requests: 3, input_tokens: 11, output_tokens: 21, cost_usd: 0.000003325 },
    ]);
    expect(usageReport(records, range, 'day').data.map((line) => [line.date, line.requests])).toEqual([
      ['2026-11-02', 3],
      ['2026-11-03', 1],
    ]);
    expect(usageReport(records, range).data).toHaveLength(3);
    expect(usageReport(records, range).totals).toEqual({
      requests: 4,
      input_tokens: 16,
      output_tokens: 26,
      cost_usd: 0.000004825,
    });
  });

  it("reports every tenant's month per tenant and model, and writes it as CSV", () => {
    const report = adminUsageReport(
      [...records.map((r) => ({ ...r, tenantId: 'acme' })), { ...records[0], tenantId: 'beta-co' }],
      '2026-11',
    );
    expect(report.totals).toMatchObject({ tenants: 2, requests: 6 });
    expect(usageCsv(report.data as AdminUsageLine[]).split('\n')).toEqual([
      'tenant_id,model,requests,input_tokens,output_tokens,cost_usd',
      'acme,nova-lite,1,5,5,0.000001500',
      'acme,nova-micro,3,11,21,0.000003325',
      'beta-co,nova-micro,2,10,20,0.000003150',
    ]);
  });
});
