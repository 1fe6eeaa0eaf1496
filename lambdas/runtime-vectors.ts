import { OpenSearchVectorIndex } from './adapters/opensearch-vector-index';
import { resolveModel } from './core/catalog';
import type { VectorIndex } from './core/ports';
import {
  adapterHost,
  audit,
  built,
  documents,
  inferenceProfiles,
  ledger,
  registry,
  responseCache,
  sessions,
  storedResponses,
  tenantCredentials,
  type Wiring,
} from './runtime';

/**
 * The OpenSearch adapter's builder, apart from the others: its client is a CommonJS package the
 * bundler cannot drop, so only the handlers that search import this module.
 */
export const vectors = built(
  (wiring): VectorIndex =>
    new OpenSearchVectorIndex(
      wiring.settings.opensearchEndpoint,
      wiring.settings.region,
      tenantCredentials(wiring),
      resolveModel(wiring.settings.catalog, wiring.settings.retrieval.embeddingModel, 'embedding').dimensions,
    ),
);

/** What the tenant workflows' steps (offboarding, placement) take: the registry and every store of tenant data. */
export function workflowStepDeps(wiring: Wiring) {
  return {
    settings: wiring.settings,
    registry: registry(wiring),
    ledger: ledger(wiring),
    audit: audit(wiring),
    documents: documents(wiring),
    sessions: sessions(wiring),
    cache: responseCache(wiring),
    responses: storedResponses(wiring),
    vectors: vectors(wiring),
    adapterHost: adapterHost(wiring),
    inferenceProfiles: inferenceProfiles(wiring),
    now: Date.now,
  };
}
