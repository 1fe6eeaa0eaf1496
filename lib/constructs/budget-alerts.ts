import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, EventField, Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction as LambdaTarget, SnsTopic } from 'aws-cdk-lib/aws-events-targets';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { BUDGET_EVENTS, type BudgetThresholdDetail } from '../../contract/events';
import { PlatformFunction } from './platform-function';

const field = (name: keyof BudgetThresholdDetail) => EventField.fromPath(`$.detail.${name}`);

export interface BudgetAlertsProps {
  /** The ledger: the check Scans this month's usage of every tenant, with its own role. */
  readonly ledgerTable: ITable;
  /** Tenants' budgets, and the marks of thresholds already announced. */
  readonly tenantTable: ITable;
  /** Where this plane's announcements go (the operators' alarm topic). */
  readonly topic: ITopic;
  /** `pool`, or the silo's tenant id: the rule matches this plane's announcements only. */
  readonly plane: string;
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How often spends are checked against budgets.
   * @default Duration.minutes(5)
   */
  readonly checkEvery?: Duration;
  readonly logRetention?: RetentionDays;
}

/**
 * Budget burn: a scheduled function announces each tenant whose spend this month reached 80 % or
 * 100 % of its budget on the default event bus, and a rule sends this plane's announcements to
 * the operators' topic. Operators route them further with rules of their own (email, webhooks).
 */
export class BudgetAlerts extends Construct {
  public readonly function: LambdaFunction;
  /** The rule that sends this plane's budget events to the topic; add targets to route them elsewhere. */
  public readonly rule: Rule;

  constructor(scope: Construct, id: string, props: BudgetAlertsProps) {
    super(scope, id);
    this.function = new PlatformFunction(this, 'Check', {
      handlerName: 'budget-alerts',
      environment: props.environment,
      logRetention: props.logRetention,
      memorySize: 512,
      timeout: Duration.minutes(2),
    }).function;
    props.ledgerTable.grant(this.function, 'dynamodb:Scan');
    props.tenantTable.grant(this.function, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem');
    EventBus.fromEventBusName(this, 'DefaultBus', 'default').grantPutEventsTo(this.function);
    new Rule(this, 'Schedule', {
      description: 'Checks tenants spends against their monthly budgets',
      schedule: Schedule.rate(props.checkEvery ?? Duration.minutes(5)),
      targets: [new LambdaTarget(this.function, { retryAttempts: 0 })],
    });
    this.rule = new Rule(this, 'Announcements', {
      description: "This plane's tenant budget thresholds (80 %, 100 %)",
      eventPattern: {
        source: [BUDGET_EVENTS.source],
        detailType: [BUDGET_EVENTS.thresholdReached],
        detail: { plane: [props.plane] },
      },
      targets: [
        new SnsTopic(props.topic, {
          // A role of this rule publishes, not a topic policy open to EventBridge at large.
          authorizeUsingRole: true,
          message: RuleTargetInput.fromText(
            `Tenant ${field('tenantId')} (${field('tier')}) reached ${field('thresholdPercent')} % of its ${field('month')} budget: $${field('spentUsd')} of $${field('budgetUsd')}`,
          ),
        }),
      ],
    });
    NagSuppressions.addResourceSuppressions(
      this.rule,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "Publishing to a topic under a silo's key: CDK's SNS grant names the key's GenerateDataKey* family, on that one key.",
          appliesTo: ['Action::kms:GenerateDataKey*'],
        },
      ],
      true,
    );
  }
}
