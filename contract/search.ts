/**
 * Index names in the OpenSearch domain, as the IAM policies grant them and the adapter uses them:
 * `t-<tenantId>` for a tenant of its own index, one shared index for the basic tier.
 */
export const SHARED_INDEX = 'shared-basic';
export const TENANT_INDEX_PREFIX = 't-';

/**
 * Where a tier's chunks live: `s3vectors` (the default), an S3 Vectors index of the tenant's own
 * in the plane's vector bucket; `opensearch`, an OpenSearch index of its own (hybrid keyword and
 * vector search, lower latency).
 */
export type VectorStore = 's3vectors' | 'opensearch';
export const VECTOR_STORES = ['s3vectors', 'opensearch'] as const;

/** A placement (an index that may hold a tenant's chunks) in S3 Vectors: `s3vectors/t-<tenantId>`. */
export const S3VECTORS_PLACEMENT_PREFIX = 's3vectors/';

/** How many indexes S3 Vectors lets one vector bucket hold (a service quota): tenants per plane on S3 Vectors. */
export const S3VECTORS_INDEXES_PER_BUCKET = 10_000;
