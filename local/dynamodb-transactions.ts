import { createHash } from 'node:crypto';
import { TABLE_KEY } from '../contract/tables';
import type { DynamoDbAnswer, DynamoDbHandler } from './aws-wire';

type AttributeMap = Record<string, { S?: string }>;
interface ItemAction {
  TableName: string;
  Key?: AttributeMap;
  Item?: AttributeMap;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
  UpdateExpression?: string;
}
type TransactItem = { Put?: ItemAction; Update?: ItemAction; Delete?: ItemAction; ConditionCheck?: ItemAction };

/** DynamoDB's limits on one transaction. */
const MAX_TRANSACT_ITEMS = 100;
/** How long DynamoDB remembers a ClientRequestToken. */
const CLIENT_TOKEN_TTL_MS = 10 * 60_000;
const DYNAMODB_ERROR = 'com.amazonaws.dynamodb.v20120810#';

/**
 * `TransactWriteItems`, which dynalite lacks, in front of it: each item's conditional write runs in
 * turn under a lock on every partition the transaction touches (single-item requests take the same
 * locks, so nothing sees half a transaction); when one item's condition fails, the items written
 * before it are restored from the images their writes handed back, and the answer is DynamoDB's
 * `TransactionCanceledException` with one cancellation reason per item. Capacity is reported as
 * DynamoDB charges it: twice the units of each item written. A `ClientRequestToken` seen in the
 * last 10 minutes answers success again without writing, or `IdempotentParameterMismatchException`
 * when the request differs. Everything else passes through to `call` (dynalite).
 */
