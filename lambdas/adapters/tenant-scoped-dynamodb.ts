import { type DocumentClient, DynamoDbWire, type DynamoDbWireOptions } from './dynamodb-wire';
import { perTenant } from './per-tenant';
import { keepAliveAgent, serviceEndpoint } from './signed-json';
import type { StsTenantCredentials } from './sts-tenant-credentials';

/** A DynamoDB document client for a tenant, signing with that tenant's scoped credentials. */
export type TenantScopedDynamoDb = (tenantId: string) => DocumentClient;

/** Where the tenants' clients send, and their waits and tries (defaults: 1 s to connect, 3 s a request, 3 tries). */
export type TenantScopedDynamoDbConfig = Pick<DynamoDbWireOptions, 'region' | 'endpoint'> &
  Partial<Pick<DynamoDbWireOptions, 'connectionTimeoutMs' | 'requestTimeoutMs' | 'maxAttempts'>>;

/**
 * One client per tenant on the hot path (the ledger, audit, documents), each signing with
 * credentials from `StsTenantCredentials`: the lean `DynamoDbWire`, all sharing one keep-alive pool.
 */
export function tenantScopedDynamoDb(
  config: TenantScopedDynamoDbConfig,
  credentials: StsTenantCredentials,
): TenantScopedDynamoDb {
  // Resolved once, so the pool's protocol is the endpoint's (an AWS_ENDPOINT_URL_DYNAMODB may be http).
  const endpoint = config.endpoint ?? serviceEndpoint('dynamodb', config.region);
  const agent = keepAliveAgent(endpoint);
  return perTenant(
    (tenantId) =>
      new DynamoDbWire({
        connectionTimeoutMs: 1000,
        requestTimeoutMs: 3000,
        maxAttempts: 3,
        ...config,
        endpoint,
        agent,
        credentials: () => credentials.credentialsFor(tenantId),
      }),
  );
}
