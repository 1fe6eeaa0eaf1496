import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe('TransactWriteItems on the local DynamoDB (the layer in front of dynalite)', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;

  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'things' }], credentials });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials, maxAttempts: 1 }),
    );
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  const get = async (pk: string, sk: string) =>
    (await db.send(new GetCommand({ TableName: 'things', Key: { pk, sk }, ConsistentRead: true }))).Item;
  const counterAndMarker = (pk: string, marker: string, token?: string) =>
    new TransactWriteCommand({
      ClientRequestToken: token,
      ReturnConsumedCapacity: 'TOTAL',
      TransactItems: [
        {
          Update: {
            TableName: 'things',
            Key: { pk, sk: 'counter' },
            UpdateExpression: 'ADD n :one',
            ConditionExpression: 'attribute_not_exists(n) OR n < :max',
            ExpressionAttributeValues: { ':one': 1, ':max': 2 },
          },
        },
        {
          Put: {
            TableName: 'things',
            Item: { pk, sk: `marker#${marker}` },
            ConditionExpression: 'attribute_not_exists(sk)',
          },
        },
      ],
    });

  it('writes every item, and charges twice the units of each', async () => {
    const answer = await db.send(counterAndMarker('all', 'a'));
    expect(await get('all', 'counter')).toMatchObject({ n: 1 });
    expect(await get('all', 'marker#a')).toBeDefined();
    expect(answer.ConsumedCapacity).toEqual([{ TableName: 'things', CapacityUnits: 4, WriteCapacityUnits: 4 }]);
  });

  it('writes nothing when one condition fails, and names it among the cancellation reasons', async () => {
    // GIVEN a marker that already exists
    await db.send(counterAndMarker('none', 'taken'));
    // WHEN a transaction that raises the counter would put it again
    const failure = await db.send(counterAndMarker('none', 'taken')).catch((error: unknown) => error);
    // THEN it is cancelled on the second item, and the first item's write was undone
    expect(failure).toBeInstanceOf(TransactionCanceledException);
    expect((failure as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
    ]);
    expect(await get('none', 'counter')).toMatchObject({ n: 1 });
  });

  it('answers a repeated client token without writing again, and refuses it for a different request', async () => {
    await db.send(counterAndMarker('token', 'x', 'token-1'));
    await db.send(counterAndMarker('token', 'x', 'token-1'));
    expect(await get('token', 'counter')).toMatchObject({ n: 1 });
    await expect(db.send(counterAndMarker('token', 'y', 'token-1'))).rejects.toMatchObject({
      name: 'IdempotentParameterMismatchException',
    });
  });

  it('lets concurrent transactions on one partition see each other whole: no lost update, no over-count', async () => {
    // GIVEN a counter that allows two; WHEN ten transactions race for it
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => db.send(counterAndMarker('race', `m${i}`))),
    );
    // THEN exactly two got through, and exactly their markers exist
    const admitted = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
    expect(admitted).toHaveLength(2);
    expect(await get('race', 'counter')).toMatchObject({ n: 2 });
    for (let i = 0; i < 10; i++) expect(Boolean(await get('race', `marker#m${i}`))).toBe(admitted.includes(i));
  });
});
