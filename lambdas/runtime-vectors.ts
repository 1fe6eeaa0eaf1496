import { OpenSearchVectorIndex } from './adapters/opensearch-vector-index';
import { S3VectorsIndex } from './adapters/s3vectors-vector-index';
import { resolveModel } from './core/catalog';
import type { VectorIndex } from './core/ports';
import { StoreRoutedVectorIndex } from './core/vector-stores';
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
 * The vector stores' builder, apart from the other adapters: their clients are packages the
 * bundler cannot drop, so only the handlers that search import this module. Each tier's chunks go
 * to its store (`retrieval.vectorStores`), with the tenant's scoped credentials either way.
 */
export const vectors = built((wiring): VectorIndex => {
  const { settings } = wiring;
  const dimensions = resolveModel(settings.catalog, settings.retrieval.embeddingModel, 'embedding').dimensions;
  const stores = settings.retrieval.vectorStores;
  const credentials = tenantCredentials(wiring);
  return new StoreRoutedVectorIndex(stores, {
    s3vectors: new S3VectorsIndex(
      settings.vectorBucketName,
      wiring.services.s3vectors,
      credentials,
      dimensions,
      stores,
    ),
    opensearch: new OpenSearchVectorIndex(
      settings.opensearchEndpoint,
      settings.region,
      credentials,
      dimensions,
      stores,
    ),
  });
});

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
