import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE } from '../../contract/tables';
import type { ResponseStore, StoredResponse } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { deletePartition, liveAt } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const RESPONSE_PREFIX = 'RESPONSE#';
const responseKey = (tenantId: string, id: string) => ({ pk: tenantKey(tenantId), sk: `${RESPONSE_PREFIX}${id}` });

/**
 * Stored responses in the documents table, in the tenant's partition (`TENANT#<id>` /
 * `RESPONSE#<id>`), expiring through TTL; reads skip an expired one, since DynamoDB deletes them
 * lazily. They move to a silo and leave at offboarding with the tenant's partition. Signed with
 * the tenant's session.
 */
export class DynamoDbResponseStore implements ResponseStore {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async get(tenant: TenantContext, id: string, nowMs: number): Promise<StoredResponse | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: responseKey(tenant.tenantId, id), ConsistentRead: true }),
    );
    if (!liveAt(item, nowMs)) return undefined;
    const { response, inputItems, conversation } = JSON.parse(item.body);
    return { id, principal: item.principal, response, inputItems, conversation, expiresAt: item[TTL_ATTRIBUTE] };
  }

  async put(tenant: TenantContext, stored: StoredResponse): Promise<void> {
    const { id, principal, expiresAt, response, inputItems, conversation } = stored;
    // One JSON string: a caller's JSON (deep schemas, numbers past 2^53) need not fit DynamoDB's types.
    const body = JSON.stringify({ response, inputItems, conversation });
    await this.db(tenant.tenantId).send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...responseKey(tenant.tenantId, id), principal, body, [TTL_ATTRIBUTE]: expiresAt },
      }),
    );
  }

  async delete(tenant: TenantContext, id: string, nowMs: number): Promise<boolean> {
    const { Attributes: gone } = await this.db(tenant.tenantId).send(
      new DeleteCommand({ TableName: this.tableName, Key: responseKey(tenant.tenantId, id), ReturnValues: 'ALL_OLD' }),
    );
    return liveAt(gone, nowMs);
  }

  deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId), RESPONSE_PREFIX);
  }
}
