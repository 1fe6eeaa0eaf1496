import { PowertoolsMetrics } from '../../lambdas/adapters/powertools-metrics';
import type { Reservation } from '../../lambdas/core/ports';

/** The EMF lines the adapter writes to stdout (what CloudWatch turns into metrics), parsed. */
function emfLines(write: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    write();
  } finally {
    spy.mockRestore();
  }
  return lines.map((line) => JSON.parse(line));
}

describe('platform metrics as CloudWatch embedded metric format', () => {
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  beforeAll(() => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  });
  afterAll(() => {
    process.env.POWERTOOLS_METRICS_DISABLED = saved;
  });

  const reservation: Reservation = {
    tenantId: 'acme',
    tier: 'standard',
    requestId: 'req-1',
    model: 'nova-micro',
    month: '2026-11',
    estimate: { tokens: 10, costNanoUsd: 100 },
    reservedAtMs: 0,
    shard: 0,
    recordShard: 0,
  };

  it('counts a request per tier and per route, the tenant id a property (not a dimension) in the pool', () => {
    const [line] = emfLines(() =>
      new PowertoolsMetrics({ tenantDimension: false }).request({
        tenantId: 'acme',
        tier: 'standard',
        requestId: 'req-1',
        route: 'POST /v1/chat/completions',
        status: 200,
        latencyMs: 42,
        cache: 'hit',
      }),
    );
    expect(line._aws).toMatchObject({
      CloudWatchMetrics: [
        {
          Namespace: 'MultiTenantAiPlatform',
          Dimensions: [
            ['service', 'tier'],
            ['service', 'tier', 'route'],
          ],
        },
      ],
    });
    expect(line).toMatchObject({
      service: 'platform',
      tier: 'standard',
      route: 'POST /v1/chat/completions',
      tenantId: 'acme',
      requestId: 'req-1',
      Requests: 1,
      Latency: 42,
      ServerErrors: 0,
      CacheHits: 1,
    });
  });

  it('counts a refusal by its code, and a server error as such', () => {
    const metrics = new PowertoolsMetrics({ tenantDimension: false });
    const outcome = {
      tenantId: 'acme',
      tier: 'basic' as const,
      requestId: 'r',
      route: 'POST /v1/embeddings',
      latencyMs: 3,
    };
    const [refusedRequest, refusal] = emfLines(() =>
      metrics.request({ ...outcome, status: 429, errorCode: 'budget_exceeded' }),
    );
    expect(refusedRequest).toMatchObject({ Requests: 1, ServerErrors: 0 });
    expect(refusal).toMatchObject({ errorCode: 'budget_exceeded', Refusals: 1 });
    expect(
      (refusal._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions,
    ).toEqual([
      ['service', 'tier'],
      ['service', 'tier', 'errorCode'],
    ]);
    const failed = emfLines(() => metrics.request({ ...outcome, status: 500, errorCode: 'internal_error' }));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ServerErrors: 1 });
  });

  it("counts a settled call's tokens and cost per model, and per tenant in a silo", () => {
    const [line] = emfLines(() =>
      new PowertoolsMetrics({ tenantDimension: true }).settled(reservation, {
        inputTokens: 120,
        outputTokens: 30,
        costNanoUsd: 2_500_000,
      }),
    );
    expect((line._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0].Dimensions).toEqual([
      ['service', 'tier'],
      ['service', 'tier', 'model'],
      ['service', 'tier', 'tenantId'],
    ]);
    expect(line).toMatchObject({ model: 'nova-micro', InputTokens: 120, OutputTokens: 30, CostUsd: 0.0025 });
  });

  it('keeps no dimension of one line in the next (a tier or a route never leaks into another request)', () => {
    const metrics = new PowertoolsMetrics({ tenantDimension: false });
    const [disconnect, settled] = emfLines(() => {
      metrics.streamDisconnected({ tenantId: 'acme', tier: 'enterprise' }, 'POST /v1/chat/completions');
      metrics.settled({ ...reservation, tier: 'basic' }, { inputTokens: 1, outputTokens: 1, costNanoUsd: 1 });
    });
    expect(disconnect).toMatchObject({ tier: 'enterprise', StreamDisconnects: 1 });
    expect(settled.tier).toBe('basic');
    expect(settled.route).toBeUndefined();
    expect(settled.StreamDisconnects).toBeUndefined();
  });
});
