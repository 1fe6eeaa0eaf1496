import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { PlatformError } from '../core/errors';
import type { BatchRecord, BatchStore } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const BATCH_PREFIX = 'BATCH#';
const batchKey = (tenantId: string, id: string) => ({ pk: tenantKey(tenantId), sk: `${BATCH_PREFIX}${id}` });

/**
 * Batches in the tenant's partition of the documents table (`TENANT#<id>` / `BATCH#<batchId>`), signed
 * with the tenant's scoped credentials: offboarding's purge of the partition takes them, a move's
 * copy carries them. The record is kept as JSON beside its `version`, which every write is conditional on.
 */
export class DynamoDbBatchStore implements BatchStore {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async create(tenant: TenantContext, batch: BatchRecord): Promise<void> {
    try {
      await this.db(tenant.tenantId).send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(tenant.tenantId, batch),
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailure(error)) throw new PlatformError('conflict', `batch ${batch.id} exists already`);
      throw error;
    }
  }

  async get(tenant: TenantContext, id: string): Promise<BatchRecord | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: batchKey(tenant.tenantId, id), ConsistentRead: true }),
    );
    return item && toRecord(item);
  }

  async list(
    tenant: TenantContext,
    page: { readonly limit: number; readonly after?: string },
  ): Promise<{ readonly batches: BatchRecord[]; readonly hasMore: boolean }> {
    const pk = tenantKey(tenant.tenantId);
    // Ids sort newest first: the page after `after` is the keys past it.
    const { Items: items = [] } = await this.db(tenant.tenantId).send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: page.after
          ? 'pk = :pk AND sk BETWEEN :from AND :to'
          : 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: page.after
          ? { ':pk': pk, ':from': `${BATCH_PREFIX}${page.after}\u0000`, ':to': `${BATCH_PREFIX}\uffff` }
          : { ':pk': pk, ':prefix': BATCH_PREFIX },
        Limit: page.limit + 1,
        ConsistentRead: true,
      }),
    );
    const batches = items.map(toRecord);
    return { batches: batches.slice(0, page.limit), hasMore: batches.length > page.limit };
  }

  async update(tenant: TenantContext, batch: BatchRecord): Promise<BatchRecord | undefined> {
    const written = { ...batch, version: batch.version + 1 };
    try {
      await this.db(tenant.tenantId).send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(tenant.tenantId, written),
          ConditionExpression: 'version = :read',
          ExpressionAttributeValues: { ':read': batch.version },
        }),
      );
      return written;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return undefined;
      throw error;
    }
  }

  private item(tenantId: string, batch: BatchRecord) {
    return { ...batchKey(tenantId, batch.id), version: batch.version, batch: JSON.stringify(batch) };
  }
}

function toRecord(item: Record<string, unknown>): BatchRecord {
  return JSON.parse(item.batch as string) as BatchRecord;
}
