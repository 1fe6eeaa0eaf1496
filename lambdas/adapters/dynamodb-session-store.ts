import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE } from '../../contract/tables';
import type { SessionStore, StoredSession } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { deletePartition, liveAt } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const SESSION_PREFIX = 'SESSION#';
const sessionKey = (tenantId: string, id: string) => ({ pk: tenantKey(tenantId), sk: `${SESSION_PREFIX}${id}` });

/**
 * Sessions in the documents table, in the tenant's partition (`TENANT#<id>` / `SESSION#<id>`),
 * expiring through TTL; reads skip an expired one, since DynamoDB deletes them lazily. They move
 * to a silo and leave at offboarding with the tenant's partition. Signed with the tenant's session.
 */
export class DynamoDbSessionStore implements SessionStore {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async get(tenant: TenantContext, id: string, nowMs: number): Promise<StoredSession | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: sessionKey(tenant.tenantId, id), ConsistentRead: true }),
    );
    if (!liveAt(item, nowMs)) return undefined;
    return {
      id,
      messages: item.messages,
      version: item.version,
      updatedAt: item.updatedAt,
      expiresAt: item[TTL_ATTRIBUTE],
    };
  }

  async put(
    tenant: TenantContext,
    session: StoredSession,
    expectedVersion: number | undefined,
    nowMs: number,
  ): Promise<boolean> {
    const { id, messages, version, updatedAt, expiresAt } = session;
    try {
      await this.db(tenant.tenantId).send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...sessionKey(tenant.tenantId, id), messages, version, updatedAt, [TTL_ATTRIBUTE]: expiresAt },
          // An expired session still stored counts as none: its version is not awaited.
          ConditionExpression:
            expectedVersion === undefined
              ? 'attribute_not_exists(sk) OR #ttl <= :now'
              : 'version = :expected AND #ttl > :now',
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: {
            ':now': Math.floor(nowMs / 1000),
            ...(expectedVersion !== undefined && { ':expected': expectedVersion }),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  async delete(tenant: TenantContext, id: string, nowMs: number): Promise<boolean> {
    const { Attributes: old } = await this.db(tenant.tenantId).send(
      new DeleteCommand({ TableName: this.tableName, Key: sessionKey(tenant.tenantId, id), ReturnValues: 'ALL_OLD' }),
    );
    return liveAt(old, nowMs);
  }

  deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId), SESSION_PREFIX);
  }
}
