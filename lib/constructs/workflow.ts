import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type { IProject } from 'aws-cdk-lib/aws-codebuild';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  type IChainable,
  IntegrationPattern,
  JsonPath,
  LogLevel,
  type RetryProps,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { CodeBuildStartBuild, EventBridgePutEvents, LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { ITEM_ACCESS_ACTIONS } from '../../contract/iam';
import type { FunctionName } from '../../contract/routes';
import type { BuildPhaseOf, DurableWorkflow, InputField, WorkflowRetry, WorkflowStep } from '../../contract/workflows';
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

/** What a workflow's steps run on: its steps Lambda, the build project of each phase, the bus it announces on. */
export interface WorkflowTargets<W extends DurableWorkflow> {
  readonly stepFunction: IFunction;
  /** A phase without a project is left out, with the Choice that would pick it. */
  readonly projects: Readonly<Record<BuildPhaseOf<W>, IProject | undefined>>;
  readonly eventBus: IEventBus;
}

/**
 * The state machine's definition, read from the workflow's list (`contract/workflows.ts`): one
 * state per step, each followed by the next, then the Succeed state; a Lambda step or build that
 * fails goes to the failure steps, then the Fail state. The local runner walks the same list.
 */
export function workflowDefinition<W extends DurableWorkflow>(
  scope: Construct,
  workflow: W,
  targets: WorkflowTargets<W>,
): IChainable {
  const path = (field: InputField) =>
    typeof field === 'string' ? field : `States.Format('${field.format}', ${field.args.join(', ')})`;
  const fields = (input: Readonly<Record<string, InputField>>) =>
    Object.fromEntries(Object.entries(input).map(([name, field]) => [`${name}.$`, path(field)]));
  const retry = (r: WorkflowRetry): RetryProps => ({
    errors: ['States.ALL'],
    interval: Duration.seconds(r.intervalSeconds),
    backoffRate: r.backoffRate,
    maxAttempts: r.maxAttempts,
  });
  const exported = (name: string) =>
    `States.ArrayGetItem($.Build.ExportedEnvironmentVariables[?(@.Name == '${name}')].Value, 0)`;
  const projectOf = (phase: string) => targets.projects[phase as BuildPhaseOf<W>];

  const stateOf = (step: WorkflowStep) => {
    switch (step.kind) {
      case 'lambda':
        return new LambdaInvoke(scope, step.name, {
          lambdaFunction: targets.stepFunction,
          payload: TaskInput.fromObject({ step: step.step, ...fields(step.input) }),
          resultSelector: Object.fromEntries(workflow.lambda.keep.map((name) => [`${name}.$`, `$.Payload.${name}`])),
          resultPath: workflow.lambda.at,
          retryOnServiceExceptions: true,
        }).addRetry(retry(workflow.lambda.retry));
      case 'build': {
        const build = new CodeBuildStartBuild(scope, step.name, {
          project: projectOf(step.phase) as IProject,
          integrationPattern: IntegrationPattern.RUN_JOB,
          environmentVariablesOverride: {
            PHASE: { value: step.phase },
            ...Object.fromEntries(
              Object.entries(step.env).map(([name, at]) => [name, { value: JsonPath.stringAt(at) }]),
            ),
          },
          ...(step.exports
            ? {
                resultSelector: Object.fromEntries(
                  Object.entries(step.exports.variables).map(([name, variable]) => [`${name}.$`, exported(variable)]),
                ),
                resultPath: step.exports.at,
              }
            : { resultPath: JsonPath.DISCARD }),
        });
        return workflow.buildRetry ? build.addRetry(retry(workflow.buildRetry)) : build;
      }
      case 'wait':
        return new Wait(scope, step.name, { time: WaitTime.timestampPath(step.until) });
      case 'announce':
        return new EventBridgePutEvents(scope, step.name, {
          entries: [
            {
              eventBus: targets.eventBus,
              source: workflow.source,
              detailType: step.detailType,
              detail: step.detail === '$' ? TaskInput.fromJsonPathAt('$') : TaskInput.fromObject(fields(step.detail)),
            },
          ],
          resultPath: JsonPath.DISCARD,
        });
    }
  };
  /** `steps` in order, then `end`; built from the last, so each state is given the one after it. */
  const sequence = (steps: readonly WorkflowStep[], end: IChainable, caught?: IChainable): IChainable => {
    let rest = end;
    for (const step of [...steps].reverse()) {
      if (step.kind === 'build' && !projectOf(step.phase)) continue;
      const state = stateOf(step);
      if (caught && (state instanceof LambdaInvoke || state instanceof CodeBuildStartBuild)) {
        state.addCatch(caught, { resultPath: workflow.onFailure.errorAt });
      }
      const next = state.next(rest);
      rest =
        step.kind === 'build' && step.onlyIf
          ? new Choice(scope, step.onlyIf.choice)
              .when(Condition.booleanEquals(step.onlyIf.flag, true), next)
              .otherwise(rest)
          : next;
    }
    return rest;
  };

  const failed = sequence(
    workflow.onFailure.steps,
    new Fail(scope, workflow.onFailure.failed, { error: workflow.onFailure.failed }),
  );
  return sequence(workflow.steps, new Succeed(scope, workflow.succeeded), failed);
}
