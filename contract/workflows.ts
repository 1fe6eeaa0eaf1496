import { OFFBOARDING_EVENTS, PLACEMENT_EVENTS } from './events';

/**
 * The durable workflows' step orders, each written once: the CDK builds its Step Functions state
 * machine from the list (`lib/constructs/workflow.ts`), and the local runner walks the same list
 * (`local/workflow-runner.ts`). Paths are the state machine's: `$.…` is the execution's state,
 * `$$.Execution.Input.…` the input it was started with.
 *
 * Each step follows the one before it; after the last comes the Succeed state. A Lambda step or a
 * build that fails (after its retries) goes to the failure steps, then to the Fail state.
 */

/** A JSONPath into the execution's state (`$`, `$.build.siloUrl`) or into its input. */
export type StatePath = '$' | `$.${string}` | `$$.Execution.Input.${string}`;

/** A field of a step's input: a path, or paths formatted into one string (`States.Format`). */
export type InputField = StatePath | { readonly format: string; readonly args: readonly StatePath[] };

export type WorkflowStep =
  /** A task of the workflow's steps Lambda, whose payload is `{step, ...input}`. */
  | {
      readonly kind: 'lambda';
      readonly name: string;
      readonly step: string;
      readonly input: Readonly<Record<string, InputField>>;
    }
  /** A phase of the pipeline's CodeBuild project, run to its end, with `PHASE` and `env` as its variables. */
  | {
      readonly kind: 'build';
      readonly name: string;
      readonly phase: string;
      readonly env: Readonly<Record<string, StatePath>>;
      /** The variables the build exports, kept at `at` under these names; absent: its result is discarded. */
      readonly exports?: { readonly at: StatePath; readonly variables: Readonly<Record<string, string>> };
      /** Run only when `flag` is true, as a Choice state of this name decides; otherwise the next step. */
      readonly onlyIf?: { readonly choice: string; readonly flag: StatePath };
    }
  /** Waits until the timestamp at `until`. */
  | { readonly kind: 'wait'; readonly name: string; readonly until: StatePath }
  /** Puts an event of the workflow's `source` on the bus; its detail is these fields, or the whole state (`$`). */
  | {
      readonly kind: 'announce';
      readonly name: string;
      readonly detailType: string;
      readonly detail: '$' | Readonly<Record<string, StatePath>>;
    };

/** How a failed task is tried again: after `intervalSeconds`, growing by `backoffRate`, `maxAttempts` times. */
export interface WorkflowRetry {
  readonly intervalSeconds: number;
  readonly backoffRate: number;
  readonly maxAttempts: number;
}

export interface DurableWorkflow {
  /** The source of the events it announces. */
  readonly source: string;
  /** In order. */
  readonly steps: readonly WorkflowStep[];
  /** The Succeed state after the last step. */
  readonly succeeded: string;
  /** What a Lambda step keeps of its answer, and where (absent: it replaces the state); how it is retried. */
  readonly lambda: { readonly keep: readonly string[]; readonly at?: StatePath; readonly retry: WorkflowRetry };
  /** How a build is retried; absent: a failed build goes to the failure steps at once. */
  readonly buildRetry?: WorkflowRetry;
  /** Where a failed Lambda step or build goes: its error (`Error`, `Cause`) is put at `errorAt` (absent: it replaces the state). */
  readonly onFailure: {
    readonly errorAt?: StatePath;
    readonly steps: readonly WorkflowStep[];
    /** The Fail state after the failure steps. */
    readonly failed: string;
  };
}

/** The build phases a workflow names. */
export type BuildPhaseOf<W extends DurableWorkflow> = Extract<
  W['steps'][number] | W['onFailure']['steps'][number],
  { kind: 'build' }
>['phase'];

/**
 * A tenant's move to its silo (`lambdas/handlers/placement.ts` runs the Lambda steps), the tenant
 * served all along: mark it deploying, deploy the silo stack, start the copy, copy its data while
 * the pool serves it, switch it to the silo with its ledger (the pool forwards its calls from then on), wait until
 * no call the pool took can still write, catch the silo up with what those calls wrote, delete the
 * pool's copy, announce. A failure before the switch leaves the tenant served from the pool.
 */
