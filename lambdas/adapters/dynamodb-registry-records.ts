import { GetCommand, TransactWriteCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type * as z from '../../contract/zod';
import { type AdapterRecord, adapterRecordSchema } from '../core/adapter-record';
import { PlatformError } from '../core/errors';
import type {
  ApiKeyListing,
  RecordCondition,
  TenantAdapters,
  TenantKeys,
  TenantPrompts,
  TenantVersion,
} from '../core/ports';
import { type PromptRecord, promptRecordSchema } from '../core/prompt-record';
import { type TenantContext, tenantKey } from '../core/tenant';
import { queryAll, withoutKeys } from './dynamodb-partition';
import type { DocumentClient } from './dynamodb-wire';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
type Condition = { expression: string; names: Record<string, string>; values: Record<string, unknown> };

/** Sort key of a tenant's record in the registry table. */
export const PROFILE = 'PROFILE';

/** The condition that the tenant record is still at the version read (0: written before versions). */
export function versionCondition(version: number): Condition {
  return version === 0
    ? { expression: 'attribute_not_exists(#version)', names: { '#version': 'version' }, values: {} }
    : { expression: '#version = :version', names: { '#version': 'version' }, values: { ':version': version } };
}

/** A transaction item that checks the tenant record is still at the version read. */
export function tenantIsCurrent(tableName: string, tenant: TenantVersion): TransactItem {
  const condition = versionCondition(tenant.version);
  return {
    ConditionCheck: {
      TableName: tableName,
      Key: { pk: tenantKey(tenant.tenantId), sk: PROFILE },
      ConditionExpression: condition.expression,
      ExpressionAttributeNames: condition.names,
      ...(Object.keys(condition.values).length > 0 && { ExpressionAttributeValues: condition.values }),
    },
  };
}

/**
 * Runs the transaction; a cancelled one throws what `failed` makes of the first item whose
 * condition failed. A transaction conflict (another write to one of its items in flight) lost the race too.
 */
export async function transactOrRefuse(
  db: DocumentClient,
  items: TransactItem[],
  failed: (index: number) => PlatformError,
): Promise<void> {
  try {
    await db.send(new TransactWriteCommand({ TransactItems: items }));
  } catch (error) {
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    if ((error as Error).name !== 'TransactionCanceledException' || !reasons) throw error;
    const index = reasons.findIndex((reason) => reason.Code === 'ConditionalCheckFailed');
    if (index >= 0) throw failed(index);
    if (reasons.some((reason) => reason.Code === 'TransactionConflict')) {
      throw new PlatformError('conflict', 'another change to the tenant was being written');
    }
    throw error;
  }
}

/** A kind of named per-tenant record in the registry table: its sort key prefix and its schema. */
export interface RecordKind<T extends { name: string }> {
  readonly prefix: string;
  readonly schema: z.ZodMiniType<T>;
  readonly noun: string;
  /** The attributes that tell a stored record from another write of it. */
  readonly revision: (record: T) => Record<string, string | number>;
}

/** A tenant's LoRA adapters: `ADAPTER#<name>`. */
export const ADAPTERS: RecordKind<AdapterRecord> = {
  prefix: 'ADAPTER#',
  schema: adapterRecordSchema,
  noun: 'adapter',
  revision: (record) => ({ status: record.status, createdAt: record.createdAt }),
};
/** A tenant's prompt templates: `PROMPT#<name>`. */
export const PROMPTS: RecordKind<PromptRecord> = {
  prefix: 'PROMPT#',
  schema: promptRecordSchema,
  noun: 'prompt',
  revision: (record) => ({ version: record.version }),
};

/**
 * Named records of a tenant in the registry table, in the tenant's own partition
 * (`TENANT#<id>` / `<prefix><name>`), so a tenant's functions read them with its scoped credentials.
 */
export class RegistryRecords<T extends { name: string }> {
  constructor(
    private readonly db: DocumentClient,
    private readonly tableName: string,
    private readonly kind: RecordKind<T>,
  ) {}

  private key(tenantId: string, name: string) {
    return { pk: tenantKey(tenantId), sk: `${this.kind.prefix}${name}` };
  }

  async get(tenantId: string, name: string): Promise<T | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(tenantId, name), ConsistentRead: true }),
    );
    return item ? this.kind.schema.parse(withoutKeys(item)) : undefined;
  }

  async list(tenantId: string): Promise<T[]> {
    const items = await queryAll(this.db, {
      tableName: this.tableName,
      pk: tenantKey(tenantId),
      prefix: this.kind.prefix,
    });
    return items.map((item) => this.kind.schema.parse(withoutKeys(item)));
  }

  put(tenantId: string, record: T, condition: RecordCondition<T> = {}): Promise<void> {
    const write = { TableName: this.tableName, Item: { ...this.key(tenantId, record.name), ...record } };
    return this.write(record.name, condition, (previous) => ({ Put: { ...write, ...previous } }));
  }

  delete(tenantId: string, name: string, condition: RecordCondition<T> = {}): Promise<void> {
    const write = { TableName: this.tableName, Key: this.key(tenantId, name) };
    return this.write(name, condition, (previous) => ({ Delete: { ...write, ...previous } }));
  }

  /** One write, conditional on the record as read, in one transaction with the tenant's version check when given. */
  private async write(
    name: string,
    condition: RecordCondition<T>,
    item: (previous: Record<string, unknown>) => TransactItem,
  ): Promise<void> {
    const { tenant, previous } = condition;
    const items = [
      ...(tenant ? [tenantIsCurrent(this.tableName, tenant)] : []),
      item(this.previousCondition(previous)),
    ];
    await transactOrRefuse(this.db, items, (index) =>
      tenant && index === 0
        ? new PlatformError('conflict', `tenant '${tenant.tenantId}' changed`)
        : new PlatformError('conflict', `${this.kind.noun} '${name}' was changed by another write`),
    );
  }

  private previousCondition(previous: T | null | undefined): Record<string, unknown> {
    if (previous === undefined) return {};
    if (previous === null) return { ConditionExpression: 'attribute_not_exists(pk)' };
    const revision = Object.entries(this.kind.revision(previous));
    return {
      ConditionExpression: revision.map((_, index) => `#r${index} = :r${index}`).join(' AND '),
      ExpressionAttributeNames: Object.fromEntries(revision.map(([attribute], index) => [`#r${index}`, attribute])),
      ExpressionAttributeValues: Object.fromEntries(revision.map(([, value], index) => [`:r${index}`, value])),
    };
  }
}

