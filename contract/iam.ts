import { TENANT_PARTITION_PREFIX } from './tables';

/**
 * IAM facts the CDK policies grant and the code (and the local stand-ins for IAM) rely on.
 */

/** The STS session tag that names the tenant a `TenantAccessRole` session may reach. */
export const TENANT_SESSION_TAG = 'tenantId';

/**
 * DynamoDB item and partition reads and writes: everything the platform does to its tables, and
 * never Scan. TransactWriteItems has no action of its own: IAM checks each item's action, a
 * `ConditionCheck` item's being `ConditionCheckItem` (the registry's check of a tenant's version).
 */
export const ITEM_ACCESS_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:ConditionCheckItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
] as const;

/** The DynamoDB operations of `ITEM_ACCESS_ACTIONS`, as they travel in `X-Amz-Target`. */
export const ITEM_ACCESS_OPERATIONS: ReadonlySet<string> = new Set([
  ...ITEM_ACCESS_ACTIONS.map((action) => action.slice('dynamodb:'.length)),
  'TransactWriteItems',
]);

/**
 * The partition keys a tenant session may name, as IAM `dynamodb:LeadingKeys` patterns: the
 * tenant's own `TENANT#<id>` and its ledger shards `TENANT#<id>#S<n>` (tenant ids have no `#`).
 */
export function tenantLeadingKeyPatterns(tenantId: string): [string, string] {
  return [`${TENANT_PARTITION_PREFIX}${tenantId}`, `${TENANT_PARTITION_PREFIX}${tenantId}#*`];
}

/**
 * What a tenant session may do to its own S3 Vectors index (and no other): IAM names the index ARN
 * from the session's tag. Listing a bucket's indexes is not among them.
 */
export const S3VECTORS_INDEX_ACTIONS = [
  'CreateIndex',
  'GetIndex',
  'DeleteIndex',
  'PutVectors',
  'GetVectors',
  'ListVectors',
  'QueryVectors',
  'DeleteVectors',
] as const;

/**
 * What a session may do to an OpenSearch index of its own (`t-<tenantId>`): search and bulk are
 * POSTs, documents PUTs, and deleting them DELETEs. The shared index of old takes all but DELETE.
 */
export const OPENSEARCH_INDEX_ACTIONS = [
  'es:ESHttpGet',
  'es:ESHttpHead',
  'es:ESHttpPost',
  'es:ESHttpPut',
  'es:ESHttpDelete',
] as const;
