import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { TABLE_KEY } from '../contract/tables';
import { startTransactionLayer } from './dynamodb-transactions';

export interface LocalDynamoDb {
  readonly endpoint: string;
  close(): Promise<void>;
}

export interface LocalTable {
  readonly name: string;
  /** Local secondary indexes: same partition key, this string attribute as sort key. */
  readonly indexes?: readonly { readonly indexName: string; readonly sortKey: string }[];
}

/**
 * dynalite, in-process: the DynamoDB protocol for the real SDK, with transactions added in front
 * of it (see dynamodb-transactions.ts). With `path` it persists to disk (LevelDB); without, it
 * keeps everything in memory. Creates the platform's tables if missing.
 */
export async function startLocalDynamoDb(options: {
  path?: string;
  tables: readonly LocalTable[];
  credentials: { accessKeyId: string; secretAccessKey: string };
}): Promise<LocalDynamoDb> {
  const server: Server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path && { path: options.path }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const transactions = await startTransactionLayer(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const { endpoint } = transactions;
  const client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials: options.credentials });
  for (const table of options.tables) {
    const indexes = table.indexes ?? [];
    try {
      await client.send(
        new CreateTableCommand({
          TableName: table.name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [TABLE_KEY.partitionKey, TABLE_KEY.sortKey, ...indexes.map((i) => i.sortKey)].map(
            (AttributeName) => ({
              AttributeName,
              AttributeType: 'S',
            }),
          ),
          KeySchema: [
            { AttributeName: TABLE_KEY.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE_KEY.sortKey, KeyType: 'RANGE' },
          ],
          LocalSecondaryIndexes:
            indexes.length === 0
              ? undefined
              : indexes.map((index) => ({
                  IndexName: index.indexName,
                  KeySchema: [
                    { AttributeName: TABLE_KEY.partitionKey, KeyType: 'HASH' },
                    { AttributeName: index.sortKey, KeyType: 'RANGE' },
                  ],
                  Projection: { ProjectionType: 'ALL' },
                })),
        }),
      );
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  client.destroy();
  return {
    endpoint,
    close: async () => {
      await transactions.close();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
