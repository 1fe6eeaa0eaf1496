import { type ResolvedModel, resolveModel } from '../../lambdas/core/catalog';
import { PlatformError } from '../../lambdas/core/errors';
import { admitModelCall, metered, modelCallBudgetMs, modelMayHaveRun, reserveCall } from '../../lambdas/core/metering';
import type { MeteringMetrics, Reservation } from '../../lambdas/core/ports';
import { DEFAULT_MODELS } from '../../lib/config';
import { inMemoryPorts } from '../support/fakes';
import { tenantContext } from '../support/tenant';

describe('metering of a model call', () => {
  const model = resolveModel(DEFAULT_MODELS, 'nova-micro', 'chat') as ResolvedModel;
  const tenant = tenantContext('meter-co');
  const call = { requestId: 'r1', model, estimate: { inputTokens: 100, outputTokens: 50 }, nowMs: 0 };
  const overages: [Reservation, number][] = [];
  const billedMetrics: [string, string, number][] = [];
  const metrics: MeteringMetrics = {
    reservationOverage: (reservation, tokens) => void overages.push([reservation, tokens]),
    settled: (reservation, usage) => void billedMetrics.push([reservation.tier, reservation.model, usage.costNanoUsd]),
  };
  beforeEach(() => {
    billedMetrics.length = 0;
  });

  it.each([
    ['a refusal before running (invalid)', new PlatformError('invalid_request', 'too long'), false],
    ['a refusal before running (throttled)', new PlatformError('upstream_unavailable', 'busy'), false],
    ['a timeout or abort', new PlatformError('upstream_timeout', 'late'), true],
    ['a broken answer', new PlatformError('upstream_error', 'broken'), true],
    ['an unexpected error', new TypeError('socket hang up'), true],
  ])('after %s, bills the estimate only if the model may have run', async (_name, error, billed) => {
    const { ports, events, settled } = inMemoryPorts();
    await expect(metered({ ledger: ports.ledger, metrics }, tenant, call, () => Promise.reject(error))).rejects.toBe(
      error,
    );
    expect(events).toEqual(['reserve r1 150', billed ? 'settle r1 150' : 'release r1']);
    // 100 input and 50 output tokens of nova-micro: 100 * 35 + 50 * 140 nano-dollars
    expect(settled).toEqual(
      billed ? [{ requestId: 'r1', inputTokens: 100, outputTokens: 50, costNanoUsd: 10500 }] : [],
    );
    // The cost metric counts what the ledger billed, once, under the tenant's tier.
    expect(billedMetrics).toEqual(billed ? [['basic', 'nova-micro', 10500]] : []);
    expect(modelMayHaveRun(error)).toBe(billed);
  });

  it('ends a call exactly once, however often and in whatever order its end is told', async () => {
    const { ports, events } = inMemoryPorts();
    const deps = { ledger: ports.ledger, metrics };
    // A stream cut after its first event: the error path, then the finally, then a late retry of both.
    const streamed = await admitModelCall(deps, tenant, call);
    await streamed.failed(new PlatformError('upstream_timeout', 'late'));
    await streamed.finished({ inputTokens: 100, outputTokens: 7 });
    await streamed.failed(new PlatformError('upstream_timeout', 'late'));
    // A call refused before it ran, then told it finished: released once, never billed.
    const refused = await admitModelCall(deps, tenant, { ...call, requestId: 'r2' });
    await refused.failed(new PlatformError('upstream_unavailable', 'busy'));
    await refused.finished({ inputTokens: 100, outputTokens: 0 });
    expect(events).toEqual(['reserve r1 150', 'settle r1 150', 'reserve r2 150', 'release r2']);
  });

  it('settles what the model used, and counts tokens beyond the reservation in a metric', async () => {
    const { ports, events, settled } = inMemoryPorts();
    await metered({ ledger: ports.ledger, metrics }, tenant, call, async () => ({
      inputTokens: 130,
      outputTokens: 40,
    }));
    expect(events).toEqual(['reserve r1 150', 'settle r1 170']);
    expect(settled).toEqual([{ requestId: 'r1', inputTokens: 130, outputTokens: 40, costNanoUsd: 10150 }]);
    expect(billedMetrics).toEqual([['basic', 'nova-micro', 10150]]);
    expect(overages).toHaveLength(1);
    expect(overages[0][0]).toMatchObject({ tenantId: 'meter-co', requestId: 'r1', model: 'nova-micro' });
    expect(overages[0][1]).toBe(20);
  });

  it('neither reserves nor bills a call whose deadline passed before the model was asked', async () => {
    const { ports, events } = inMemoryPorts();
    let ran = false;
    const late = metered(
      { ledger: ports.ledger, metrics },
      tenant,
      { ...call, signal: AbortSignal.abort() },
      async () => {
        ran = true;
        return { inputTokens: 1, outputTokens: 1 };
      },
    );
    await expect(late).rejects.toMatchObject({ code: 'upstream_timeout' });
    expect(ran).toBe(false);
    expect(events).toEqual([]);
  });

  it('reserves a batch whole against the month alone, held for as long as it asked', async () => {
    const { ports } = inMemoryPorts();
    const reserve = jest.spyOn(ports.ledger, 'reserve');
    const batch = { ...call, requestId: 'batch-1', holdMs: 25 * 3600_000, perMinute: false as const };
    await reserveCall(ports.ledger, tenant, batch);
    expect(reserve).toHaveBeenCalledWith(
      tenant,
      expect.objectContaining({ requestId: 'batch-1', holdMs: 25 * 3600_000, perMinute: false }),
    );
  });

  it('leaves the model call room to settle and answer before the handler is killed', () => {
    expect(modelCallBudgetMs(30_000)).toBe(25_000);
    expect(modelCallBudgetMs(8_000)).toBe(6_000);
    expect(modelCallBudgetMs(0)).toBe(0);
  });
});