/** The caller's own records of one kind, through its tenant-scoped session: IAM confines it to its partition. */
class TenantRecords<T extends { name: string }> {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
    private readonly kind: RecordKind<T>,
  ) {}

  get(tenant: TenantContext, name: string) {
    return new RegistryRecords(this.db(tenant.tenantId), this.tableName, this.kind).get(tenant.tenantId, name);
  }

  list(tenant: TenantContext) {
    return new RegistryRecords(this.db(tenant.tenantId), this.tableName, this.kind).list(tenant.tenantId);
  }
}

/** The caller's own adapters. */
export class DynamoDbTenantAdapters extends TenantRecords<AdapterRecord> implements TenantAdapters {
  constructor(db: TenantScopedDynamoDb, tableName: string) {
    super(db, tableName, ADAPTERS);
  }
}

/** The caller's own prompt templates. */
export class DynamoDbTenantPrompts extends TenantRecords<PromptRecord> implements TenantPrompts {
  constructor(db: TenantScopedDynamoDb, tableName: string) {
    super(db, tableName, PROMPTS);
  }
}

/**
 * The caller's own API keys: the tenant's list of them (`APIKEY#<keyId>` in its partition), which
 * holds each key's id, creation time and status, never the secret's hash.
 */
export class DynamoDbTenantKeys implements TenantKeys {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async list(tenant: TenantContext): Promise<ApiKeyListing[]> {
    const entries = await queryAll(this.db(tenant.tenantId), {
      tableName: this.tableName,
      pk: tenantKey(tenant.tenantId),
      prefix: 'APIKEY#',
    });
    return entries.map((item) => ({
      keyId: String(item.keyId),
      createdAt: String(item.createdAt),
      status: item.status === 'revoked' ? 'revoked' : 'active',
    }));
  }
}
