import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as Unit } from '@aws-lambda-powertools/metrics/types';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../../contract/metrics';
import { type Tier, tierSchema } from '../../contract/tenancy';
import { nanoUsdToUsd } from '../core/catalog';
import { usageByModel } from '../core/metering';
import type { ActualUsage, PlatformMetrics, RequestOutcome, Reservation } from '../core/ports';

export interface PowertoolsMetricsOptions {
  /**
   * Also count per tenant (a `tenantId` dimension): a silo's one tenant. In the pool the tenant id
   * is a property of each line, queried with Logs Insights: a dimension per tenant would be
   * thousands of custom metrics.
   */
  readonly tenantDimension: boolean;
}

/**
 * Platform metrics as CloudWatch embedded-metric-format lines (Powertools): one line per request,
 * per settled model call and per event, each counted platform-wide, per tier and per route or
 * model, with the tenant and request ids as properties.
 */
export class PowertoolsMetrics implements PlatformMetrics {
  /**
   * One Metrics a tier, the tier among its default dimensions: set once, not on each line. Built
   * with the adapter, as Powertools reads POWERTOOLS_METRICS_DISABLED when a Metrics is built.
   */
  private readonly byTier = new Map(
    tierSchema.options.map((tier) => [
      tier,
      new Metrics({
        namespace: METRICS_NAMESPACE,
        serviceName: METRICS_SERVICE,
        defaultDimensions: { service: METRICS_SERVICE, tier },
      }),
    ]),
  );

  constructor(private readonly options: PowertoolsMetricsOptions) {}

  request(outcome: RequestOutcome): void {
    this.line(outcome, { route: outcome.route }, (add) => {
      add('Requests', MetricUnit.Count, 1);
      add('Latency', MetricUnit.Milliseconds, outcome.latencyMs);
      add('ServerErrors', MetricUnit.Count, outcome.status >= 500 ? 1 : 0);
      if (outcome.cache) add('CacheHits', MetricUnit.Count, outcome.cache === 'hit' ? 1 : 0);
    });
    if (outcome.errorCode && outcome.status < 500) {
      // Refusals by code (rate_limited, budget_exceeded, invalid_request...): a bounded set.
      this.line(outcome, { errorCode: outcome.errorCode }, (add) => add('Refusals', MetricUnit.Count, 1));
    }
  }

  settled(reservation: Reservation, usage: ActualUsage): void {
    for (const part of usageByModel(reservation, usage)) {
      this.line(reservation, { model: part.model }, (add) => {
        add('InputTokens', MetricUnit.Count, part.inputTokens);
        add('OutputTokens', MetricUnit.Count, part.outputTokens);
        add('CostUsd', MetricUnit.NoUnit, nanoUsdToUsd(part.costNanoUsd));
      });
    }
  }

  reservationOverage(reservation: Reservation, tokens: number): void {
    this.line(reservation, { model: reservation.model }, (add) =>
      add('ReservationOverageTokens', MetricUnit.Count, tokens),
    );
  }

  streamDisconnected(tenant: { tenantId: string; tier: RequestOutcome['tier'] }, route: string): void {
    this.line(tenant, { route }, (add) => add('StreamDisconnects', MetricUnit.Count, 1));
  }

  /**
   * One EMF line: its metrics under the dimension sets {service, tier}, {service, tier, <by>}
   * (and {service, tier, tenantId} in a silo), the tenant and request ids as properties.
   */
  private line(
    subject: { tenantId: string; tier: Tier; requestId?: string },
    by: Record<string, string>,
    addMetrics: (add: (name: string, unit: Unit, value: number) => void) => void,
  ): void {
    const metrics = this.byTier.get(subject.tier) as Metrics;
    // The tier is a default dimension, so each set has it; `{}` is the set of the defaults alone.
    metrics.addDimensions({});
    metrics.addDimensions(by);
    // A dimension's value is in the line already: the tenant id is a property only where it is not one.
    if (this.options.tenantDimension) metrics.addDimensions({ tenantId: subject.tenantId });
    else metrics.addMetadata('tenantId', subject.tenantId);
    if (subject.requestId) metrics.addMetadata('requestId', subject.requestId);
    addMetrics((name, unit, value) => metrics.addMetric(name, unit, value));
    metrics.publishStoredMetrics();
  }
}
