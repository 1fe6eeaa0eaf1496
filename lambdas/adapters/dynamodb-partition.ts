import { BatchGetCommand, BatchWriteCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { TABLE_KEY, TTL_ATTRIBUTE } from '../../contract/tables';
import { type ItemKey, isBase } from '../core/catch-up';
import { PlatformError } from '../core/errors';
import type { DocumentClient } from './dynamodb-wire';
import { backoff } from './retry';

const BATCH_SIZE = 25;

/**
 * Deletes every item of one partition (a tenant's data in one table), or those whose sort key
 * starts with `prefix`, and says how many there were.
 */
export async function deletePartition(db: DocumentClient, tableName: string, pk: string, prefix = ''): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new QueryCommand({
        TableName: tableName,
        // No prefix: the whole partition (DynamoDB refuses an empty string in a key condition).
        KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE_KEY.partitionKey, '#sk': TABLE_KEY.sortKey },
        ExpressionAttributeValues: { ':pk': pk, ...(prefix && { ':prefix': prefix }) },
        ProjectionExpression: '#pk, #sk',
        ExclusiveStartKey: startKey,
      }),
    );
    const keys = page.Items ?? [];
    await batchWrite(
      db,
      tableName,
      keys.map((Key) => ({ DeleteRequest: { Key } })),
    );
    // What a move's copy left beside each item (its base, when the move ended before its catch-up) goes too, uncounted.
    deleted += keys.filter((key) => !isBase(key as ItemKey)).length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}

/** Writes or deletes in batches of 25; DynamoDB may hand back part of a batch under load: that part is retried, with backoff. */
export async function batchWrite(
  db: DocumentClient,
  tableName: string,
  requests: readonly (
    | { DeleteRequest: { Key: Record<string, unknown> } }
    | { PutRequest: { Item: Record<string, unknown> } }
  )[],
): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_SIZE) {
    let batch = requests.slice(i, i + BATCH_SIZE);
    for (let attempt = 0; batch.length > 0; attempt++) {
      if (attempt > 0) await backoff(attempt, 50);
      const result = await db.send(new BatchWriteCommand({ RequestItems: { [tableName]: [...batch] } }));
      batch = (result.UnprocessedItems?.[tableName] ?? []) as typeof batch;
    }
  }
}

/** BATCH_GET_SIZE keys a request, strongly consistent, unprocessed ones asked again with backoff. */
export async function batchGet(
  db: DocumentClient,
  tableName: string,
  keys: readonly { pk: string; sk: string }[],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_SIZE) {
    let pending: Record<string, unknown>[] = keys.slice(i, i + BATCH_GET_SIZE).map(({ pk, sk }) => ({ pk, sk }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await backoff(attempt, 50);
      const answer = await db.send(
        new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } } }),
      );
      items.push(...(answer.Responses?.[tableName] ?? []));
      pending = answer.UnprocessedKeys?.[tableName]?.Keys ?? [];
    }
  }
  return items;
}

/** DynamoDB's most keys in one BatchGetItem. */
const BATCH_GET_SIZE = 100;

/** A page cursor carries only a sort key: the partition always comes from the caller's tenant. */
function encodeCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}

/** Refuses a cursor that is not a sort key under `prefix`, so it cannot point into other items. */
function decodeCursor(cursor: string, prefix: string): string {
  const sortKey = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!sortKey.startsWith(prefix)) throw new PlatformError('invalid_request', 'cursor is not valid');
  return sortKey;
}

/**
 * One page of a tenant partition's items under a sort-key prefix, with an opaque cursor to the
 * next page. Only the sort key travels in the cursor; the partition is always the caller's.
 */
export async function queryPage(
  db: DocumentClient,
  query: {
    tableName: string;
    pk: string;
    /** '' for the whole partition. */
    prefix: string;
    limit: number;
    cursor?: string;
    newestFirst?: boolean;
    /** A filter on non-key attributes, e.g. to skip items past their TTL. */
    filter?: { expression: string; values: Record<string, unknown> };
  },
): Promise<{ items: Record<string, unknown>[]; nextCursor?: string }> {
  const result = await db.send(
    new QueryCommand({
      TableName: query.tableName,
      // No prefix: the whole partition (DynamoDB refuses an empty string in a key condition).
      KeyConditionExpression: query.prefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
      FilterExpression: query.filter?.expression,
      ExpressionAttributeValues: {
        ':pk': query.pk,
        ...(query.prefix && { ':prefix': query.prefix }),
        ...query.filter?.values,
      },
      ScanIndexForward: !query.newestFirst,
      Limit: query.limit,
      ExclusiveStartKey:
        query.cursor === undefined ? undefined : { pk: query.pk, sk: decodeCursor(query.cursor, query.prefix) },
    }),
  );
  const last = result.LastEvaluatedKey?.sk;
  return { items: result.Items ?? [], nextCursor: typeof last === 'string' ? encodeCursor(last) : undefined };
}

/** Every item of a tenant partition under a sort-key prefix, a page at a time. */
export async function queryAll(
  db: DocumentClient,
  query: { tableName: string; pk: string; prefix: string },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = await queryPage(db, { ...query, limit: 100, cursor });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** An item without its table keys (and any other storage-only attributes named). */
export function withoutKeys<T>(item: Record<string, unknown>, ...storageOnly: string[]): T {
  const copy = { ...item };
  for (const name of ['pk', 'sk', ...storageOnly]) delete copy[name];
  return copy as T;
}

/**
 * Whether an item is there and not past its TTL at `nowMs`: DynamoDB deletes expired items lazily,
 * so a read can still find one.
 */
export function liveAt<T extends Record<string, unknown>>(item: T | undefined, nowMs: number): item is T {
  return item !== undefined && Number(item[TTL_ATTRIBUTE]) > nowMs / 1000;
}
