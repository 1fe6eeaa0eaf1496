import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { perTenant } from './per-tenant';
import type { StsTenantCredentials } from './sts-tenant-credentials';

/** A DynamoDB document client for a tenant, signing with that tenant's scoped credentials. */
export type TenantScopedDynamoDb = (tenantId: string) => DynamoDBDocumentClient;

/**
 * One document client per tenant, each signing with credentials from `StsTenantCredentials`; they
 * share one HTTP handler (and its connection pool) through `config.requestHandler`.
 */
export function tenantScopedDynamoDb(
  config: DynamoDBClientConfig,
  credentials: StsTenantCredentials,
): TenantScopedDynamoDb {
  return perTenant((tenantId) =>
    DynamoDBDocumentClient.from(
      new DynamoDBClient({ ...config, credentials: () => credentials.credentialsFor(tenantId) }),
      {
        marshallOptions: { removeUndefinedValues: true },
      },
    ),
  );
}
