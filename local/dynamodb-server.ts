import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import dynalite, { type DynaliteOptions } from 'dynalite';
import dynaliteDb from 'dynalite/db';
import { TABLE_KEY } from '../contract/tables';
import { parseJson } from '../lambdas/core/json';
import { type DynamoDbHandler, failAsDynamoDb, localServer, readBody, sendDynamoDbAnswer } from './aws-wire';
import { withTransactions } from './dynamodb-transactions';

export interface LocalDynamoDb {
  /** An HTTP server for the SDK, answering with `handle`. */
  readonly endpoint: string;
  /** The same DynamoDB, transactions included, called in-process (what the front forwards to). */
  readonly handle: DynamoDbHandler;
  close(): Promise<void>;
}

/** dynalite wants a SigV4-shaped header; it does not check the signature. */
const DYNALITE_AUTH = {
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
  'x-amz-date': '20260101T000000Z',
};

export interface LocalTable {
  readonly name: string;
  /** Local secondary indexes: same partition key, this string attribute as sort key. */
  readonly indexes?: readonly { readonly indexName: string; readonly sortKey: string }[];
}

/**
 * dynalite, in-process: the DynamoDB protocol for the real SDK, with transactions added in front
 * of it (see dynamodb-transactions.ts), served over HTTP at `endpoint` and callable as `handle`.
 * With `path` it persists to disk (LevelDB); without, it keeps everything in memory. Creates the
 * platform's tables if missing.
 */
export async function startLocalDynamoDb(options: {
  path?: string;
  tables: readonly LocalTable[];
  credentials: { accessKeyId: string; secretAccessKey: string };
}): Promise<LocalDynamoDb> {
  const store = inProcessDynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path && { path: options.path }),
  });
  const handle = withTransactions(store.call);
  const server = localServer(async (request, response) => {
    const raw = await readBody(request);
    const operation = String(request.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const body = parseJson(raw.toString('utf8'));
    // As DynamoDB answers a body that is not JSON.
    if (body === undefined) {
      return sendDynamoDbAnswer(response, {
        status: 400,
        body: { __type: 'com.amazon.coral.service#SerializationException' },
      });
    }
    sendDynamoDbAnswer(response, await handle(operation, body));
  }, failAsDynamoDb);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
    handle,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
      await store.close();
    },
  };
}

/**
 * dynalite without its HTTP server: its request listener is called with the least of a request and
 * a response that its `httpHandler` reads and writes (the request's method, url, headers and
 * 'data'/'end' events; the response's `statusCode`, `setHeader` and `end(body)`).
 */
function inProcessDynalite(options: DynaliteOptions): { call: DynamoDbHandler; close(): Promise<void> } {
  // dynalite's `server.close` closes its store only after the server listened (else it fails with
  // ERR_SERVER_NOT_RUNNING and the LevelDB stays locked): keep the store it creates to close it here.
  const { create } = dynaliteDb;
  const created: { store?: ReturnType<typeof create> } = {};
  dynaliteDb.create = (storeOptions) => {
    created.store = create(storeOptions);
    return created.store;
  };
  let server: Server;
  try {
    server = dynalite(options);
  } finally {
    dynaliteDb.create = create;
  }
  const { store } = created;
  if (!store) throw new Error('dynalite created no store');
  const listener = server.listeners('request')[0] as RequestListener;
  // A call after close would find the store closed, and dynalite throws that from a callback, out of
  // reach: refused here instead, as DynamoDB unreachable; close waits for the calls under way.
  let closed = false;
  const running = new Set<Promise<unknown>>();
  const call: DynamoDbHandler = (operation, body) => {
    if (closed) {
      return Promise.resolve({
        status: 500,
        body: { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'local DynamoDB is closed' },
      });
    }
    const answer = callDynalite(operation, body);
    running.add(answer);
    return answer.finally(() => running.delete(answer));
  };
  const callDynalite: DynamoDbHandler = (operation, body) =>
    new Promise((resolve, reject) => {
      const request = Object.assign(new EventEmitter(), {
        method: 'POST',
        url: '/',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${operation}`,
          ...DYNALITE_AUTH,
        },
      });
      const response = {
        statusCode: 200,
        setHeader: () => {},
        end: (text = '') =>
          resolve({ status: response.statusCode, body: (parseJson(text) ?? {}) as Record<string, unknown> }),
      };
      try {
        listener(request as unknown as IncomingMessage, response as unknown as ServerResponse);
        request.emit('data', Buffer.from(JSON.stringify(body)));
        request.emit('end');
      } catch (error) {
        reject(error);
      }
    });
  return {
    call,
    close: async () => {
      closed = true;
      await Promise.allSettled(running);
      await store.lifecycleManager.gracefulClose();
    },
  };
}
