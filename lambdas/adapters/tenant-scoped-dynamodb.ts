import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StsTenantCredentials } from './sts-tenant-credentials';

/** Clients kept at most; the oldest is dropped first. */
const MAX_CLIENTS = 256;

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
  const clients = new Map<string, DynamoDBDocumentClient>();
  return (tenantId) => {
    let client = clients.get(tenantId);
    if (client) {
      clients.delete(tenantId);
    } else {
      client = DynamoDBDocumentClient.from(
        new DynamoDBClient({ ...config, credentials: () => credentials.credentialsFor(tenantId) }),
        { marshallOptions: { removeUndefinedValues: true } },
      );
      if (clients.size >= MAX_CLIENTS) clients.delete(clients.keys().next().value as string);
    }
    clients.set(tenantId, client);
    return client;
  };
}
