import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  DefinitionBody,
  type IChainable,
  LogLevel,
  StateMachine,
  StateMachineType,
} from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { ITEM_ACCESS_ACTIONS } from '../../contract/iam';
import type { FunctionName } from '../../contract/routes';
import { PlatformFunction } from './platform-function';
import type { TenantAccessRole } from './tenant-access-role';

/** What a tenant workflow's steps function needs: the registry it reports on, tenant sessions for the data. */
export interface WorkflowStepsProps {
  readonly handlerName: FunctionName;
  readonly environment: Readonly<Record<string, string>>;
  readonly tenantTable: ITable;
  readonly tenantAccess: TenantAccessRole;
  readonly logRetention?: RetentionDays;
}

/** The Lambda that runs a tenant workflow's steps, with the registry's item actions and tenant sessions. */
export function workflowSteps(scope: Construct, props: WorkflowStepsProps): IFunction {
  const steps = new PlatformFunction(scope, 'Steps', {
    handlerName: props.handlerName,
    environment: props.environment,
    logRetention: props.logRetention,
    timeout: Duration.minutes(5),
  }).function;
  props.tenantTable.grant(steps, ...ITEM_ACCESS_ACTIONS);
  props.tenantAccess.grantAssume(steps);
  return steps;
}

/**
 * A standard workflow, every state logged for a year without execution data (inputs and results
 * name tenants and counts, never their content), with the cdk-nag findings it accepts.
 */
export function standardWorkflow(
  scope: Construct,
  props: { readonly definition: IChainable; readonly timeout: Duration; readonly stateMachineName?: string },
): StateMachine {
  const stateMachine = new StateMachine(scope, 'StateMachine', {
    stateMachineName: props.stateMachineName,
    stateMachineType: StateMachineType.STANDARD,
    definitionBody: DefinitionBody.fromChainable(props.definition),
    timeout: props.timeout,
    logs: {
      destination: new LogGroup(scope, 'Logs', { retention: RetentionDays.ONE_YEAR }),
      level: LogLevel.ALL,
      includeExecutionData: false,
    },
  });
  NagSuppressions.addResourceSuppressions(stateMachine, [
    {
      id: 'AwsSolutions-SF2',
      reason:
        'X-Ray on the state machine needs xray:* on Resource *; its steps are traced in their own Lambda, and the execution history records every state.',
    },
  ]);
  return stateMachine;
}

/** The ARN a state machine of this name has in the scope's stack: known before it exists, so no cycle. */
export function stateMachineArn(scope: Construct, stateMachineName: string): string {
  return Stack.of(scope).formatArn({
    service: 'states',
    resource: 'stateMachine',
    resourceName: stateMachineName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}
