import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { type AdapterRecord, adapterRecordSchema } from '../core/adapter-record';
import type { TenantAdapters } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { queryPage, withoutKeys } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const ADAPTER_PREFIX = 'ADAPTER#';
const adapterKey = (tenantId: string, name: string) => ({ pk: tenantKey(tenantId), sk: `${ADAPTER_PREFIX}${name}` });

/**
 * A tenant's adapters in the registry table, in the tenant's own partition (`TENANT#<id>` /
 * `ADAPTER#<name>`), so the chat function reads them with the tenant's scoped credentials.
 */
export class AdapterRecords {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(tenantId: string, name: string): Promise<AdapterRecord | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: adapterKey(tenantId, name), ConsistentRead: true }),
    );
    return item ? adapterRecordSchema.parse(withoutKeys(item)) : undefined;
  }

  async list(tenantId: string): Promise<AdapterRecord[]> {
    const records: AdapterRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await queryPage(this.db, {
        tableName: this.tableName,
        pk: tenantKey(tenantId),
        prefix: ADAPTER_PREFIX,
        limit: 100,
        cursor,
      });
      records.push(...page.items.map((item) => adapterRecordSchema.parse(withoutKeys(item))));
      cursor = page.nextCursor;
    } while (cursor);
    return records;
  }

  async put(tenantId: string, record: AdapterRecord): Promise<void> {
    await this.db.send(
      new PutCommand({ TableName: this.tableName, Item: { ...adapterKey(tenantId, record.name), ...record } }),
    );
  }

  async delete(tenantId: string, name: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: adapterKey(tenantId, name) }));
  }
}

/** The caller's own adapters, through its tenant-scoped session: IAM confines it to its partition. */
export class DynamoDbTenantAdapters implements TenantAdapters {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  get(tenant: TenantContext, name: string) {
    return new AdapterRecords(this.db(tenant.tenantId), this.tableName).get(tenant.tenantId, name);
  }

  list(tenant: TenantContext) {
    return new AdapterRecords(this.db(tenant.tenantId), this.tableName).list(tenant.tenantId);
  }
}
