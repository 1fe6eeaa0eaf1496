import { DeleteCommand, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AdapterRecord } from '../core/adapter-record';
import { PlatformError } from '../core/errors';
import type { RecordCondition, StoredApiKey, TenantRegistry, TenantVersion } from '../core/ports';
import type { PromptRecord } from '../core/prompt-record';
import { type TenantRecord, tenantKey, tenantRecordSchema } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { queryAll } from './dynamodb-partition';
import {
  ADAPTERS,
  PROFILE,
  PROMPTS,
  RegistryRecords,
  tenantIsCurrent,
  transactOrRefuse,
  versionCondition,
} from './dynamodb-registry-records';
import type { DocumentClient } from './dynamodb-wire';

/** A scan position as an opaque cursor: the last key read. */
function encodeScanCursor(key: { pk: string; sk: string }): string {
  return Buffer.from(JSON.stringify([key.pk, key.sk]), 'utf8').toString('base64url');
}

/** Refuses a cursor that is not a key of this table's tenant partitions. */
function decodeScanCursor(cursor: string): { pk: string; sk: string } {
  try {
    const [pk, sk] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof pk === 'string' && typeof sk === 'string' && pk.length <= 256 && sk.length <= 256) return { pk, sk };
  } catch {
    // answered below
  }
  throw new PlatformError('invalid_request', 'cursor is not valid');
}
const apiKeyKey = (keyId: string) => ({ pk: `APIKEY#${keyId}`, sk: 'APIKEY' });
/** The tenant's own list of its keys, so offboarding finds them without a scan. */
const tenantApiKeyKey = (tenantId: string, keyId: string) => ({ pk: tenantKey(tenantId), sk: `APIKEY#${keyId}` });

/**
 * Tenants (`TENANT#<id>` / `PROFILE`, plus `APIKEY#<keyId>` entries listing their keys) and API
 * keys (`APIKEY#<keyId>`: the authorizer finds a key by its id alone, before it knows the tenant).
 * Reads are strongly consistent so a new or revoked key takes effect at once, up to the authorizer's cache.
 */
export class DynamoDbTenantRegistry implements TenantRegistry {
  private readonly adapters: RegistryRecords<AdapterRecord>;
  private readonly prompts: RegistryRecords<PromptRecord>;

  constructor(
    private readonly db: DocumentClient,
    private readonly tableName: string,
  ) {
    this.adapters = new RegistryRecords(db, tableName, ADAPTERS);
    this.prompts = new RegistryRecords(db, tableName, PROMPTS);
  }

  getPrompt(tenantId: string, name: string) {
    return this.prompts.get(tenantId, name);
  }

  putPrompt(tenantId: string, record: PromptRecord, condition?: RecordCondition<PromptRecord>) {
    return this.prompts.put(tenantId, record, condition);
  }

  listPrompts(tenantId: string) {
    return this.prompts.list(tenantId);
  }

  deletePrompt(tenantId: string, name: string, condition?: RecordCondition<PromptRecord>) {
    return this.prompts.delete(tenantId, name, condition);
  }

  getAdapter(tenantId: string, name: string) {
    return this.adapters.get(tenantId, name);
  }

  putAdapter(tenantId: string, record: AdapterRecord, condition?: RecordCondition<AdapterRecord>) {
    return this.adapters.put(tenantId, record, condition);
  }

  listAdapters(tenantId: string) {
    return this.adapters.list(tenantId);
  }

  deleteAdapter(tenantId: string, name: string, condition?: RecordCondition<AdapterRecord>) {
    return this.adapters.delete(tenantId, name, condition);
  }

