import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { PartitionCapacity } from '../../local/partition-capacity';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

describe('PartitionCapacity (DynamoDB per-partition-key throughput)', () => {
  it('throttles a key at its units this second, not another key, and not the next second', () => {
    let now = 10_000;
    const capacity = new PartitionCapacity({ writeUnitsPerSecond: 1000, readUnitsPerSecond: 3000 }, () => now);
    capacity.record(['ledger/TENANT#a'], 'write', 999);
    expect(capacity.exceeded(['ledger/TENANT#a'], 'write')).toBe(false);
    capacity.record(['ledger/TENANT#a'], 'write', 1);
    expect(capacity.exceeded(['ledger/TENANT#a'], 'write')).toBe(true);
    expect(capacity.exceeded(['ledger/TENANT#a'], 'read')).toBe(false);
    expect(capacity.exceeded(['ledger/TENANT#b'], 'write')).toBe(false);
    now += 1000;
    expect(capacity.exceeded(['ledger/TENANT#a'], 'write')).toBe(false);
    expect(capacity.totals.get('ledger/TENANT#a')).toEqual({ readUnits: 0, writeUnits: 1000 });
  });
});

describe('the local DynamoDB front enforces per-partition limits and counts consumed capacity', () => {
  // Frozen between steps: per-second windows must not turn over between two requests.
  const clock = new ManualClock(Date.parse('2026-11-25T12:00:00Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, {
      now: clock.now,
      partitionLimits: { writeUnitsPerSecond: 3, readUnitsPerSecond: 3000 },
    });
  });
  afterAll(() => platform.close());

  it('counts write units by item size, as DynamoDB does: one per KB, the larger of before and after', async () => {
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: platform.endpoints.dynamodb,
        credentials: platform.credentials,
        // One attempt: the throttle is seen as DynamoDB sends it, not retried away.
        maxAttempts: 1,
      }),
    );
    const key = 'tenants/TENANT#capacity-probe';
    await db.send(
      new PutCommand({
        TableName: 'tenants',
        Item: { pk: 'TENANT#capacity-probe', sk: 'BIG', blob: 'x'.repeat(2500) },
      }),
    );
    expect(platform.dynamodbCapacity.totals.get(key)?.writeUnits).toBe(3);
    // a fourth write unit on that key in the same second: throttled with DynamoDB's error, nothing written
    const throttled = await db
      .send(
        new UpdateCommand({
          TableName: 'tenants',
          Key: { pk: 'TENANT#capacity-probe', sk: 'BIG' },
          UpdateExpression: 'SET n = :n',
          ExpressionAttributeValues: { ':n': 1 },
        }),
      )
      .catch((error: Error) => error);
    expect(throttled).toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    clock.advance(1000);
    await db.send(
      new UpdateCommand({
        TableName: 'tenants',
        Key: { pk: 'TENANT#capacity-probe', sk: 'BIG' },
        UpdateExpression: 'SET n = :n',
        ExpressionAttributeValues: { ':n': 1 },
      }),
    );
    expect(platform.dynamodbCapacity.totals.get(key)?.writeUnits).toBe(6);
  });
});

describe("a metered chat's ledger writes, as the front counts them", () => {
  const clock = new ManualClock(Date.parse('2026-11-25T12:00:00Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
  });
  afterAll(() => platform.close());

  it("puts three write units on the tenant's ledger key per call, the first of the month five more for its lease", async () => {
    const { apiKey } = await onboard(platform, 'units-co');
    const units = () => platform.dynamodbCapacity.totals.get('ledger/TENANT#units-co')?.writeUnits ?? 0;
    const chat = async () => {
      const before = units();
      const answer = await call(platform, 'POST', '/v1/chat/completions', {
        credential: apiKey,
        body: { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }] },
      });
      expect(answer.status).toBe(200);
      return units() - before;
    };
    // the first: a reserve refused (no lease yet: still a unit), the lease (grant and shard item, in a
    // transaction: two units each); then every call: the reserve, one update of the shard item (1), and
    // the settle, a transaction of that item alone (2); every item under 1 KB
    expect(await chat()).toBe(1 + 4 + 1 + 2);
    expect(await chat()).toBe(1 + 2);
    expect(await chat()).toBe(1 + 2);
  });
});
