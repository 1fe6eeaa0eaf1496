import { OpenSearchVectorIndex } from './adapters/opensearch-vector-index';
import { S3VectorsIndex } from './adapters/s3vectors-vector-index';
import { resolveModel } from './core/catalog';
import type { VectorIndex } from './core/ports';
import { StoreRoutedVectorIndex } from './core/vector-stores';
import { built, tenantCredentials } from './runtime';

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
