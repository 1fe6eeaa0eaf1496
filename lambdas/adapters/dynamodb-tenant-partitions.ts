import { PlatformError } from '../core/errors';
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

  read(tenantId: string, table: TenantTable, cursor?: string) {
    return queryPage(this.db(tenantId), {
      tableName: this.tableNames[table],
      pk: tenantKey(tenantId),
      prefix: '',
      limit: 100,
      cursor,
    });
  }

  async write(tenantId: string, table: TenantTable, items: readonly Record<string, unknown>[]): Promise<void> {
    if (items.some((item) => item.pk !== tenantKey(tenantId))) {
      throw new PlatformError('forbidden', `an item outside tenant '${tenantId}' partition`);
    }
    await batchWrite(
      this.db(tenantId),
      this.tableNames[table],
      items.map((Item) => ({ PutRequest: { Item: { ...Item } } })),
    );
  }
}
