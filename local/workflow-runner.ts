import type { BuildPhaseOf, DurableWorkflow, InputField, StatePath, WorkflowStep } from '../contract/workflows';
import { readJsonFile, writeFileDurably } from './durable-file';
import type { LocalEvent } from './eventbridge-server';
import { serialPoller } from './poller';

/** One execution, journaled as Step Functions keeps it: where it is and its state. */
export interface LocalExecution {
  readonly input: Readonly<Record<string, unknown>>;
  /** The step it is at (run next, again after a failed try), or the Succeed or Fail state it ended in. */
  at: string;
  state: unknown;
  /** The states it entered, in order, as the execution's history lists them. */
  readonly history: string[];
  /** The failed tries of the Lambda step it is at: past the workflow's Retry, the failure is caught. */
  failedTries?: number;
}

/** What the steps of a workflow run on in local mode. */
export interface LocalWorkflowSteps<W extends DurableWorkflow> {
  /** A task of the workflow's steps Lambda, given its payload. */
  readonly lambda: (payload: Readonly<Record<string, unknown>>) => Promise<unknown>;
  /**
   * What stands in for each build phase (CodeBuild on AWS): given the build's variables, it answers
   * the ones it exports; a failure is caught as `error`. A phase absent here is left out, as the
   * CDK leaves out a phase without a project.
   */
  readonly builds: Readonly<
    Partial<
      Record<
        BuildPhaseOf<W>,
        {
          readonly run: (
            variables: Readonly<Record<string, unknown>>,
          ) => Promise<Readonly<Record<string, string>> | undefined>;
          readonly error: string;
        }
      >
    >
  >;
  readonly announce: (event: LocalEvent) => void;
  readonly now: () => number;
}

/** An execution's input: its tenant's, and named after it. */
export type TenantInput = Readonly<Record<string, unknown>> & { readonly tenantId: string };

export interface LocalWorkflowRunner {
  /** Starts an execution for the input's tenant; one already under way for it is joined (an execution named after it). */
  start(input: TenantInput): void;
  /** Runs every execution as far as it goes now; one at a wait not over, or at a failed step, stays for the next run. */
  runDue(): Promise<void>;
  /** The states the tenant's last execution entered, in order (this process's executions and those it resumed). */
  history(tenantId: string): readonly string[];
  close(): void;
}

/**
 * A workflow's state machine in local mode: it walks the list `contract/workflows.ts` holds, the
 * one the CDK builds the state machine from, step by step, with the same inputs and state paths.
 * A failed Lambda step (or build, where builds are retried) stays where it is for the next run,
 * as the state machine's Retry would try it again, a Lambda step as many times as its Retry (one
 * try a run), then goes to the failure steps, as its Catch; a failed build that is not retried goes
 * to the failure steps at once. Executions are journaled after every step, so a restart resumes them.
 */
