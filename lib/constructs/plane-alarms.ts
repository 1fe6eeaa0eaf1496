import { CfnOutput, Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

export interface PlaneAlarmsProps {
  readonly api: RestApi;
  /** Its failures answer 503 to every tenant of the plane. */
  readonly authorizer: IFunction;
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
 * The plane's own alarms, on an SNS topic of its own that operators subscribe to: server errors of
 * the API, authorizer errors, dead-lettered ingest jobs, failed workflows. A silo has its own, so
 * an enterprise tenant's incidents are seen, and can be routed, apart from the pool's.
 */
export class PlaneAlarms extends Construct {
  public readonly topic: Topic;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: PlaneAlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', { enforceSSL: true, masterKey: props.encryptionKey });
    props.encryptionKey?.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
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
      'ApiServerErrors',
      props.api.metricServerError(fiveMinutes),
      5,
      'The API answered 5xx at least 5 times in 5 minutes',
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
    props.workflows.forEach((workflow, i) => {
      alarm(`WorkflowFailed${i}`, workflow.metricFailed(fiveMinutes), 1, 'A tenant offboarding or move failed');
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.topic.topicArn,
      description: "Subscribe to this plane's alarms",
    });
  }
}
