import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { PlatformError } from '../core/errors';
import { type TenantRecord, tenantKey, tenantRecordSchema } from '../core/tenant';
import type { StoredApiKey, TenantRegistry } from '../ports';
import { isConditionalCheckFailure } from './dynamodb-errors';

const PROFILE = 'PROFILE';
const apiKeyKey = (keyId: string) => ({ pk: `APIKEY#${keyId}`, sk: 'APIKEY' });

/**
 * Tenants (`TENANT#<id>` / `PROFILE`) and API keys (`APIKEY#<keyId>`: the authorizer finds a key by
 * its id alone, before it knows the tenant). Reads are strongly consistent so a new or revoked key
 * takes effect at once, up to the authorizer's cache.
 */
export class DynamoDbTenantRegistry implements TenantRegistry {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: tenantKey(tenantId), sk: PROFILE },
        ConsistentRead: true,
      }),
    );
    return item ? tenantRecordSchema.parse(item) : undefined;
  }

  async createTenant(record: TenantRecord): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: tenantKey(record.tenantId), sk: PROFILE, ...record },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailure(error))
        throw new PlatformError('conflict', `tenant '${record.tenantId}' exists already`);
      throw error;
    }
  }

  async getApiKey(keyId: string): Promise<StoredApiKey | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: apiKeyKey(keyId), ConsistentRead: true }),
    );
    if (!item) return undefined;
    return {
      keyId: String(item.keyId),
      tenantId: String(item.tenantId),
      secretHash: String(item.secretHash),
      status: item.status === 'active' ? 'active' : 'revoked',
      createdAt: String(item.createdAt),
    };
  }

  async putApiKey(key: StoredApiKey): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.tableName, Item: { ...apiKeyKey(key.keyId), ...key } }));
  }
}
