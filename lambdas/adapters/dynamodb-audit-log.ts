import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { AUDIT_BY_REQUEST_INDEX } from '../../contract/tables';
import type { AuditEntry } from '../core/audit';
import type { AuditLog } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { deletePartition, queryPage, withoutKeys } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const AUDIT_PREFIX = 'AUDIT#';

/**
 * Audit records in their own table, `TENANT#<id>` / `AUDIT#<at>#<requestId>` (so a partition reads
 * newest first), expiring through TTL after the retention. Reads filter expired items too, since
 * DynamoDB deletes them lazily. Signs with the tenant's scoped credentials.
 */
export class DynamoDbAuditLog implements AuditLog {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
    private readonly retentionDays: number,
    private readonly now: () => number = Date.now,
  ) {}

  async record(tenant: TenantContext, entry: AuditEntry): Promise<void> {
    await this.db(tenant.tenantId).send(
      new PutCommand({ TableName: this.tableName, Item: auditItem(tenant.tenantId, entry, this.retentionDays) }),
    );
  }

  async list(tenant: TenantContext, page: { limit: number; cursor?: string }) {
    const { items, nextCursor } = await queryPage(this.db(tenant.tenantId), {
      tableName: this.tableName,
      pk: tenantKey(tenant.tenantId),
      prefix: AUDIT_PREFIX,
      ...page,
      newestFirst: true,
      filter: { expression: 'expiresAt > :now', values: { ':now': Math.floor(this.now() / 1000) } },
    });
    return { entries: items.map(toEntry), nextCursor };
  }

  async get(tenant: TenantContext, requestId: string): Promise<AuditEntry | undefined> {
    const result = await this.db(tenant.tenantId).send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: AUDIT_BY_REQUEST_INDEX.indexName,
        KeyConditionExpression: 'pk = :pk AND requestId = :id',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: {
          ':pk': tenantKey(tenant.tenantId),
          ':id': requestId,
          ':now': Math.floor(this.now() / 1000),
        },
      }),
    );
    const item = result.Items?.[0];
    return item && toEntry(item);
  }

  async deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId));
  }
}

/** An audit record as stored: also what the ledger's settle writes in its own transaction. */
export function auditItem(tenantId: string, entry: AuditEntry, retentionDays: number): Record<string, unknown> {
  return {
    pk: tenantKey(tenantId),
    sk: `${AUDIT_PREFIX}${entry.at}#${entry.requestId}`,
    ...entry,
    expiresAt: Math.floor(Date.parse(entry.at) / 1000) + retentionDays * 86_400,
  };
}

function toEntry(item: Record<string, unknown>): AuditEntry {
  return withoutKeys<AuditEntry>(item, 'expiresAt');
}
