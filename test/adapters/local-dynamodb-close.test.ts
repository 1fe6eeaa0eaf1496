import { startLocalDynamoDb } from '../../local/dynamodb-server';

/** The in-process local DynamoDB, called after close (a front request in flight while the platform closes). */
test('answers a call after close as DynamoDB unreachable, neither left hanging nor thrown uncaught', async () => {
  const db = await startLocalDynamoDb({
    tables: [{ name: 'closing' }],
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
  });
  await db.close();
  await expect(
    db.handle('GetItem', { TableName: 'closing', Key: { pk: { S: 'x' }, sk: { S: 'y' } } }),
  ).resolves.toMatchObject({ status: 500, body: { message: 'local DynamoDB is closed' } });
});
