import { DeleteCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { ItemKey, SiloRead, SiloWrite } from '../core/catch-up';
import { PlatformError } from '../core/errors';
import { ledgerPartitions } from '../core/ledger-shards';
import type { TenantPartitions, TenantTable } from '../core/ports';
import { tenantKey } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { ledgerCounters } from './dynamodb-ledger';
import { batchGet, batchWrite, queryPage } from './dynamodb-partition';
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
  async read(tenantId: string, table: TenantTable, cursor?: string, prefix = '') {
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
      prefix,
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
    assertOwn(tenantId, table, items);
    await batchWrite(
      this.db(tenantId),
      this.tableNames[table],
      items.map((Item) => ({ PutRequest: { Item: { ...Item } } })),
    );
  }

  async get(tenantId: string, table: TenantTable, keys: readonly ItemKey[]): Promise<Record<string, unknown>[]> {
    assertOwn(tenantId, table, keys);
    return batchGet(this.db(tenantId), this.tableNames[table], keys);
  }

  counters(table: TenantTable, item: Readonly<Record<string, unknown>>): readonly string[] {
    return table === 'ledger' ? ledgerCounters(item) : [];
  }

  async apply(tenantId: string, table: TenantTable, writes: readonly SiloWrite[]): Promise<void> {
    assertOwn(
      tenantId,
      table,
      writes.map((write) => (write.kind === 'delete' ? write.key : write.item)),
    );
    const db = this.db(tenantId);
    const TableName = this.tableNames[table];
    for (const write of writes) {
      try {
        if (write.kind === 'put') {
          await db.send(new PutCommand({ TableName, Item: { ...write.item }, ...asRead(write.read) }));
        } else if (write.kind === 'delete') {
          const { pk, sk } = write.key;
          await db.send(new DeleteCommand({ TableName, Key: { pk, sk }, ...asRead(write.read) }));
        } else {
          await db.send(new TransactWriteCommand({ TransactItems: addWithBase(TableName, write) }));
        }
      } catch (error) {
        // The silo changed the item since the catch-up read it (its own change wins), or a concurrent
        // catch-up merged this counter first: either way, nothing to do.
        if (!isConditionalCheckFailure(error) && (error as Error).name !== 'TransactionCanceledException') throw error;
      }
    }
  }
}

/** The condition that the silo's item is as the catch-up read it. */
function asRead(read: SiloRead) {
  if (!read.exists) return { ConditionExpression: 'attribute_not_exists(sk)' };
  if (read.version === undefined)
    return { ConditionExpression: 'attribute_exists(sk) AND attribute_not_exists(version)' };
  return { ConditionExpression: 'version = :version', ExpressionAttributeValues: { ':version': read.version } };
}

/**
 * Counters added (commutative with the silo's own writes), the rest only where the silo has none, and
 * the base moved on in the same transaction, conditional on it being as read: a rerun or a concurrent
 * catch-up adds nothing twice.
 */
function addWithBase(TableName: string, write: Extract<SiloWrite, { kind: 'add' }>) {
  const { pk, sk, ...rest } = write.item;
  const added = Object.entries(write.deltas);
  const kept = Object.entries(rest).filter(([name]) => !(name in write.deltas));
  const all = [...added, ...kept];
  const clauses = [
    added.length > 0 && `ADD ${added.map((_, i) => `#a${i} :a${i}`).join(', ')}`,
    kept.length > 0 &&
      `SET ${kept.map((_, k) => `#a${k + added.length} = if_not_exists(#a${k + added.length}, :a${k + added.length})`).join(', ')}`,
  ].filter(Boolean);
  return [
    ...(clauses.length === 0
      ? []
      : [
          {
            Update: {
              TableName,
              Key: { pk, sk },
              UpdateExpression: clauses.join(' '),
              ExpressionAttributeNames: Object.fromEntries(all.map(([name], i) => [`#a${i}`, name])),
              ExpressionAttributeValues: Object.fromEntries(all.map(([, value], i) => [`:a${i}`, value])),
            },
          },
        ]),
    {
      Put: {
        TableName,
        Item: { ...write.base },
        ...(write.readBase === undefined
          ? { ConditionExpression: 'attribute_not_exists(sk)' }
          : { ConditionExpression: 'h = :h', ExpressionAttributeValues: { ':h': write.readBase } }),
      },
    },
  ];
}

/** Refuses items of any other tenant's partitions. */
function assertOwn(tenantId: string, table: TenantTable, items: readonly Readonly<Record<string, unknown>>[]): void {
  const partitions = new Set(partitionsOf(tenantId, table));
  if (items.some((item) => !partitions.has(String(item.pk)))) {
    throw new PlatformError('forbidden', `an item outside tenant '${tenantId}' partition`);
  }
}

/** A tenant's partition keys in a table: its own, and in the ledger its shards too. */
function partitionsOf(tenantId: string, table: TenantTable): string[] {
  return table === 'ledger' ? ledgerPartitions(tenantId) : [tenantKey(tenantId)];
}
