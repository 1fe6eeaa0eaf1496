import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MeteringMetrics, Reservation } from '../core/ports';

/** Metering metrics as CloudWatch embedded-metric-format lines (Powertools), namespace `MultiTenantAiPlatform`. */
export class PowertoolsMeteringMetrics implements MeteringMetrics {
  private readonly metrics = new Metrics({ namespace: 'MultiTenantAiPlatform', serviceName: 'metering' });

  reservationOverage(reservation: Reservation, tokens: number): void {
    // The model is a dimension; the tenant id a property (too many values for a dimension), for Logs Insights.
    const metric = this.metrics.singleMetric();
    metric.addDimension('model', reservation.model);
    metric.addMetadata('tenantId', reservation.tenantId);
    metric.addMetadata('requestId', reservation.requestId);
    metric.addMetric('ReservationOverageTokens', MetricUnit.Count, tokens);
  }
}