export const PLACEMENT_WORKFLOW = {
  source: PLACEMENT_EVENTS.source,
  steps: [
    { kind: 'lambda', name: 'MarkDeploying', step: 'deploying', input: { tenantId: '$.tenantId' } },
    {
      kind: 'build',
      name: 'DeploySilo',
      phase: 'deploy',
      env: { TENANT_ID: '$$.Execution.Input.tenantId' },
      exports: { at: '$.build', variables: { siloUrl: 'SILO_API_URL', siloResources: 'SILO_RESOURCES' } },
    },
    {
      kind: 'lambda',
      name: 'StartCopy',
      step: 'copy_start',
      input: { tenantId: '$.tenantId', siloUrl: '$.build.siloUrl', siloResources: '$.build.siloResources' },
    },
    {
      kind: 'build',
      name: 'CopyData',
      phase: 'migrate',
      // The copy writes to the resources the deploy reported.
      env: { TENANT_ID: '$$.Execution.Input.tenantId', SILO_RESOURCES: '$.build.siloResources' },
    },
    {
      kind: 'build',
      name: 'SwitchToSilo',
      phase: 'switch',
      // The switch copies the ledger, the last thing the pool changes while it serves the tenant.
      env: { TENANT_ID: '$$.Execution.Input.tenantId', SILO_RESOURCES: '$.build.siloResources' },
      exports: { at: '$.switched', variables: { drainUntil: 'DRAIN_UNTIL' } },
    },
    { kind: 'wait', name: 'WaitForDrain', until: '$.switched.drainUntil' },
    {
      kind: 'build',
      name: 'CatchUp',
      phase: 'catch-up',
      env: { TENANT_ID: '$$.Execution.Input.tenantId', SILO_RESOURCES: '$.build.siloResources' },
    },
    { kind: 'lambda', name: 'CleanPoolCopy', step: 'clean', input: { tenantId: '$.tenantId' } },
    {
      kind: 'announce',
      name: 'AnnounceComplete',
      detailType: PLACEMENT_EVENTS.completed,
      detail: { tenantId: '$.tenantId', siloUrl: '$.build.siloUrl' },
    },
  ],
  succeeded: 'Placed',
  lambda: { keep: ['placement'], at: '$.record', retry: { intervalSeconds: 10, backoffRate: 2, maxAttempts: 4 } },
  onFailure: {
    errorAt: '$.failure',
    steps: [
      {
        kind: 'lambda',
        name: 'RecordFailure',
        step: 'fail',
        input: {
          tenantId: '$$.Execution.Input.tenantId',
          error: { format: '{}: {}', args: ['$.failure.Error', '$.failure.Cause'] },
        },
      },
      {
        kind: 'announce',
        name: 'AnnounceFailure',
        detailType: PLACEMENT_EVENTS.failed,
        detail: { tenantId: '$$.Execution.Input.tenantId', error: '$.failure.Error' },
      },
    ],
    failed: 'PlacementFailed',
  },
} as const satisfies DurableWorkflow;

/** A return's builds: its tenant, and its silo's resources as its promotion's deploy reported them. */
const RETURN_BUILD_ENV = {
  TENANT_ID: '$$.Execution.Input.tenantId',
  SILO_RESOURCES: '$.record.placement.siloResources',
} as const;

/**
 * A silo tenant's return to the pool (a downgrade), the tenant served all along: mark it returning;
 * copy its data from the silo into the pool while the silo serves it (the keys carried into its own
 * list, which the pool's step adopts); switch it to the pool with its ledger (the pool serves it
 * from then on); adopt the keys again; wait until the pool's cached decisions to forward it to the
 * silo are gone (the silo serves those meanwhile); flip the silo (it forwards the tenant's calls to
 * the pool from then on, and its last changes are copied); adopt the keys once more; wait until no
 * call the silo took can still write; catch the pool up; decommission the silo (its copy purged, its
 * stack destroyed); mark it a pool tenant again; announce. A failure before the switch leaves the
 * tenant served by its silo.
 */
