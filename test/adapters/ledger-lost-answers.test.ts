import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbLedger } from '../../lambdas/adapters/dynamodb-ledger';
import { startLocalDynamoDb } from '../../local/dynamodb-server';
import { ledgerState } from '../support/ledger';
import { tenantContext } from '../support/tenant';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const now = Date.UTC(2026, 10, 24, 12, 0, 10);

/**
 * A reserve whose write landed but whose answer was lost (a timeout), in the admission loop's last
 * round: every retry is then refused by the room that write took on the shard (and by its own mark,
 * the shard's last reserve). Seen under load (a leftover reservation beside a 429). The request must
 * be admitted, never told to retry while its reservation is held.
 */
describe('a reserve whose answer was lost in the last admission round', () => {
  it('is admitted on the hold its own write left, not refused while holding it', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }], credentials });
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    let reads = 0;
    let landed = false;
    const shardFull = () => Object.assign(new Error('refused'), { name: 'ConditionalCheckFailedException' });
    // Each admission round reads the state once (BatchGetItem): in the last round (the 6th) the
    // reserve lands and its answer times out; every other try of it is refused on the shard.
    const lossy = {
      send: async (command: unknown) => {
        if (command instanceof BatchGetCommand) reads++;
        if (command instanceof UpdateCommand && command.input.ExpressionAttributeValues?.[':rid']) {
          if (reads === 6 && !landed) {
            landed = true;
            await db.send(command);
            throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
          }
          throw shardFull();
        }
        return db.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    try {
      const ledger = new DynamoDbLedger(() => lossy, 'ledger', { reservationTtlMs: 300_000 });
      const tenant = tenantContext('victim-tenant', { requestsPerMinute: 10 });
      const reservation = await ledger.reserve(tenant, {
        requestId: 'victim',
        model: 'm',
        estimate: { tokens: 100, costNanoUsd: 0 },
        nowMs: now,
      });
      expect(landed).toBe(true);
      expect(reservation).toMatchObject({ requestId: 'victim', tenantId: 'victim-tenant' });
      expect(reservation.epoch).toBeDefined();
      expect(await ledgerState(db, 'victim-tenant')).toMatchObject({ held: 1, rr: 1, tok: 100 });
    } finally {
      db.destroy();
      await dynamodb.close();
    }
  });
});

/**
 * A settle comes after the model answered. Concurrent settles of a hot tenant conflict on its shard item;
 * one that gave up as soon as a reserve does would answer 503 for a call that may be billed already, and
 * the client's retry would pay for it twice.
 */
describe('a settle that meets conflicts or loses its answer', () => {
  const settleOf = (command: unknown) =>
    command instanceof TransactWriteCommand && JSON.stringify(command.input).includes('":lt"');

  async function settledThrough(wrap: (db: DynamoDBDocumentClient) => DynamoDBDocumentClient) {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }], credentials });
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    try {
      const ledger = new DynamoDbLedger(() => wrap(db), 'ledger', { reservationTtlMs: 300_000 });
      const tenant = tenantContext('hot-tenant', { requestsPerMinute: 10 });
      const reservation = await ledger.reserve(tenant, {
        requestId: 'answered',
        model: 'm',
        estimate: { tokens: 100, costNanoUsd: 0 },
        nowMs: now,
      });
      await ledger.settle(reservation, { inputTokens: 10, outputTokens: 20, costNanoUsd: 0 });
      const state = await ledgerState(db, 'hot-tenant');
      return {
        state: { tok: state.tok, held: state.held },
        usage: await ledger.usage(tenant, { from: '2026-11-24', to: '2026-11-24' }),
      };
    } finally {
      db.destroy();
      await dynamodb.close();
    }
  }

  it('keeps trying through conflicts, a new client token each try, and settles the call once', async () => {
    const tokens: string[] = [];
    const { state, usage } = await settledThrough(
      (db) =>
        ({
          send: async (command: unknown) => {
            if (settleOf(command) && tokens.length < 6) {
              tokens.push(String((command as TransactWriteCommand).input.ClientRequestToken));
              throw Object.assign(new Error('cancelled'), {
                name: 'TransactionCanceledException',
                CancellationReasons: [{ Code: 'TransactionConflict' }],
              });
            }
            return db.send(command as never);
          },
        }) as unknown as DynamoDBDocumentClient,
    );
    expect(new Set(tokens).size).toBe(6);
    expect(state).toEqual({ tok: 30, held: 0 });
    expect(usage).toMatchObject([{ requests: 1, inputTokens: 10, outputTokens: 20 }]);
  });

  it('is answered success, unapplied, when retried with its token after its answer was lost', async () => {
    let lost = 0;
    const { state, usage } = await settledThrough(
      (db) =>
        ({
          send: async (command: unknown) => {
            if (settleOf(command) && lost === 0) {
              lost++;
              await db.send(command as never);
              throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
            }
            return db.send(command as never);
          },
        }) as unknown as DynamoDBDocumentClient,
    );
    expect(lost).toBe(1);
    expect(state).toEqual({ tok: 30, held: 0 });
    expect(usage).toMatchObject([{ requests: 1, inputTokens: 10, outputTokens: 20 }]);
  });
});
