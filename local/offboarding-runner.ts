import type { OffboardingWorkflow } from '../lambdas/core/ports';
import { readJsonFile, writeFileDurably } from './durable-file';
import { serialPoller } from './poller';

/** One task of the offboarding state machine, as the offboarding Lambda takes it. */
export type OffboardingStep = (event: { step: 'purge' | 'tombstone'; tenantId: string }) => Promise<unknown>;

export interface LocalOffboardingRunner extends OffboardingWorkflow {
  /** Runs every offboarding whose drain is over (what the state machine's Wait state releases); a failed one stays for the next run. */
  runDue(): Promise<void>;
  close(): void;
}

/**
 * The offboarding state machine in local mode: the same steps, run by the same handler, in the same
 * order after the same wait. Started workflows are journaled to `journalFile` before `start`
 * returns, so a platform killed mid-offboarding resumes it when it starts again.
 */
export function startLocalOffboardingRunner(options: {
  readonly step: OffboardingStep;
  readonly now: () => number;
  /** Absent: in memory only. */
  readonly journalFile?: string;
  /** How often it looks for offboardings whose drain is over. */
  readonly pollMs?: number;
}): LocalOffboardingRunner {
  const pending = new Map<string, string>(
    Object.entries(options.journalFile ? readJsonFile<Record<string, string>>(options.journalFile, {}) : {}),
  );
  const persist = () => {
    if (options.journalFile) writeFileDurably(options.journalFile, JSON.stringify(Object.fromEntries(pending)));
  };

  const runOnce = async () => {
    for (const [tenantId, drainUntil] of [...pending]) {
      if (Date.parse(drainUntil) > options.now()) continue;
      try {
        await options.step({ step: 'purge', tenantId });
        await options.step({ step: 'tombstone', tenantId });
        pending.delete(tenantId);
        persist();
      } catch {
        // Left in the journal: the next run retries it, as the state machine's Retry would.
      }
    }
  };
  const poller = serialPoller(runOnce, options.pollMs ?? 1000);

  return {
    start: async ({ tenantId, drainUntil }) => {
      if (pending.get(tenantId) === drainUntil) return;
      pending.set(tenantId, drainUntil);
      persist();
    },
    runDue: poller.runDue,
    close: poller.close,
  };
}
