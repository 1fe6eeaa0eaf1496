import {
  migrateTenantData,
  type PlacementDeps as PlacementCoreDeps,
  type PlaneStores,
} from '../lambdas/core/placement';
import type { PlacementWorkflow, TenantRegistry } from '../lambdas/core/ports';
import type { VectorStores } from '../lambdas/core/retrieval';
import type { PlacementStep } from '../lambdas/handlers/placement';
import { readJsonFile, writeFileDurably } from './durable-file';
import { serialPoller } from './poller';

export interface LocalPlacementRunner extends PlacementWorkflow {
  /** Moves every requested tenant as far as it can go now; a move waiting out its drain stays for the next run. */
  runDue(): Promise<void>;
  close(): void;
}

export interface LocalPlacementOptions {
  /** One task of the state machine, as the placement Lambda takes it. */
  readonly step: (event: PlacementStep) => Promise<unknown>;
  /** The pipeline's deploy (CodeBuild's `cdk deploy` on AWS): starts the tenant's silo plane and answers its URL. */
  readonly deploy: (tenantId: string) => Promise<string>;
  /** The pipeline's copy (CodeBuild on AWS): from the pool's stores to the silo plane's. */
  readonly stores: { readonly pool: PlaneStores; readonly silo: (tenantId: string) => PlaneStores };
  readonly registry: TenantRegistry;
  readonly now: () => number;
  readonly drainMs: number;
  /** Where each tier's chunks live in the silo. */
  readonly vectorStores: VectorStores;
  /** Absent: in memory only. */
  readonly journalFile?: string;
  readonly pollMs?: number;
}

/**
 * The placement state machine in local mode: the same steps, run by the same handler, in the same
 * order, with the same wait; the deploy starts a second local plane instead of a CodeBuild run.
 * Requested moves are journaled before `start` returns, so a move cut by a restart resumes.
 */
export function startLocalPlacementRunner(options: LocalPlacementOptions): LocalPlacementRunner {
  const pending = new Set<string>(options.journalFile ? readJsonFile<string[]>(options.journalFile, []) : []);
  const persist = () => {
    if (options.journalFile) writeFileDurably(options.journalFile, JSON.stringify([...pending]));
  };
  const core: PlacementCoreDeps = { registry: options.registry, now: options.now, drainMs: options.drainMs };

  /** The next step of one move, from wherever its record says it is. */
  async function advance(tenantId: string): Promise<'continue' | 'wait' | 'ended'> {
    const placement = (await options.registry.getTenant(tenantId))?.placement;
    switch (placement?.status) {
      case 'requested':
      case 'deploying': {
        await options.step({ step: 'deploying', tenantId });
        let siloUrl: string;
        try {
          siloUrl = await options.deploy(tenantId);
        } catch (error) {
          // As the state machine's Catch: the tenant stays served from the pool.
          await options.step({ step: 'fail', tenantId, error: `deploy failed: ${(error as Error).message}` });
          return 'ended';
        }
        await options.step({ step: 'freeze', tenantId, siloUrl });
        return 'continue';
      }
      case 'migrating':
        if (options.now() < Date.parse(placement.drainUntil ?? '')) return 'wait';
        try {
          const target = options.stores.silo(tenantId);
          await migrateTenantData(
            { ...core, source: options.stores.pool, target, vectorStores: options.vectorStores },
            tenantId,
          );
        } catch (error) {
          await options.step({ step: 'fail', tenantId, error: `migration failed: ${(error as Error).message}` });
          return 'ended';
        }
        return 'continue';
      case 'switching':
        await options.step({ step: 'switch', tenantId });
        return 'continue';
      case 'cleaning':
        await options.step({ step: 'clean', tenantId });
        return 'continue';
      default:
        return 'ended';
    }
  }

  const runOnce = async () => {
    for (const tenantId of [...pending]) {
      try {
        let outcome: Awaited<ReturnType<typeof advance>>;
        do outcome = await advance(tenantId);
        while (outcome === 'continue');
        if (outcome === 'ended') {
          pending.delete(tenantId);
          persist();
        }
      } catch {
        // Left in the journal: the next run retries from the recorded step, as the state machine's Retry would.
      }
    }
  };
  const poller = serialPoller(runOnce, options.pollMs ?? 1000);

  return {
    start: async ({ tenantId }) => {
      pending.add(tenantId);
      persist();
    },
    runDue: poller.runDue,
    close: poller.close,
  };
}
