import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type * as z from 'zod';
import { type AdapterRecord, adapterRecordSchema } from '../core/adapter-record';
import type { ApiKeyListing, TenantAdapters, TenantKeys, TenantPrompts } from '../core/ports';
import { type PromptRecord, promptRecordSchema } from '../core/prompt-record';
import { type TenantContext, tenantKey } from '../core/tenant';
import { queryAll, withoutKeys } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

/** A kind of named per-tenant record in the registry table: its sort key prefix and its schema. */
export interface RecordKind<T extends { name: string }> {
  readonly prefix: string;
  readonly schema: z.ZodType<T>;
}

/** A tenant's LoRA adapters: `ADAPTER#<name>`. */
export const ADAPTERS: RecordKind<AdapterRecord> = { prefix: 'ADAPTER#', schema: adapterRecordSchema };
/** A tenant's prompt templates: `PROMPT#<name>`. */
export const PROMPTS: RecordKind<PromptRecord> = { prefix: 'PROMPT#', schema: promptRecordSchema };

/**
 * Named records of a tenant in the registry table, in the tenant's own partition
 * (`TENANT#<id>` / `<prefix><name>`), so a tenant's functions read them with its scoped credentials.
 */
export class RegistryRecords<T extends { name: string }> {
  constructor(
    private readonly db: DynamoDBDocumentClient,
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

  async put(tenantId: string, record: T): Promise<void> {
    await this.db.send(
      new PutCommand({ TableName: this.tableName, Item: { ...this.key(tenantId, record.name), ...record } }),
    );
  }

  async delete(tenantId: string, name: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: this.key(tenantId, name) }));
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
