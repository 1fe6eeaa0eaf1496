import { Duration } from 'aws-cdk-lib';
import type { IProject } from 'aws-cdk-lib/aws-codebuild';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Chain,
  Choice,
  Condition,
  Fail,
  type IChainable,
  IntegrationPattern,
  JsonPath,
  type StateMachine,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { CodeBuildStartBuild, EventBridgePutEvents, LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { TenantAccessRole } from './tenant-access-role';
import { standardWorkflow, workflowSteps } from './workflow';

/** Source of the workflow's events on EventBridge, for the operator's rules (email, webhook). */
export const OFFBOARDING_EVENT_SOURCE = 'multi-tenant-ai-platform.offboarding';

export interface OffboardingWorkflowProps {
  /** Name of the state machine; fixed, so its ARN can be given to the functions that start it without a cycle. */
  readonly stateMachineName: string;
  /** The tenant registry: the steps read and write the tenant record and delete its API keys. */
  readonly tenantTable: ITable;
  /** Tenant data (ledger, audit, documents, indexes) is deleted through sessions of this role only. */
  readonly tenantAccess: TenantAccessRole;
  /** Environment of the runtime composition root. */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The placement pipeline's build, which purges a silo tenant's data in its silo and destroys the
   * silo stack (phase `decommission`) before the pool's own steps.
   * @default - the plane has no silos (a silo plane itself)
   */
  readonly siloDecommission?: IProject;
  /**
   * Where `TenantOffboarded` and `TenantOffboardingFailed` events go.
   * @default - the account's default event bus
   */
  readonly eventBus?: IEventBus;
  /**
   * How long the step function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * Offboarding as a Step Functions standard workflow: wait until the tenant's `drainUntil` (no
 * cached credential can still write), purge every store (retried with backoff; each store is done
 * once and recorded on the tenant record, so a retry resumes), tombstone, and announce the outcome
 * on EventBridge. The input is `{tenantId, drainUntil}`; the admin function starts one execution
 * per tenant, named after it.
 */
export class OffboardingWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly stepFunction: IFunction;

  constructor(scope: Construct, id: string, props: OffboardingWorkflowProps) {
    super(scope, id);
    this.stepFunction = workflowSteps(this, { ...props, handlerName: 'offboarding' });
    const eventBus = props.eventBus ?? EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    const step = (name: string, action: 'purge' | 'tombstone') =>
      new LambdaInvoke(this, name, {
        lambdaFunction: this.stepFunction,
        payload: TaskInput.fromObject({ step: action, tenantId: JsonPath.stringAt('$.tenantId') }),
        resultSelector: { 'tenantId.$': '$.Payload.tenantId', 'deleted.$': '$.Payload.deleted' },
        retryOnServiceExceptions: true,
      }).addRetry({
        errors: ['States.ALL'],
        interval: Duration.seconds(10),
        backoffRate: 2,
        maxAttempts: 6,
      });
    const announce = (name: string, detailType: string, detail: TaskInput) =>
      new EventBridgePutEvents(this, name, {
        entries: [{ eventBus, source: OFFBOARDING_EVENT_SOURCE, detailType, detail }],
        resultPath: JsonPath.DISCARD,
      });

    const failed = announce(
      'AnnounceFailure',
      'TenantOffboardingFailed',
      TaskInput.fromObject({ 'tenantId.$': '$$.Execution.Input.tenantId', 'error.$': '$.Error' }),
    ).next(new Fail(this, 'OffboardingFailed', { error: 'OffboardingFailed' }));
    const purge = step('PurgeTenantData', 'purge').addCatch(failed);
    const tombstone = step('Tombstone', 'tombstone').addCatch(failed);
    Chain.start(purge)
      .next(tombstone)
      .next(announce('AnnounceOffboarded', 'TenantOffboarded', TaskInput.fromJsonPathAt('$')))
      .next(new Succeed(this, 'Offboarded'));
    const definition = Chain.start(
      new Wait(this, 'WaitForDrain', { time: WaitTime.timestampPath('$.drainUntil') }),
    ).next(props.siloDecommission ? this.decommissionSilo(props.siloDecommission, failed, purge) : purge);

    this.stateMachine = standardWorkflow(this, {
      definition,
      stateMachineName: props.stateMachineName,
      // Drain (a few minutes) plus retries; far below the standard workflow's one-year limit.
      timeout: Duration.hours(6),
    });
    this.suppressAcceptedFindings();
  }

  /**
   * A silo tenant's data is purged in its silo and the silo stack destroyed (deploy with its data no
   * longer retained, then destroy) by the pipeline's build; a pool tenant goes straight to the purge.
   */
  private decommissionSilo(project: IProject, failed: IChainable, purge: IChainable): IChainable {
    const decommission = new CodeBuildStartBuild(this, 'DecommissionSilo', {
      project,
      integrationPattern: IntegrationPattern.RUN_JOB,
      environmentVariablesOverride: {
        PHASE: { value: 'decommission' },
        TENANT_ID: { value: JsonPath.stringAt('$.tenantId') },
      },
      resultPath: JsonPath.DISCARD,
    })
      .addRetry({ errors: ['States.ALL'], interval: Duration.minutes(1), backoffRate: 2, maxAttempts: 3 })
      .addCatch(failed)
      .next(purge);
    return new Choice(this, 'ServedBySilo')
      .when(Condition.booleanEquals('$.silo', true), decommission)
      .otherwise(purge);
  }

  /** The findings this design accepts, on this construct's own resources, each with its reason. */
  private suppressAcceptedFindings(): void {
    NagSuppressions.addResourceSuppressions(
      this.stateMachine.role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'LambdaInvoke grants the versions of the one step function it invokes (`<function ARN>:*`).',
          appliesTo: [{ regex: '/^Resource::<.*OffboardingSteps.*\\.Arn>:\\*$/g' }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Execution logging to CloudWatch Logs: the log-delivery actions (logs:CreateLogDelivery and the like) accept only Resource *.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
  }

  grantStart(grantee: IGrantable): Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
