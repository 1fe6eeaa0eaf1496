import { Duration, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IMetric,
  LogQueryVisualizationType,
  LogQueryWidget,
  MathExpression,
  Metric,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../../contract/metrics';
import type { Tier } from '../../contract/tenancy';

export interface PlaneDashboardProps {
  /** The tiers, one line each. */
  readonly tiers: readonly Tier[];
  readonly api: RestApi;
  /** The functions that call models: their logs hold each settled call's tenant, tokens and cost. */
  readonly modelFunctions: readonly LambdaFunction[];
  /** Shown as a status row. */
  readonly alarms: readonly Alarm[];
}

const PERIOD = Duration.minutes(5);

/**
 * The plane's CloudWatch dashboard: platform-wide and per-tier traffic, refusals, tokens, cost and
 * latency from the functions' embedded metrics; the top tenants by cost and by refusals from their
 * logs (Logs Insights: the tenant id is a property of each line, not a dimension); the API's own
 * metrics and the alarms' state.
 */
export class PlaneDashboard extends Construct {
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: PlaneDashboardProps) {
    super(scope, id);
    const byTier = (metricName: string, statistic = 'Sum') =>
      props.tiers.map(
        (tier) =>
          new Metric({
            namespace: METRICS_NAMESPACE,
            metricName,
            dimensionsMap: { service: METRICS_SERVICE, tier },
            statistic,
            period: PERIOD,
            label: tier,
          }),
      );
    const total = (metricName: string, label: string): IMetric => {
      // Ids unique within a graph, which may sum several metrics.
      const idOf = (i: number) => `${metricName.toLowerCase()}${i}`;
      return new MathExpression({
        expression: props.tiers.map((_, i) => idOf(i)).join(' + '),
        usingMetrics: Object.fromEntries(byTier(metricName).map((metric, i) => [idOf(i), metric])),
        period: PERIOD,
        label,
      });
    };
    const graph = (title: string, left: IMetric[], options: { stacked?: boolean; width?: number } = {}) =>
      new GraphWidget({ title, left, width: options.width ?? 8, height: 6, stacked: options.stacked });
    const logGroupNames = props.modelFunctions.map((fn) => fn.logGroup.logGroupName);
    const topTenants = (title: string, query: string) =>
      new LogQueryWidget({
        title,
        logGroupNames,
        queryString: query,
        view: LogQueryVisualizationType.TABLE,
        width: 12,
        height: 6,
      });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-tenants`,
      defaultInterval: Duration.days(1),
    });
    this.dashboard.addWidgets(
      graph('Platform: requests, server errors, refusals', [
        total('Requests', 'requests'),
        total('ServerErrors', 'server errors'),
        total('Refusals', 'refusals'),
      ]),
      graph('Platform: cost (USD) by tier', byTier('CostUsd'), { stacked: true }),
      graph('Platform: tokens', [total('InputTokens', 'input tokens'), total('OutputTokens', 'output tokens')]),
    );
    this.dashboard.addWidgets(
      graph('Requests by tier', byTier('Requests')),
      graph('Latency p99 by tier (ms)', byTier('Latency', 'p99')),
      graph('Refusals by code', [
        new MathExpression({
          expression: `SEARCH('{${METRICS_NAMESPACE},service,tier,errorCode} MetricName="Refusals"', 'Sum', ${PERIOD.toSeconds()})`,
          usingMetrics: {},
          period: PERIOD,
          label: '',
        }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Cache hits by tier', byTier('CacheHits')),
      graph('Streams the caller hung up on, by tier', byTier('StreamDisconnects')),
      graph('API: requests, 4xx, 5xx', [
        props.api.metricCount({ period: PERIOD }),
        props.api.metricClientError({ period: PERIOD }),
        props.api.metricServerError({ period: PERIOD }),
      ]),
    );
    this.dashboard.addWidgets(
      topTenants(
        'Top tenants by cost',
        [
          'fields tenantId, CostUsd, InputTokens, OutputTokens',
          'filter ispresent(CostUsd)',
          'stats sum(CostUsd) as costUsd, sum(InputTokens) as inputTokens, sum(OutputTokens) as outputTokens, count(*) as calls by tenantId',
          'sort costUsd desc',
          'limit 20',
        ].join(' | '),
      ),
      topTenants(
        'Top tenants by refusals',
        [
          'fields tenantId, errorCode, Refusals',
          'filter ispresent(Refusals)',
          'stats sum(Refusals) as refusals by tenantId, errorCode',
          'sort refusals desc',
          'limit 20',
        ].join(' | '),
      ),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: [...props.alarms], width: 24, height: 4 }),
    );
  }
}