export const RETURN_WORKFLOW = {
  source: PLACEMENT_EVENTS.source,
  steps: [
    { kind: 'lambda', name: 'MarkReturning', step: 'return_start', input: { tenantId: '$.tenantId' } },
    {
      kind: 'build',
      name: 'CopyData',
      phase: 'migrate',
      env: RETURN_BUILD_ENV,
    },
    { kind: 'lambda', name: 'AdoptKeys', step: 'adopt_keys', input: { tenantId: '$.tenantId' } },
    {
      kind: 'build',
      name: 'SwitchToPool',
      phase: 'switch',
      env: RETURN_BUILD_ENV,
      // When the pool's cached decisions to forward to the silo are gone: the silo serves them until then.
      exports: { at: '$.switched', variables: { flipAt: 'DRAIN_UNTIL' } },
    },
    { kind: 'lambda', name: 'AdoptSwitchedKeys', step: 'adopt_keys', input: { tenantId: '$.tenantId' } },
    { kind: 'wait', name: 'WaitForPoolCache', until: '$.switched.flipAt' },
    {
      kind: 'build',
      name: 'FlipSilo',
      phase: 'flip',
      env: RETURN_BUILD_ENV,
      exports: { at: '$.flipped', variables: { drainUntil: 'DRAIN_UNTIL' } },
    },
    { kind: 'lambda', name: 'AdoptLastKeys', step: 'adopt_keys', input: { tenantId: '$.tenantId' } },
    { kind: 'wait', name: 'WaitForDrain', until: '$.flipped.drainUntil' },
    {
      kind: 'build',
      name: 'CatchUp',
      phase: 'catch-up',
      env: RETURN_BUILD_ENV,
    },
    {
      kind: 'build',
      name: 'DecommissionSilo',
      phase: 'decommission',
      env: { TENANT_ID: '$$.Execution.Input.tenantId' },
    },
    { kind: 'lambda', name: 'FinishReturn', step: 'return_done', input: { tenantId: '$.tenantId' } },
    {
      kind: 'announce',
      name: 'AnnounceReturned',
      detailType: PLACEMENT_EVENTS.returned,
      detail: { tenantId: '$.tenantId' },
    },
  ],
  succeeded: 'Returned',
  lambda: PLACEMENT_WORKFLOW.lambda,
  onFailure: { ...PLACEMENT_WORKFLOW.onFailure, failed: 'ReturnFailed' },
} as const satisfies DurableWorkflow;

/**
 * Offboarding (`lambdas/handlers/offboarding.ts` runs the Lambda steps), started with
 * `{tenantId, drainUntil, silo}`: a silo tenant is suspended at its silo; wait until no cached
 * credential can still write; a silo tenant's data is purged in its silo and the silo stack
 * destroyed (a plane with silos only); purge every store (each recorded on the tenant record, so a
 * retry resumes); tombstone; announce.
 */
export const OFFBOARDING_WORKFLOW = {
  source: OFFBOARDING_EVENTS.source,
  steps: [
    {
      // At once: a silo refuses its tenant's calls from now on (those made to its own URL too).
      kind: 'build',
      name: 'SuspendAtSilo',
      phase: 'suspend',
      env: { TENANT_ID: '$.tenantId' },
      onlyIf: { choice: 'HasSilo', flag: '$.silo' },
    },
    { kind: 'wait', name: 'WaitForDrain', until: '$.drainUntil' },
    {
      kind: 'build',
      name: 'DecommissionSilo',
      phase: 'decommission',
      env: { TENANT_ID: '$.tenantId' },
      onlyIf: { choice: 'ServedBySilo', flag: '$.silo' },
    },
    { kind: 'lambda', name: 'PurgeTenantData', step: 'purge', input: { tenantId: '$.tenantId' } },
    { kind: 'lambda', name: 'Tombstone', step: 'tombstone', input: { tenantId: '$.tenantId' } },
    { kind: 'announce', name: 'AnnounceOffboarded', detailType: OFFBOARDING_EVENTS.completed, detail: '$' },
  ],
  succeeded: 'Offboarded',
  lambda: { keep: ['tenantId', 'deleted'], retry: { intervalSeconds: 10, backoffRate: 2, maxAttempts: 6 } },
  buildRetry: { intervalSeconds: 60, backoffRate: 2, maxAttempts: 3 },
  onFailure: {
    steps: [
      {
        kind: 'announce',
        name: 'AnnounceFailure',
        detailType: OFFBOARDING_EVENTS.failed,
        detail: { tenantId: '$$.Execution.Input.tenantId', error: '$.Error' },
      },
    ],
    failed: 'OffboardingFailed',
  },
} as const satisfies DurableWorkflow;
