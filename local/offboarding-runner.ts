import { OFFBOARDING_WORKFLOW } from '../contract/workflows';
import type { OffboardingWorkflow } from '../lambdas/core/ports';
import type { LocalEvent } from './eventbridge-server';
import { startLocalWorkflowRunner } from './workflow-runner';

/** One task of the offboarding state machine, as the offboarding Lambda takes it. */
export type OffboardingStep = (event: { step: 'purge' | 'tombstone'; tenantId: string }) => Promise<unknown>;

export interface LocalOffboardingRunner extends OffboardingWorkflow {
  /** Runs every offboarding whose drain is over (what the state machine's Wait state releases); a failed one stays for the next run. */
  runDue(): Promise<void>;
  /** The states the tenant's offboarding entered, in order, as the state machine's execution history lists them. */
  history(tenantId: string): readonly string[];
  close(): void;
}

/**
 * The offboarding state machine in local mode: the steps `OFFBOARDING_WORKFLOW` lists, in its
 * order, the Lambda steps run by the same handler, after the same wait. Started workflows are
 * journaled to `journalFile` before `start` returns, and after every step, so a platform killed
 * mid-offboarding resumes it when it starts again.
 */
export function startLocalOffboardingRunner(options: {
  readonly step: OffboardingStep;
  /**
   * What stands in for the pipeline's decommission build on a plane with silos: purges a silo
   * tenant's data in its silo and destroys the silo plane. Absent: a silo plane, which has none.
   */
  readonly decommission?: (tenantId: string) => Promise<void>;
  /** The pipeline's suspension at the silo (CodeBuild on AWS): the silo plane refuses the tenant at once. Absent: a silo plane. */
  readonly suspend?: (tenantId: string) => Promise<void>;
  readonly now: () => number;
  /** Where the outcome is announced (the event bus on AWS). */
  readonly announce: (event: LocalEvent) => void;
  /** Absent: in memory only. */
  readonly journalFile?: string;
  /** How often it looks for offboardings whose drain is over. */
  readonly pollMs?: number;
}): LocalOffboardingRunner {
  const { decommission, suspend } = options;
  const runner = startLocalWorkflowRunner(
    OFFBOARDING_WORKFLOW,
    {
      lambda: (payload) => options.step(payload as Parameters<OffboardingStep>[0]),
      builds: {
        suspend: suspend && {
          error: 'suspension at the silo failed',
          run: async (variables) => {
            await suspend(String(variables.TENANT_ID));
            return undefined;
          },
        },
        decommission: decommission && {
          error: 'decommission failed',
          run: async (variables) => {
            await decommission(String(variables.TENANT_ID));
            return undefined;
          },
        },
      },
      announce: options.announce,
      now: options.now,
    },
    {
      journalFile: options.journalFile,
      pollMs: options.pollMs,
      // An offboarding journaled as its drain's end alone: whether a silo serves the tenant is not
      // known, and the decommission of a tenant without one finds nothing to do.
      legacyInputs: (journal) =>
        Array.isArray(journal)
          ? []
          : Object.entries(journal as Record<string, unknown>)
              .filter(([, drainUntil]) => typeof drainUntil === 'string')
              .map(([tenantId, drainUntil]) => ({ tenantId, drainUntil, silo: true })),
    },
  );
  return {
    start: async ({ tenantId, drainUntil, silo }) => runner.start({ tenantId, drainUntil, silo }),
    runDue: runner.runDue,
    history: runner.history,
    close: runner.close,
  };
}
