import { PlatformError } from '../core/errors';
import { ledgerPartitions } from '../core/ledger-shards';
import type { TenantPartitions, TenantTable } from '../core/ports';
import { tenantKey } from '../core/tenant';
import { batchWrite, queryPage } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

/**
 * The tenant's partition of each data table, item by item as stored. Signed with the tenant's
 * scoped credentials in local mode and by the functions; the AWS pipeline's migration uses its own.
 */
export class DynamoDbTenantPartitions implements TenantPartitions {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableNames: Readonly<Record<TenantTable, string>>,
  ) {}

  /** Page by page, partition after partition; the cursor is `<partition index>:<cursor within it>`. */
  async read(tenantId: string, table: TenantTable, cursor?: string) {
    const partitions = partitionsOf(tenantId, table);
    const split = cursor?.indexOf(':') ?? -1;
    const index = split < 0 ? 0 : Number(cursor?.slice(0, split));
    const within = split < 0 ? undefined : cursor?.slice(split + 1) || undefined;
    if (!Number.isInteger(index) || index < 0 || index >= partitions.length) {
      throw new PlatformError('invalid_request', 'bad cursor');
    }
    const page = await queryPage(this.db(tenantId), {
      tableName: this.tableNames[table],
      pk: partitions[index],
      prefix: '',
      limit: 100,
      cursor: within,
    });
    const next = page.nextCursor
      ? `${index}:${page.nextCursor}`
      : index + 1 < partitions.length
        ? `${index + 1}:`
        : undefined;
    return { items: page.items, nextCursor: next };
  }

  async write(tenantId: string, table: TenantTable, items: readonly Record<string, unknown>[]): Promise<void> {
    const partitions = new Set(partitionsOf(tenantId, table));
    if (items.some((item) => !partitions.has(String(item.pk)))) {
      throw new PlatformError('forbidden', `an item outside tenant '${tenantId}' partition`);
    }
    await batchWrite(
      this.db(tenantId),
      this.tableNames[table],
      items.map((Item) => ({ PutRequest: { Item: { ...Item } } })),
    );
  }
}

/** A tenant's partition keys in a table: its own, and in the ledger its shards too. */
function partitionsOf(tenantId: string, table: TenantTable): string[] {
  return table === 'ledger' ? ledgerPartitions(tenantId) : [tenantKey(tenantId)];
}
