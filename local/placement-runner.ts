import { setTimeout } from 'node:timers/promises';
import type { ModelCatalog } from '../contract/catalog';
import { PLACEMENT_WORKFLOW, RETURN_WORKFLOW } from '../contract/workflows';
import {
  catchUpTenantData,
  copyTenantData,
  drainUntil,
  flipSilo,
  type PlacementDeps as PlacementCoreDeps,
  type PlaneStores,
  switchPlanes,
} from '../lambdas/core/placement';
import type { PlacementWorkflow, TenantRegistry } from '../lambdas/core/ports';
import type { VectorStores } from '../lambdas/core/retrieval';
import type { PlacementStep } from '../lambdas/handlers/placement';
import type { LocalEvent } from './eventbridge-server';
import { startLocalWorkflowRunner } from './workflow-runner';

export interface LocalPlacementRunner extends PlacementWorkflow {
  /** Moves every requested tenant as far as it can go now; a move waiting out its drain stays for the next run. */
  runDue(): Promise<void>;
  /** The states the tenant's last move to its silo entered, in order, as the state machine's execution history lists them. */
  history(tenantId: string): readonly string[];
  /** The same, of its last return to the pool. */
  returnHistory(tenantId: string): readonly string[];
  close(): void;
}

export interface LocalPlacementOptions {
  /** One task of the state machine, as the placement Lambda takes it. */
  readonly step: (event: PlacementStep) => Promise<unknown>;
  /** The pipeline's deploy (CodeBuild's `cdk deploy` on AWS): starts the tenant's silo plane and answers its URL. */
  readonly deploy: (tenantId: string) => Promise<string>;
  /** The pipeline's copy and catch-up (CodeBuild on AWS): between the pool's stores and the silo plane's. */
  readonly stores: { readonly pool: PlaneStores; readonly silo: (tenantId: string) => PlaneStores };
  /** A return's decommission build: the silo's copy of the tenant deleted, the silo plane destroyed. */
  readonly decommission: (tenantId: string) => Promise<void>;
  readonly registry: TenantRegistry;
  readonly now: () => number;
  readonly drainMs: number;
  /** Where each tier's chunks live in the silo. */
  readonly vectorStores: VectorStores;
  /** The models a tenant's inference profiles copy. */
  readonly catalog: ModelCatalog;
  /** How long the pool's authorizer caches a decision (a return waits for its cached forwards to go). */
  readonly authorizerCacheMs: number;
  /** Where the outcome is announced (the event bus on AWS). */
  readonly announce: (event: LocalEvent) => void;
  /** Absent: in memory only. */
  readonly journalFile?: string;
  readonly pollMs?: number;
  /** How a copy waits between looks at the adapters loading at the silo; default: real time, at most a second. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The placement state machine in local mode: the steps `PLACEMENT_WORKFLOW` lists, in its order,
 * the Lambda steps run by the same handler, with the same wait; the deploy starts a second local
 * plane instead of a CodeBuild run, and the copy runs in process. Requested moves are journaled
 * before `start` returns, and after every step, so a move cut by a restart resumes where it was.
 */
export function startLocalPlacementRunner(options: LocalPlacementOptions): LocalPlacementRunner {
  const core: PlacementCoreDeps = { registry: options.registry, now: options.now, drainMs: options.drainMs };
  const sleep = options.sleep ?? ((ms: number) => setTimeout(Math.min(ms, 1000)));
  /** A step of the pipeline's builds, in process: from the source plane's stores to the target's. */
  const move = (to: 'silo' | 'pool') => (step: typeof copyTenantData) => async (variables: Record<string, unknown>) => {
    const tenantId = String(variables.TENANT_ID);
    const [pool, silo] = [options.stores.pool, options.stores.silo(tenantId)];
    const [source, target] = to === 'silo' ? [pool, silo] : [silo, pool];
    const { vectorStores, catalog, authorizerCacheMs } = options;
    return step({ ...core, source, target, vectorStores, catalog, authorizerCacheMs, sleep }, tenantId);
  };
  const builds = (to: 'silo' | 'pool') => {
    const run = move(to);
    return {
      migrate: {
        error: 'migration failed',
        run: async (variables: Record<string, unknown>) => void (await run(copyTenantData)(variables)),
      },
      switch: {
        error: 'switch failed',
        run: async (variables: Record<string, unknown>) => ({
          DRAIN_UNTIL: drainUntil(await run(switchPlanes)(variables), options.now),
        }),
      },
      'catch-up': {
        error: 'catch-up failed',
        run: async (variables: Record<string, unknown>) => void (await run(catchUpTenantData)(variables)),
      },
    };
  };
  const lambda = (payload: Readonly<Record<string, unknown>>) => options.step(payload as PlacementStep);
  const runnerOptions = { journalFile: options.journalFile, pollMs: options.pollMs };
  const runner = startLocalWorkflowRunner(
    PLACEMENT_WORKFLOW,
    {
      lambda,
      builds: {
        deploy: {
          error: 'deploy failed',
          run: async (variables) => ({ SILO_API_URL: await options.deploy(String(variables.TENANT_ID)) }),
        },
        ...builds('silo'),
      },
      announce: options.announce,
      now: options.now,
    },
    {
      ...runnerOptions,
      // A move journaled as its tenant id alone starts again from the first step.
      legacyInputs: (journal) =>
        Array.isArray(journal) ? journal.map((tenantId) => ({ tenantId: String(tenantId) })) : [],
    },
  );
  const returns = startLocalWorkflowRunner(
    RETURN_WORKFLOW,
    {
      lambda,
      builds: {
        ...builds('pool'),
        flip: {
          error: 'flip failed',
          run: async (variables) => ({ DRAIN_UNTIL: drainUntil(await move('pool')(flipSilo)(variables), options.now) }),
        },
        decommission: {
          error: 'decommission failed',
          run: async (variables) => void (await options.decommission(String(variables.TENANT_ID))),
        },
      },
      announce: options.announce,
      now: options.now,
    },
    { ...runnerOptions, journalFile: options.journalFile?.replace(/\.json$/, '-returns.json') },
  );
  return {
    start: async ({ tenantId, to }) => (to === 'pool' ? returns : runner).start({ tenantId }),
    runDue: async () => {
      await runner.runDue();
      await returns.runDue();
    },
    history: runner.history,
    returnHistory: returns.history,
    close: () => {
      runner.close();
      returns.close();
    },
  };
}
