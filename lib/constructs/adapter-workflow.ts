import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  type StateMachine,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { ITEM_ACCESS_ACTIONS } from '../../contract/iam';
import type { AdapterEndpoint } from './adapter-endpoint';
import { PlatformFunction } from './platform-function';
import { standardWorkflow } from './workflow';

export interface AdapterWorkflowProps {
  /** Fixed, so the admin function learns the ARN without a cycle. */
  readonly stateMachineName: string;
  /** The registry: the poll records the adapter's status on its record. */
  readonly tenantTable: ITable;
  readonly endpoint: AdapterEndpoint;
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How long the step function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** How often the workflow asks SageMaker about a new adapter. */
const POLL_INTERVAL = Duration.seconds(30);

/**
 * Follows a new adapter, as a workflow rather than a waiting request: every 30 s its step asks
 * SageMaker (`DescribeInferenceComponent`) and records `InService`, or `Failed` with SageMaker's
 * reason, on the adapter's record, until it is settled. Input: `{tenantId, name}`.
 */
export class AdapterWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly stepFunction: IFunction;

  constructor(scope: Construct, id: string, props: AdapterWorkflowProps) {
    super(scope, id);
    this.stepFunction = new PlatformFunction(this, 'Steps', {
      handlerName: 'adapter-workflow',
      environment: props.environment,
      logRetention: props.logRetention,
    }).function;
    props.tenantTable.grant(this.stepFunction, ...ITEM_ACCESS_ACTIONS);
    props.endpoint.grantManageAdapters(this.stepFunction);

    const wait = new Wait(this, 'WaitForSageMaker', { time: WaitTime.duration(POLL_INTERVAL) });
    const poll = new LambdaInvoke(this, 'Poll', {
      lambdaFunction: this.stepFunction,
      payload: TaskInput.fromObject({ 'tenantId.$': '$.tenantId', 'name.$': '$.name' }),
      resultSelector: { 'status.$': '$.Payload.status' },
      resultPath: '$.poll',
      retryOnServiceExceptions: true,
    }).addRetry({ errors: ['States.ALL'], interval: Duration.seconds(10), backoffRate: 2, maxAttempts: 4 });
    const settled = new Choice(this, 'Settled')
      .when(Condition.stringEquals('$.poll.status', 'pending'), wait)
      .otherwise(new Succeed(this, 'Recorded'));
    // Loading an adapter takes minutes; a component that never settles is given up after the timeout.
    this.stateMachine = standardWorkflow(this, {
      definition: wait.next(poll).next(settled),
      stateMachineName: props.stateMachineName,
      timeout: Duration.hours(2),
    });
    NagSuppressions.addResourceSuppressions(
      this.stateMachine.role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'LambdaInvoke grants the versions of the one step function it invokes (`<function ARN>:*`); execution logging needs Resource *.',
        },
      ],
      true,
    );
  }

  grantStart(grantee: IGrantable): Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
