import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentRecord, DocumentStore, IngestJob, IngestJobRef } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { deletePartition, queryPage, withoutKeys } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

const DOC_PREFIX = 'DOC#';
const docKey = (tenantId: string, id: string) => ({ pk: tenantKey(tenantId), sk: `${DOC_PREFIX}${id}` });
/** `JOB#<documentId>#<version>#<batch>`: beside the documents, never under their `DOC#` prefix. */
const jobKey = (tenantId: string, ref: IngestJobRef) => ({
  pk: tenantKey(tenantId),
  sk: `JOB#${ref.documentId}#${ref.version}#${ref.batch}`,
});

/** Document records (`TENANT#<id>` / `DOC#<documentId>`), signed with the tenant's scoped credentials. */
export class DynamoDbDocumentStore implements DocumentStore {
  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async put(tenant: TenantContext, record: DocumentRecord): Promise<void> {
    await this.db(tenant.tenantId).send(
      new PutCommand({ TableName: this.tableName, Item: { ...docKey(tenant.tenantId, record.id), ...record } }),
    );
  }

  async get(tenant: TenantContext, id: string): Promise<DocumentRecord | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: docKey(tenant.tenantId, id), ConsistentRead: true }),
    );
    return item && toRecord(item);
  }

  async list(tenant: TenantContext, page: { limit: number; cursor?: string }) {
    const { items, nextCursor } = await queryPage(this.db(tenant.tenantId), {
      tableName: this.tableName,
      pk: tenantKey(tenant.tenantId),
      prefix: DOC_PREFIX,
      ...page,
    });
    return { records: items.map(toRecord), nextCursor };
  }

  async delete(tenant: TenantContext, id: string): Promise<boolean> {
    const { Attributes } = await this.db(tenant.tenantId).send(
      new DeleteCommand({ TableName: this.tableName, Key: docKey(tenant.tenantId, id), ReturnValues: 'ALL_OLD' }),
    );
    return Attributes !== undefined;
  }

  async putJobs(tenant: TenantContext, jobs: readonly IngestJob[]): Promise<void> {
    const db = this.db(tenant.tenantId);
    await Promise.all(
      jobs.map((job) =>
        db.send(new PutCommand({ TableName: this.tableName, Item: { ...jobKey(tenant.tenantId, job), job } })),
      ),
    );
  }

  async getJob(tenant: TenantContext, ref: IngestJobRef): Promise<IngestJob | undefined> {
    const { Item: item } = await this.db(tenant.tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: jobKey(tenant.tenantId, ref), ConsistentRead: true }),
    );
    return item?.job as IngestJob | undefined;
  }

  async deleteJob(tenant: TenantContext, ref: IngestJobRef): Promise<void> {
    await this.db(tenant.tenantId).send(
      new DeleteCommand({ TableName: this.tableName, Key: jobKey(tenant.tenantId, ref) }),
    );
  }

  async listJobs(tenant: TenantContext, cursor?: string) {
    const page = await queryPage(this.db(tenant.tenantId), {
      tableName: this.tableName,
      pk: tenantKey(tenant.tenantId),
      prefix: 'JOB#',
      limit: 100,
      cursor,
    });
    const jobs = page.items.map((item) => {
      const { tenantId, principal, documentId, version, requestId, batch } = item.job as IngestJob;
      return { tenantId, principal, documentId, version, requestId, batch };
    });
    return { jobs, nextCursor: page.nextCursor };
  }

  async recordIndexed(
    tenant: TenantContext,
    document: { id: string; version: string },
    batch: number,
    count: number,
  ): Promise<'partial' | 'complete' | 'stale'> {
    const db = this.db(tenant.tenantId);
    const key = docKey(tenant.tenantId, document.id);
    let progress: { indexedChunks: number; chunks: number };
    try {
      // The batch number joins a set only once, so a redelivered job never counts its chunks twice.
      const { Attributes: after } = await db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: 'ADD indexedChunks :n, indexedBatches :batch',
          ConditionExpression: 'version = :version AND NOT contains(indexedBatches, :b)',
          ExpressionAttributeValues: {
            ':n': count,
            ':batch': new Set([batch]),
            ':b': batch,
            ':version': document.version,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      progress = { indexedChunks: Number(after?.indexedChunks), chunks: Number(after?.chunks) };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const current = await this.get(tenant, document.id);
      if (current?.version !== document.version) return 'stale';
      progress = current;
    }
    if (progress.indexedChunks < progress.chunks) return 'partial';
    await db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: key,
        UpdateExpression: 'SET #s = :indexed',
        ConditionExpression: 'version = :version',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':indexed': 'indexed', ':version': document.version },
      }),
    );
    return 'complete';
  }

  async deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId));
  }
}

function toRecord(item: Record<string, unknown>): DocumentRecord {
  const record = withoutKeys<DocumentRecord>(item);
  // A DynamoDB number set comes back as a Set.
  return item.indexedBatches instanceof Set ? { ...record, indexedBatches: [...item.indexedBatches] } : record;
}
