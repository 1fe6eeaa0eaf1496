import { Aws, CfnOutput, Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, type IMetric, MathExpression, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { type ITable, Operation } from 'aws-cdk-lib/aws-dynamodb';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IDomain } from 'aws-cdk-lib/aws-opensearchservice';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

export interface PlaneAlarmsProps {
  readonly api: RestApi;
  /** Its failures answer 503 to every tenant of the plane. */
  readonly authorizer: IFunction;
  /** Every function of the plane: their errors and throttles, summed. */
  readonly functions: readonly IFunction[];
  /** The usage ledger: throttled, it refuses model calls (503) however far each tenant is from its limits. */
  readonly ledgerTable: ITable;
  /** The vector search domain: red, retrieval and ingest fail. */
  readonly searchDomain: IDomain;
  /** Ingest jobs that failed every attempt: documents left `queued`. */
  readonly deadLetterQueue: IQueue;
  /** Workflows whose failure leaves a tenant half offboarded or half moved. */
  readonly workflows: readonly IStateMachine[];
  /**
   * A silo's own key, for its alarm topic (CloudWatch may use it to publish).
   * @default - an unencrypted topic: alarm notifications carry no tenant data
   */
  readonly encryptionKey?: IKey;
}

/**
 * The plane's own alarms, on an SNS topic of its own that operators subscribe to: the API's rate
 * of server errors, authorizer errors, the functions' errors and throttles, ledger throttling,
 * the search domain's health, dead-lettered ingest jobs, failed workflows (and the tenants' budget
 * events, see BudgetAlerts). A silo has its own, so an enterprise tenant's incidents are seen, and
 * can be routed, apart from the pool's.
 */
export class PlaneAlarms extends Construct {
  public readonly topic: Topic;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: PlaneAlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', { enforceSSL: true, masterKey: props.encryptionKey });
    // Only for this account's alarms and rules: no other account's can publish through the key.
    const fromThisAccount = { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } };
    for (const publisher of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      props.encryptionKey?.grant(
        new ServicePrincipal(publisher, { conditions: fromThisAccount }),
        'kms:Decrypt',
        'kms:GenerateDataKey*',
      );
    }
    if (!props.encryptionKey) {
      NagSuppressions.addResourceSuppressions(this.topic, [
        {
          id: 'AwsSolutions-SNS2',
          reason:
            'Alarm notifications carry no tenant data; CloudWatch cannot publish to a topic under the AWS-managed SNS key. A silo encrypts its topic with its own key.',
        },
      ]);
    }
    const alarm = (name: string, metric: IMetric, threshold: number, description: string) => {
      const created = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(new SnsAction(this.topic));
      this.alarms.push(created);
    };
    const fiveMinutes = { period: Duration.minutes(5), statistic: 'Sum' };
    alarm(
      'ApiServerErrorRate',
      props.api.metricServerError({ period: Duration.minutes(5), statistic: 'Average' }),
      0.05,
      'At least 5 % of API requests answered 5xx in 5 minutes',
    );
    alarm(
      'AuthorizerErrors',
      props.authorizer.metricErrors(fiveMinutes),
      1,
      'The tenant authorizer failed: callers got 503',
    );
    alarm(
      'IngestDeadLetters',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      1,
      'Ingest jobs failed every attempt: their documents stay queued',
    );
    // An alarm watches at most 10 metrics: the functions' sums are taken ten functions at a time.
    for (let group = 0; group * 10 < props.functions.length; group++) {
      const functions = props.functions.slice(group * 10, group * 10 + 10);
      const sum = (metricOf: (fn: IFunction) => IMetric) =>
        new MathExpression({
          expression: functions.map((_, i) => `m${i}`).join(' + '),
          usingMetrics: Object.fromEntries(functions.map((fn, i) => [`m${i}`, metricOf(fn)])),
          period: Duration.minutes(5),
        });
      alarm(
        `FunctionErrors${group}`,
        sum((fn) => fn.metricErrors(fiveMinutes)),
        5,
        'Functions failed (crashed or timed out) at least 5 times in 5 minutes',
      );
      alarm(
        `FunctionThrottles${group}`,
        sum((fn) => fn.metricThrottles(fiveMinutes)),
        1,
        'Lambda throttled functions: requests were refused for want of concurrency',
      );
    }
    alarm(
      'LedgerThrottled',
      props.ledgerTable.metricThrottledRequestsForOperations({
        operations: [
          Operation.TRANSACT_WRITE_ITEMS,
          Operation.UPDATE_ITEM,
          Operation.QUERY,
          Operation.BATCH_GET_ITEM,
          Operation.GET_ITEM,
        ],
        ...fiveMinutes,
      }),
      10,
      'The usage ledger throttled requests: model calls were refused as unavailable',
    );
    alarm(
      'SearchClusterRed',
      props.searchDomain.metricClusterStatusRed({ period: Duration.minutes(1), statistic: 'Maximum' }),
      1,
      'The vector search domain is red: retrieval and ingest fail',
    );
    alarm(
      'SearchWritesBlocked',
      props.searchDomain.metricClusterIndexWritesBlocked({ period: Duration.minutes(5), statistic: 'Maximum' }),
      1,
      'The vector search domain blocks writes: ingest fails',
    );
    props.workflows.forEach((workflow, i) => {
      alarm(`WorkflowFailed${i}`, workflow.metricFailed(fiveMinutes), 1, 'A tenant offboarding or move failed');
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.topic.topicArn,
      description: "Subscribe to this plane's alarms",
    });
  }
}