export function withTransactions(call: DynamoDbHandler): DynamoDbHandler {
  const locks = new PartitionLocks();
  const tokens = new Map<string, { hash: string; atMs: number; applying?: boolean }>();

  const transactWrite = async (request: {
    TransactItems?: TransactItem[];
    ClientRequestToken?: string;
    ReturnConsumedCapacity?: string;
  }): Promise<DynamoDbAnswer> => {
    const items = request.TransactItems ?? [];
    if (items.length === 0 || items.length > MAX_TRANSACT_ITEMS) {
      return validationError(`TransactItems must have between 1 and ${MAX_TRANSACT_ITEMS} items`);
    }
    const actions = items.map(actionOf);
    if (actions.some((action) => !action)) return validationError('each TransactItem needs exactly one action');
    const keys = (actions as Action[]).map((action) => itemKey(action.request));
    if (new Set(keys.map((key) => JSON.stringify(key))).size !== keys.length) {
      return validationError('Transaction request cannot include multiple operations on one item');
    }
    const hash = createHash('sha256').update(JSON.stringify(items)).digest('hex');
    if (request.ClientRequestToken) {
      const now = Date.now();
      // Tokens are kept in the order they came: the expired ones are the first, and the rest are fresh
      // (scanning them all made each transaction cost as much as every other of the last 10 minutes).
      for (const [token, seen] of tokens) {
        if (now - seen.atMs <= CLIENT_TOKEN_TTL_MS) break;
        tokens.delete(token);
      }
      const seen = tokens.get(request.ClientRequestToken);
      if (seen && seen.hash !== hash) {
        return error(
          'IdempotentParameterMismatchException',
          'The request uses the same client token as a previous, but non-identical request.',
        );
      }
      if (seen?.applying)
        return error(
          'TransactionInProgressException',
          'The transaction with the given request token is already in progress.',
        );
      if (seen) return { status: 200, body: {} };
      tokens.set(request.ClientRequestToken, { hash, atMs: Date.now(), applying: true });
    }
    const token = request.ClientRequestToken;
    try {
      const answer = await apply(request, items, actions as Action[], keys);
      // Remembered once it succeeded: a cancelled transaction may be sent again with its token.
      if (token) {
        if (answer.status === 200) tokens.set(token, { hash, atMs: Date.now() });
        else tokens.delete(token);
      }
      return answer;
    } catch (failure) {
      if (token) tokens.delete(token);
      throw failure;
    }
  };

  const apply = (
    request: { ReturnConsumedCapacity?: string },
    items: TransactItem[],
    actions: Action[],
    keys: ReturnType<typeof itemKey>[],
  ): Promise<DynamoDbAnswer> =>
    locks.holding(
      keys.map((key) => `${key.table}/${key.pk}`),
      async () => {
        const written: { index: number; image: AttributeMap | undefined }[] = [];
        const units = new Map<string, number>();
        for (const [index, action] of (actions as Action[]).entries()) {
          // Only a condition check needs the item first; a write hands back what it replaced.
          const image =
            action.kind === 'ConditionCheck'
              ? ((await call('GetItem', { TableName: keys[index].table, Key: keys[index].key, ConsistentRead: true }))
                  .body.Item as AttributeMap | undefined)
              : undefined;
          const answer = await call(...action.write(image));
          if (answer.status === 200) {
            written.push({ index, image: answer.body.Attributes as AttributeMap | undefined });
            const consumed = (answer.body.ConsumedCapacity as { CapacityUnits?: number } | undefined)?.CapacityUnits;
            const table = action.request.TableName;
            if (action.kind !== 'ConditionCheck') units.set(table, (units.get(table) ?? 0) + 2 * (consumed ?? 1));
            continue;
          }
          // Undo what this transaction wrote, newest first, from the images its writes handed back.
          for (const done of written.reverse()) {
            const { table, key } = keys[done.index];
            await (done.image
              ? call('PutItem', { TableName: table, Item: done.image })
              : call('DeleteItem', { TableName: table, Key: key }));
          }
          const failure = String(answer.body.__type ?? '');
          if (!/ConditionalCheckFailed|ValidationException/.test(failure)) return answer;
          const reason = failure.includes('ConditionalCheckFailed')
            ? { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' }
            : { Code: 'ValidationError', Message: String(answer.body.message ?? answer.body.Message ?? '') };
          const reasons = items.map((_, i) => (i === index ? reason : { Code: 'None' }));
          return {
            status: 400,
            body: {
              __type: `${DYNAMODB_ERROR}TransactionCanceledException`,
              message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
              CancellationReasons: reasons,
            },
          };
        }
        const asked = request.ReturnConsumedCapacity !== undefined && request.ReturnConsumedCapacity !== 'NONE';
        return {
          status: 200,
          body: asked
            ? {
                ConsumedCapacity: [...units].map(([TableName, CapacityUnits]) => ({
                  TableName,
                  CapacityUnits,
                  WriteCapacityUnits: CapacityUnits,
                })),
              }
            : {},
        };
      },
    );

  return async (operation, body) => {
    const request = (body ?? {}) as Record<string, unknown>;
    if (operation === 'TransactWriteItems') return transactWrite(request);
    // Single-item and partition requests wait for a transaction on their partition to finish.
    return locks.holding(partitionsOf(operation, request), () => call(operation, request));
  };
}

interface Action {
  kind: keyof TransactItem;
  request: ItemAction;
  /** The single-item write that applies this action, given the item's image before the transaction. */
  write(image: AttributeMap | undefined): [string, unknown];
}

function actionOf(item: TransactItem): Action | undefined {
  const kinds = (Object.keys(item) as (keyof TransactItem)[]).filter((kind) => item[kind]);
  if (kinds.length !== 1) return undefined;
  const kind = kinds[0];
  const request = item[kind] as ItemAction;
  const asWrite = { ...request, ReturnConsumedCapacity: 'TOTAL', ReturnValues: 'ALL_OLD' };
  const write = (image: AttributeMap | undefined): [string, unknown] => {
    switch (kind) {
      case 'Put':
        return ['PutItem', asWrite];
      case 'Update':
        return ['UpdateItem', asWrite];
      case 'Delete':
        return ['DeleteItem', asWrite];
      case 'ConditionCheck': {
        // A write that changes nothing, under the same condition: the item put back as it was, or
        // a delete of the item that is not there.
        const { Key, UpdateExpression: _none, ...rest } = asWrite;
        return image ? ['PutItem', { ...rest, Item: image }] : ['DeleteItem', { ...rest, Key }];
      }
    }
  };
  return { kind, request, write };
}

function itemKey(request: ItemAction): { table: string; pk: string; key: AttributeMap } {
  const source = request.Key ?? request.Item ?? {};
  const key = {
    [TABLE_KEY.partitionKey]: source[TABLE_KEY.partitionKey],
    [TABLE_KEY.sortKey]: source[TABLE_KEY.sortKey],
  };
  return { table: request.TableName, pk: String(source[TABLE_KEY.partitionKey]?.S), key };
}

/** `table/pk` partitions a non-transactional request touches, as far as a transaction could overlap it. */
function partitionsOf(operation: string, body: Record<string, unknown>): string[] {
  const table = String(body.TableName ?? '');
  const pkOf = (item: unknown) => String((item as AttributeMap | undefined)?.[TABLE_KEY.partitionKey]?.S);
  switch (operation) {
    case 'GetItem':
    case 'UpdateItem':
    case 'DeleteItem':
      return [`${table}/${pkOf(body.Key)}`];
    case 'PutItem':
      return [`${table}/${pkOf(body.Item)}`];
    case 'BatchWriteItem':
      return Object.entries(
        (body.RequestItems ?? {}) as Record<
          string,
          { PutRequest?: { Item: unknown }; DeleteRequest?: { Key: unknown } }[]
        >,
      ).flatMap(([name, requests]) =>
        requests.map((r) => `${name}/${pkOf(r.PutRequest?.Item ?? r.DeleteRequest?.Key)}`),
      );
    default:
      return [];
  }
}

/**
 * One lock per partition, taken in a fixed order so two transactions never wait on each other.
 * A request holds its partitions' locks while it runs; others on the same partitions queue behind.
 */
class PartitionLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async holding<T>(partitions: readonly string[], work: () => Promise<T>): Promise<T> {
    const ordered = [...new Set(partitions)].sort();
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waits = ordered.map((partition) => {
      const previous = this.tails.get(partition) ?? Promise.resolve();
      const mine = previous.then(() => done);
      this.tails.set(partition, mine);
      void mine.then(() => {
        if (this.tails.get(partition) === mine) this.tails.delete(partition);
      });
      return previous;
    });
    await Promise.all(waits);
    try {
      return await work();
    } finally {
      release();
    }
  }
}

function validationError(message: string): DynamoDbAnswer {
  return { status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException', message } };
}

function error(type: string, message: string): DynamoDbAnswer {
  return { status: 400, body: { __type: `${DYNAMODB_ERROR}${type}`, message } };
}
