import { Duration } from 'aws-cdk-lib';
import type { IProject } from 'aws-cdk-lib/aws-codebuild';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { OFFBOARDING_WORKFLOW } from '../../contract/workflows';
import type { TenantAccessRole } from './tenant-access-role';
import { standardWorkflow, workflowDefinition, workflowSteps } from './workflow';

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
 * Offboarding as a Step Functions standard workflow, in the steps `OFFBOARDING_WORKFLOW` lists:
 * wait until the tenant's `drainUntil` (no cached credential can still write), decommission a silo
 * tenant's silo (where the plane has silos), purge every store (retried with backoff; each store is
 * done once and recorded on the tenant record, so a retry resumes), tombstone, and announce the
 * outcome on EventBridge. The input is `{tenantId, drainUntil, silo}`; the admin function starts
 * one execution per tenant, named after it.
 */
export class OffboardingWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly stepFunction: IFunction;

  constructor(scope: Construct, id: string, props: OffboardingWorkflowProps) {
    super(scope, id);
    this.stepFunction = workflowSteps(this, { ...props, handlerName: 'offboarding' });
    const eventBus = props.eventBus ?? EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    // The steps, in the order `contract/workflows.ts` lists them (the local runner walks the same list).
    const definition = workflowDefinition(this, OFFBOARDING_WORKFLOW, {
      stepFunction: this.stepFunction,
      projects: { suspend: props.siloDecommission, decommission: props.siloDecommission },
      eventBus,
    });

    this.stateMachine = standardWorkflow(this, {
      definition,
      stateMachineName: props.stateMachineName,
      // Drain (a few minutes) plus retries; far below the standard workflow's one-year limit.
      timeout: Duration.hours(6),
    });
    this.suppressAcceptedFindings();
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
