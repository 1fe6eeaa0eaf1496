/** Key schema shared by the CDK tables and the local DynamoDB bootstrap: every table is `pk` + `sk` strings. */
export const TABLE_KEY = { partitionKey: 'pk', sortKey: 'sk' } as const;

/** Every item of a tenant's data lives under `pk = TENANT#<tenantId>`, which IAM's `dynamodb:LeadingKeys` scopes. */
export const TENANT_PARTITION_PREFIX = 'TENANT#';

/** Attribute DynamoDB TTL reads (epoch seconds). */
export const TTL_ATTRIBUTE = 'expiresAt';

/** The audit table's local secondary index: one tenant's records by request id (same partition, so LeadingKeys still applies). */
export const AUDIT_BY_REQUEST_INDEX = { indexName: 'byRequestId', sortKey: 'requestId' } as const;