export function startLocalWorkflowRunner<W extends DurableWorkflow>(
  workflow: W,
  steps: LocalWorkflowSteps<W>,
  options: {
    /** Absent: in memory only. */
    readonly journalFile?: string;
    readonly pollMs?: number;
    /** The inputs of the executions a journal of an earlier version holds, which journaled inputs only. */
    readonly legacyInputs?: (journal: unknown) => readonly TenantInput[];
  },
): LocalWorkflowRunner {
  const executions = new Map<string, LocalExecution>();
  const ended = new Map<string, LocalExecution>();
  const persist = () => {
    if (options.journalFile) writeFileDurably(options.journalFile, JSON.stringify(Object.fromEntries(executions)));
  };
  const failureSteps = workflow.onFailure.steps;

  /** Enters `list[index]`, or the first step after it that runs; past the end, the list's end state. */
  const enter = (execution: LocalExecution, list: readonly WorkflowStep[], index: number) => {
    for (let i = index; i < list.length; i++) {
      const step = list[i];
      if (step.kind === 'build' && !steps.builds[step.phase as BuildPhaseOf<W>]) continue;
      if (step.kind === 'build' && step.onlyIf) {
        execution.history.push(step.onlyIf.choice);
        if (read(execution, step.onlyIf.flag) !== true) continue;
      }
      execution.at = step.name;
      execution.history.push(step.name);
      execution.failedTries = undefined;
      return;
    }
    execution.at = list === failureSteps ? workflow.onFailure.failed : workflow.succeeded;
    execution.history.push(execution.at);
  };
  const begin = (input: Readonly<Record<string, unknown>>): LocalExecution => {
    const execution: LocalExecution = { input, at: '', state: input, history: [] };
    enter(execution, workflow.steps, 0);
    return execution;
  };

  /**
   * Runs the step the execution is at: `next`, `waiting` (a wait not over yet), or `caught` (a build
   * of the list that is not retried failed, its error put at `errorAt`). Any other failure is thrown.
   */
  const runStep = async (
    execution: LocalExecution,
    step: WorkflowStep,
    catches: boolean,
  ): Promise<'next' | 'waiting' | 'caught'> => {
    switch (step.kind) {
      case 'lambda': {
        const payload = { step: step.step, ...inputOf(execution, step.input) };
        let answer: Record<string, unknown>;
        try {
          answer = (await steps.lambda(payload)) as Record<string, unknown>;
        } catch (error) {
          // Tried again on the next runs, as the Retry would; once it has run out, caught as the Catch would.
          const tries = (execution.failedTries ?? 0) + 1;
          if (!catches || tries <= workflow.lambda.retry.maxAttempts) {
            execution.failedTries = tries;
            throw error;
          }
          const failure = { Error: (error as Error).name, Cause: (error as Error).message };
          execution.state = write(execution.state, workflow.onFailure.errorAt, failure);
          return 'caught';
        }
        const kept = Object.fromEntries(workflow.lambda.keep.map((name) => [name, answer[name]]));
        execution.state = write(execution.state, workflow.lambda.at, kept);
        return 'next';
      }
      case 'build': {
        const build = steps.builds[step.phase as BuildPhaseOf<W>];
        if (!build) throw new Error(`no local stand-in for the build phase ${step.phase}`);
        let exported: Readonly<Record<string, string>> | undefined;
        try {
          exported = await build.run({ PHASE: step.phase, ...inputOf(execution, step.env) });
        } catch (error) {
          if (workflow.buildRetry || !catches) throw error;
          const failure = { Error: build.error, Cause: (error as Error).message };
          execution.state = write(execution.state, workflow.onFailure.errorAt, failure);
          return 'caught';
        }
        if (step.exports) {
          const values = Object.entries(step.exports.variables).map(([name, variable]) => [name, exported?.[variable]]);
          execution.state = write(execution.state, step.exports.at, Object.fromEntries(values));
        }
        return 'next';
      }
      case 'wait':
        return steps.now() < Date.parse(String(read(execution, step.until))) ? 'waiting' : 'next';
      case 'announce':
        steps.announce({
          source: workflow.source,
          detailType: step.detailType,
          detail: step.detail === '$' ? execution.state : inputOf(execution, step.detail),
        });
        return 'next';
    }
  };

  /** Runs the execution until it ends (true), or stays at a step for the next run (false). */
  const run = async (execution: LocalExecution): Promise<boolean> => {
    for (;;) {
      if (execution.at === workflow.succeeded || execution.at === workflow.onFailure.failed) return true;
      const failing = failureSteps.findIndex((step) => step.name === execution.at);
      const list = failing >= 0 ? failureSteps : workflow.steps;
      const index = failing >= 0 ? failing : workflow.steps.findIndex((step) => step.name === execution.at);
      const step = list[index];
      if (!step) throw new Error(`the workflow has no step ${execution.at}`);
      // The state machine catches the failures of the list's steps, not of the failure steps.
      const outcome = await runStep(execution, step, list === workflow.steps);
      if (outcome === 'waiting') return false;
      if (outcome === 'caught') enter(execution, failureSteps, 0);
      else enter(execution, list, index + 1);
      persist();
    }
  };

  const journal = options.journalFile ? readJsonFile<unknown>(options.journalFile, {}) : {};
  for (const [tenantId, entry] of Array.isArray(journal) ? [] : Object.entries(journal as object)) {
    if (typeof entry === 'object' && entry !== null && 'at' in entry) executions.set(tenantId, entry as LocalExecution);
  }
  for (const input of options.legacyInputs?.(journal) ?? []) {
    if (!executions.has(input.tenantId)) executions.set(input.tenantId, begin(input));
  }

  const poller = serialPoller(async () => {
    for (const [tenantId, execution] of [...executions]) {
      try {
        if (!(await run(execution))) continue;
        executions.delete(tenantId);
        ended.set(tenantId, execution);
        persist();
      } catch {
        // Stays at the step that failed: the next run tries it again, as the state machine's Retry would.
        persist();
      }
    }
  }, options.pollMs ?? 1000);

  return {
    start: (input) => {
      if (executions.has(input.tenantId)) return;
      executions.set(input.tenantId, begin(input));
      persist();
    },
    runDue: poller.runDue,
    history: (tenantId) => (executions.get(tenantId) ?? ended.get(tenantId))?.history ?? [],
    close: poller.close,
  };
}

/** The fields of a step's input, read from the execution as the state machine reads its paths. */
function inputOf(execution: LocalExecution, input: Readonly<Record<string, InputField>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(input).map(([name, field]) => [
      name,
      typeof field === 'string'
        ? read(execution, field)
        : field.args.reduce((text, arg) => text.replace('{}', String(read(execution, arg))), field.format),
    ]),
  );
}

const EXECUTION_INPUT = '$$.Execution.Input';

function read(execution: LocalExecution, path: StatePath): unknown {
  const [root, rest] = path.startsWith(EXECUTION_INPUT)
    ? [execution.input, path.slice(EXECUTION_INPUT.length)]
    : [execution.state, path.slice(1)];
  return rest
    .split('.')
    .filter(Boolean)
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], root);
}

/** The state with `value` at `path` (a `ResultPath`); no path replaces the state. */
function write(state: unknown, path: StatePath | undefined, value: unknown): unknown {
  if (path === undefined || path === '$') return value;
  const [key, ...rest] = path.slice(2).split('.');
  const current = (state ?? {}) as Record<string, unknown>;
  return { ...current, [key]: rest.length > 0 ? write(current[key], `$.${rest.join('.')}`, value) : value };
}