  async getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: tenantKey(tenantId), sk: PROFILE },
        ConsistentRead: true,
      }),
    );
    return item ? tenantRecordSchema.parse(item) : undefined;
  }

  async listTenants(page: {
    limit: number;
    cursor?: string;
  }): Promise<{ tenants: TenantRecord[]; nextCursor?: string }> {
    const tenants: TenantRecord[] = [];
    let startKey = page.cursor === undefined ? undefined : decodeScanCursor(page.cursor);
    // Keys, adapters and prompts share the table: scan on until the page holds `limit` tenants.
    do {
      const result = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'sk = :profile',
          ExpressionAttributeValues: { ':profile': PROFILE },
          Limit: page.limit - tenants.length,
          ExclusiveStartKey: startKey,
        }),
      );
      tenants.push(...(result.Items ?? []).map((item) => tenantRecordSchema.parse(item)));
      startKey = result.LastEvaluatedKey as { pk: string; sk: string } | undefined;
    } while (startKey && tenants.length < page.limit);
    return { tenants, nextCursor: startKey && encodeScanCursor(startKey) };
  }

  async createTenant(record: TenantRecord): Promise<TenantRecord> {
    const created = { ...record, version: 1 };
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: tenantKey(record.tenantId), sk: PROFILE, ...created },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailure(error))
        throw new PlatformError('conflict', `tenant '${record.tenantId}' exists already`);
      throw error;
    }
    return created;
  }

  async discardNewTenant(tenantId: string): Promise<void> {
    try {
      await this.db.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: tenantKey(tenantId), sk: PROFILE },
          ConditionExpression: '#version = :first',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':first': 1 },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  async updateTenant(record: TenantRecord): Promise<TenantRecord> {
    const updated = { ...record, version: record.version + 1 };
    const condition = versionCondition(record.version);
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: tenantKey(record.tenantId), sk: PROFILE, ...updated },
          ConditionExpression: `attribute_exists(pk) AND ${condition.expression}`,
          ExpressionAttributeNames: condition.names,
          ...(Object.keys(condition.values).length > 0 && { ExpressionAttributeValues: condition.values }),
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      if (!(await this.getTenant(record.tenantId))) throw new PlatformError('not_found', 'no such tenant');
      throw new PlatformError('conflict', `tenant '${record.tenantId}' changed since version ${record.version}`);
    }
    return updated;
  }

  async getApiKey(keyId: string): Promise<StoredApiKey | undefined> {
    const { Item: item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: apiKeyKey(keyId), ConsistentRead: true }),
    );
    if (!item) return undefined;
    return {
      keyId: String(item.keyId),
      tenantId: String(item.tenantId),
      secretHash: String(item.secretHash),
      status: item.status === 'active' ? 'active' : 'revoked',
      createdAt: String(item.createdAt),
      ...(item.limits !== undefined && { limits: item.limits as StoredApiKey['limits'] }),
      ...(typeof item.project === 'string' && { project: item.project }),
    };
  }

  async putApiKey(key: StoredApiKey, tenant?: TenantVersion): Promise<void> {
    // The tenant's entry with the key: a key the tenant cannot list is a key offboarding would miss.
    const entry = {
      ...tenantApiKeyKey(key.tenantId, key.keyId),
      keyId: key.keyId,
      createdAt: key.createdAt,
      status: key.status,
    };
    await transactOrRefuse(
      this.db,
      [
        ...(tenant ? [tenantIsCurrent(this.tableName, tenant)] : []),
        { Put: { TableName: this.tableName, Item: entry } },
        { Put: { TableName: this.tableName, Item: { ...apiKeyKey(key.keyId), ...key } } },
      ],
      () => new PlatformError('conflict', `tenant '${key.tenantId}' changed`),
    );
  }

  async revokeApiKey(keyId: string, tenant: TenantVersion): Promise<void> {
    const revoke = { UpdateExpression: 'SET #status = :revoked', ExpressionAttributeNames: { '#status': 'status' } };
    await transactOrRefuse(
      this.db,
      [
        tenantIsCurrent(this.tableName, tenant),
        {
          Update: {
            TableName: this.tableName,
            Key: apiKeyKey(keyId),
            ...revoke,
            // Only the owner's key: another tenant's key id answers exactly like an unknown one.
            ConditionExpression: 'tenantId = :tenantId',
            ExpressionAttributeValues: { ':revoked': 'revoked', ':tenantId': tenant.tenantId },
          },
        },
        // The tenant's own list says so too: what the tenant reads with its scoped credentials.
        {
          Update: {
            TableName: this.tableName,
            Key: tenantApiKeyKey(tenant.tenantId, keyId),
            ...revoke,
            ExpressionAttributeValues: { ':revoked': 'revoked' },
          },
        },
      ],
      keyWriteRefusal(tenant, 'no such API key'),
    );
  }

  async setApiKeyProject(keyId: string, project: string | undefined, tenant: TenantVersion): Promise<void> {
    await transactOrRefuse(
      this.db,
      [
        tenantIsCurrent(this.tableName, tenant),
        {
          Update: {
            TableName: this.tableName,
            Key: apiKeyKey(keyId),
            // `project` is one of DynamoDB's reserved words.
            UpdateExpression: project === undefined ? 'REMOVE #project' : 'SET #project = :project',
            // Only the owner's key, and only while it is active.
            ConditionExpression: 'tenantId = :tenantId AND #status = :active',
            ExpressionAttributeNames: { '#status': 'status', '#project': 'project' },
            ExpressionAttributeValues: {
              ':tenantId': tenant.tenantId,
              ':active': 'active',
              ...(project !== undefined && { ':project': project }),
            },
          },
        },
      ],
      keyWriteRefusal(tenant, 'no such active API key'),
    );
  }

  async deleteApiKeys(tenantId: string): Promise<number> {
    const keyIds = await this.keyIds(tenantId);
    for (const keyId of keyIds) {
      // The key itself first (the tenant's own only: an entry a return carried may name an id that is
      // not), then the entry, which is what a rerun finds it by.
      await this.db
        .send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: apiKeyKey(keyId),
            ConditionExpression: 'attribute_not_exists(pk) OR tenantId = :tenantId',
            ExpressionAttributeValues: { ':tenantId': tenantId },
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionalCheckFailure(error)) throw error;
        });
      await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: tenantApiKeyKey(tenantId, keyId) }));
    }
    return keyIds.length;
  }

  async listApiKeys(tenantId: string): Promise<StoredApiKey[]> {
    const keys = await Promise.all((await this.keyIds(tenantId)).map((keyId) => this.getApiKey(keyId)));
    return keys.filter((key): key is StoredApiKey => key?.tenantId === tenantId);
  }

  async carryApiKeys(tenantId: string, keys: readonly StoredApiKey[]): Promise<void> {
    for (const key of keys) {
      try {
        await this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...tenantApiKeyKey(tenantId, key.keyId),
              keyId: key.keyId,
              createdAt: key.createdAt,
              status: key.status,
              carriedHash: key.secretHash,
              ...(key.limits && { carriedLimits: key.limits }),
              ...(key.project && { carriedProject: key.project }),
            },
            // A key revoked here stays revoked: revocation is final, on either plane.
            ConditionExpression: 'attribute_not_exists(pk) OR #status <> :revoked',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':revoked': 'revoked' },
          }),
        );
      } catch (error) {
        if (!isConditionalCheckFailure(error)) throw error;
      }
    }
  }

  async adoptCarriedKeys(tenantId: string): Promise<number> {
    const carried = (
      await queryAll(this.db, { tableName: this.tableName, pk: tenantKey(tenantId), prefix: 'APIKEY#' })
    ).filter((entry) => typeof entry.carriedHash === 'string');
    for (const entry of carried) {
      const keyId = String(entry.keyId);
      try {
        await this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...apiKeyKey(keyId),
              keyId,
              tenantId,
              secretHash: entry.carriedHash,
              status: entry.status,
              createdAt: entry.createdAt,
              ...(entry.carriedLimits !== undefined && { limits: entry.carriedLimits }),
              ...(typeof entry.carriedProject === 'string' && { project: entry.carriedProject }),
            },
            ConditionExpression: 'attribute_not_exists(pk) OR (tenantId = :tenantId AND #status = :active)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':tenantId': tenantId, ':active': 'active' },
          }),
        );
      } catch (error) {
        if (!isConditionalCheckFailure(error)) throw error;
      }
      // The tenant's list says what the key is now; an id that is another tenant's is not in it.
      const key = await this.getApiKey(keyId);
      if (key?.tenantId === tenantId) {
        await this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...tenantApiKeyKey(tenantId, keyId), keyId, createdAt: key.createdAt, status: key.status },
          }),
        );
      } else
        await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: tenantApiKeyKey(tenantId, keyId) }));
    }
    return carried.length;
  }

  /** The ids in the tenant's own list of its keys. */
  private async keyIds(tenantId: string): Promise<string[]> {
    const entries = await queryAll(this.db, { tableName: this.tableName, pk: tenantKey(tenantId), prefix: 'APIKEY#' });
    return entries.map((item) => String(item.keyId));
  }
}

/**
 * Why a transaction writing one of the tenant's keys was refused, by the item that refused it: the
 * first is the tenant's version check (it changed since it was read), any other the key's own.
 */
function keyWriteRefusal(tenant: TenantVersion, noKey: string): (index: number) => PlatformError {
  return (index) =>
    index === 0
      ? new PlatformError('conflict', `tenant '${tenant.tenantId}' changed`)
      : new PlatformError('not_found', noKey);
}
