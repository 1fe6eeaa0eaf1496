import {
  adapterHost,
  adapterModels,
  adapterWorkflow,
  audit,
  documents,
  embedder,
  ledger,
  metrics,
  models,
  offboarding,
  type PlatformDeps,
  partitions,
  placement,
  queue,
  registry,
  reports,
  tenantAdapters,
  tokens,
  type Wiring,
} from './runtime';
import { vectors } from './runtime-vectors';

/** Every adapter of a wiring: for the local platform and the tests, which serve every handler at once. */
export function allDeps(wiring: Wiring): PlatformDeps {
  return {
    settings: wiring.settings,
    registry: registry(wiring),
    ledger: ledger(wiring),
    audit: audit(wiring),
    metrics: metrics(wiring),
    reports: reports(wiring),
    models: models(wiring),
    embedder: embedder(wiring),
    vectors: vectors(wiring),
    documents: documents(wiring),
    queue: queue(wiring),
    offboarding: offboarding(wiring),
    placement: placement(wiring),
    partitions: partitions(wiring),
    adapterHost: adapterHost(wiring),
    adapterWorkflow: adapterWorkflow(wiring),
    adapterModels: adapterModels(wiring),
    adapters: tenantAdapters(wiring),
    tokens: tokens(wiring),
    now: Date.now,
  };
}
