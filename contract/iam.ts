/**
 * IAM facts the CDK policies grant and the code (and the local stand-ins for IAM) rely on.
 */

/** The STS session tag that names the tenant a `TenantAccessRole` session may reach. */
export const TENANT_SESSION_TAG = 'tenantId';

/** DynamoDB item and partition reads and writes: everything the platform does to its tables, and never Scan. */
export const ITEM_ACCESS_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
] as const;

/** The DynamoDB operations of `ITEM_ACCESS_ACTIONS`, as they travel in `X-Amz-Target`. */
export const ITEM_ACCESS_OPERATIONS: ReadonlySet<string> = new Set(
  ITEM_ACCESS_ACTIONS.map((action) => action.slice('dynamodb:'.length)),
);
