import { startLocalDynamoDb } from '../../local/dynamodb-server';

/** The in-process local DynamoDB's edges: a body that is not JSON, and a call after close. */
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

test('answers a body that is not JSON with SerializationException, as DynamoDB does', async () => {
  const db = await startLocalDynamoDb({ tables: [{ name: 'things' }], credentials });
  try {
    const answer = await fetch(db.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'DynamoDB_20120810.GetItem', 'content-type': 'application/x-amz-json-1.0' },
      body: '{"TableName": "things",',
    });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({ __type: 'com.amazon.coral.service#SerializationException' });
  } finally {
    await db.close();
  }
});

test('answers a call after close as DynamoDB unreachable, neither left hanging nor thrown uncaught', async () => {
  const db = await startLocalDynamoDb({ tables: [{ name: 'closing' }], credentials });
  await db.close();
  await expect(
    db.handle('GetItem', { TableName: 'closing', Key: { pk: { S: 'x' }, sk: { S: 'y' } } }),
  ).resolves.toMatchObject({ status: 500, body: { message: 'local DynamoDB is closed' } });
});
