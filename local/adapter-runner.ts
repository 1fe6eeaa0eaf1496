import type { AdapterWorkflow } from '../lambdas/core/ports';
import { readJsonFile, writeFileDurably } from './durable-file';
import { serialPoller } from './poller';

export interface LocalAdapterRunner extends AdapterWorkflow {
  /** Polls every adapter being created once; those in service or failed are done. */
  runDue(): Promise<void>;
  close(): void;
}

/**
 * The adapter workflow in local mode: the same step (`refresh`, by the same handler) the state
 * machine runs after each wait, until the adapter is in service or failed. Journaled, so a restart
 * goes on following the adapters it was following.
 */
export function startLocalAdapterRunner(options: {
  /** The workflow's step: `done` once the adapter is in service or failed. */
  readonly refresh: (adapter: { tenantId: string; name: string }) => Promise<'pending' | 'done'>;
  readonly journalFile?: string;
  readonly pollMs?: number;
}): LocalAdapterRunner {
  const key = (adapter: { tenantId: string; name: string }) => `${adapter.tenantId}/${adapter.name}`;
  const pending = new Map<string, { tenantId: string; name: string }>(
    (options.journalFile ? readJsonFile<{ tenantId: string; name: string }[]>(options.journalFile, []) : []).map(
      (adapter) => [key(adapter), adapter],
    ),
  );
  const persist = () => {
    if (options.journalFile) writeFileDurably(options.journalFile, JSON.stringify([...pending.values()]));
  };
  const poller = serialPoller(async () => {
    for (const adapter of [...pending.values()]) {
      try {
        if ((await options.refresh(adapter)) === 'done') {
          pending.delete(key(adapter));
          persist();
        }
      } catch {
        // Polled again on the next run, as the state machine's Retry would.
      }
    }
  }, options.pollMs ?? 1000);
  return {
    start: async (adapter) => {
      pending.set(key(adapter), { tenantId: adapter.tenantId, name: adapter.name });
      persist();
    },
    runDue: poller.runDue,
    close: poller.close,
  };
}
