import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbLedger } from '../../lambdas/adapters/dynamodb-ledger';
import { startLocalDynamoDb } from '../../local/dynamodb-server';
import { ledgerState } from '../support/ledger';
import { tenantContext } from '../support/tenant';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const now = Date.UTC(2026, 10, 24, 12, 0, 10);

/**
 * A reserve whose write landed but whose answer was lost (a timeout), in the admission loop's last
 * round: every retry is then refused by the room that write took on the shard, and DynamoDB's
 * cancellation reasons need not name the reservation item. Seen under load (a leftover reservation
 * beside a 429). The request must be admitted, never told to retry while its reservation is held.
 */
describe('a reserve whose answer was lost in the last admission round', () => {
  it('is admitted on the record its own write left, not refused while holding it', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }], credentials });
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    let reads = 0;
    let landed = false;
    const shardFull = () =>
      Object.assign(new Error('cancelled'), {
        name: 'TransactionCanceledException',
        CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
      });
    // Each admission round reads the state once (BatchGetItem): in the last round (the 6th) the
    // reserve lands and its answer times out; every other try of it is refused on the shard.
    const lossy = {
      send: async (command: unknown) => {
        if (command instanceof BatchGetCommand) reads++;
        if (command instanceof TransactWriteCommand && JSON.stringify(command.input).includes('"R#victim"')) {
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
      expect((await ledgerState(db, 'victim-tenant')).inFlight).toEqual(['victim']);
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
describe('a settle that meets conflicts for longer than a reserve would wait', () => {
  it('keeps trying and settles the call once', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'ledger' }], credentials });
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    let conflicts = 0;
    const contended = {
      send: async (command: unknown) => {
        const settling = command instanceof TransactWriteCommand && JSON.stringify(command.input).includes('"Delete"');
        if (settling && conflicts < 6) {
          conflicts++;
          throw Object.assign(new Error('cancelled'), {
            name: 'TransactionCanceledException',
            CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }],
          });
        }
        return db.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    try {
      const ledger = new DynamoDbLedger(() => contended, 'ledger', { reservationTtlMs: 300_000 });
      const tenant = tenantContext('hot-tenant', { requestsPerMinute: 10 });
      const reservation = await ledger.reserve(tenant, {
        requestId: 'answered',
        model: 'm',
        estimate: { tokens: 100, costNanoUsd: 0 },
        nowMs: now,
      });
      await ledger.settle(reservation, { inputTokens: 10, outputTokens: 20, costNanoUsd: 0 });
      expect(conflicts).toBe(6);
      const state = await ledgerState(db, 'hot-tenant');
      expect({ tok: state.tok, inFlight: state.inFlight }).toEqual({ tok: 30, inFlight: [] });
    } finally {
      db.destroy();
      await dynamodb.close();
    }
  });
});
