import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE } from '../../contract/tables';
import type { CachedAnswer, ResponseCache } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { deletePartition, liveAt } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const CACHE_PREFIX = 'CACHE#';
const cacheItemKey = (tenantId: string, key: string) => ({ pk: tenantKey(tenantId), sk: `${CACHE_PREFIX}${key}` });

/**
 * Cached answers in the documents table, in the tenant's own partition (`TENANT#<id>` /
 * `CACHE#<hash>`), so no key can reach another tenant's entry; expiring through TTL (reads skip
 * an expired one). Signed with the tenant's scoped session.
 */
export class DynamoDbResponseCache implements ResponseCache {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async get(tenant: TenantContext, key: string, nowMs: number): Promise<CachedAnswer | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: cacheItemKey(tenant.tenantId, key) }),
    );
    if (!liveAt(item, nowMs)) return undefined;
    return {
      text: String(item.text),
      finishReason: String(item.finishReason),
      ...(Array.isArray(item.toolCalls) && { toolCalls: item.toolCalls }),
    };
  }

  async put(tenant: TenantContext, key: string, answer: CachedAnswer, expiresAtSeconds: number): Promise<void> {
    await this.db(tenant.tenantId).send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...cacheItemKey(tenant.tenantId, key), ...answer, [TTL_ATTRIBUTE]: expiresAtSeconds },
      }),
    );
  }

  deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId), CACHE_PREFIX);
  }
}
