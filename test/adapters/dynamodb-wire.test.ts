import { createServer, Agent as HttpAgent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { isConditionalCheckFailure } from '../../lambdas/adapters/dynamodb-errors';
import { DynamoDbWire } from '../../lambdas/adapters/dynamodb-wire';
import { awsError, serviceEndpoint } from '../../lambdas/adapters/signed-json';
import type { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import { tenantScopedDynamoDb } from '../../lambdas/adapters/tenant-scoped-dynamodb';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';

/**
 * The lean DynamoDB client the hot path signs and sends with, against dynalite: the document
 * client's commands as the adapters build them, their answers in the document client's shape,
 * DynamoDB's errors by name (cancellation reasons kept), and a bounded wait that becomes a retry.
 */
const credentials = async () => ({ accessKeyId: 'test', secretAccessKey: 'test', sessionToken: 'session' });

describe('DynamoDbWire', () => {
  let dynamodb: LocalDynamoDb;
  let wire: DynamoDbWire;
  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'items' }], credentials: await credentials() });
    wire = new DynamoDbWire({
      region: 'us-east-1',
      endpoint: dynamodb.endpoint,
      credentials,
      connectionTimeoutMs: 1000,
      requestTimeoutMs: 3000,
      maxAttempts: 3,
    });
  });
  afterAll(() => dynamodb.close());

  it('puts, updates, gets and queries items of every attribute type, in the document client’s shape', async () => {
    const item = {
      pk: 'TENANT#a',
      sk: 'ITEM#1',
      n: 42,
      big: 2 ** 40,
      s: 'text',
      flag: true,
      nothing: null,
      list: [1, 'two', { three: 3 }],
      map: { nested: { deep: 'yes' } },
      tags: new Set(['x', 'y']),
      dropped: undefined,
    };
    await wire.send(new PutCommand({ TableName: 'items', Item: item }));
    await wire.send(
      new UpdateCommand({
        TableName: 'items',
        Key: { pk: 'TENANT#a', sk: 'ITEM#1' },
        UpdateExpression: 'ADD n :one SET #m.added = :v',
        ExpressionAttributeNames: { '#m': 'map' },
        ExpressionAttributeValues: { ':one': 1, ':v': [5] },
      }),
    );
    const { dropped: _, ...stored } = item;
    const got = await wire.send(new GetCommand({ TableName: 'items', Key: { pk: 'TENANT#a', sk: 'ITEM#1' } }));
    expect(got.Item).toEqual({ ...stored, n: 43, map: { nested: { deep: 'yes' }, added: [5] } });
    await wire.send(new PutCommand({ TableName: 'items', Item: { pk: 'TENANT#a', sk: 'ITEM#2' } }));
    const page = await wire.send(
      new QueryCommand({
        TableName: 'items',
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'TENANT#a' },
        Limit: 1,
      }),
    );
    expect(page.Items?.map((i) => i.sk)).toEqual(['ITEM#1']);
    expect(page.LastEvaluatedKey).toEqual({ pk: 'TENANT#a', sk: 'ITEM#1' });
  });

  it('throws DynamoDB’s errors by name, a cancelled transaction with its reasons', async () => {
    const put = new PutCommand({
      TableName: 'items',
      Item: { pk: 'TENANT#b', sk: 'ONCE' },
      ConditionExpression: 'attribute_not_exists(sk)',
    });
    await wire.send(put);
    const refused = await wire.send(put).catch((error: unknown) => error);
    expect(isConditionalCheckFailure(refused)).toBe(true);
    const cancelled = (await wire
      .send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: 'items', Item: { pk: 'TENANT#b', sk: 'OTHER' } } },
            {
              Delete: {
                TableName: 'items',
                Key: { pk: 'TENANT#b', sk: 'MISSING' },
                ConditionExpression: 'attribute_exists(sk)',
              },
            },
          ],
        }),
      )
      .catch((error: unknown) => error)) as { name: string; CancellationReasons: { Code: string }[] };
    expect(cancelled.name).toBe('TransactionCanceledException');
    expect(cancelled.CancellationReasons.map((reason) => reason.Code)).toEqual(['None', 'ConditionalCheckFailed']);
    const missing = await wire
      .send(new DeleteCommand({ TableName: 'no-such-table', Key: { pk: 'x', sk: 'y' } }))
      .catch((error: unknown) => error);
    expect(missing).toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
  });

  it('reaches an http endpoint the environment names (AWS_ENDPOINT_URL_DYNAMODB), as the tenants’ clients are built', async () => {
    const previous = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamodb.endpoint;
    try {
      const sessions = { credentialsFor: credentials } as unknown as StsTenantCredentials;
      const scoped = tenantScopedDynamoDb({ region: 'us-east-1' }, sessions);
      const got = await scoped('a').send(new GetCommand({ TableName: 'items', Key: { pk: 'TENANT#a', sk: 'ITEM#2' } }));
      expect(got.Item).toEqual({ pk: 'TENANT#a', sk: 'ITEM#2' });
      // a wire built without an endpoint takes the same one (its default is the SDK's resolution)
      const bare = new DynamoDbWire({
        region: 'us-east-1',
        credentials,
        connectionTimeoutMs: 1000,
        requestTimeoutMs: 3000,
        maxAttempts: 1,
      });
      const again = await bare.send(new GetCommand({ TableName: 'items', Key: { pk: 'TENANT#a', sk: 'ITEM#2' } }));
      expect(again.Item).toEqual({ pk: 'TENANT#a', sk: 'ITEM#2' });
    } finally {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = previous;
    }
  });

  it('gives up on a server that never answers after its request timeout, each try, as a TimeoutError', async () => {
    let requests = 0;
    const silent: Server = createServer(() => void requests++);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const stuck = new DynamoDbWire({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        credentials,
        connectionTimeoutMs: 1000,
        requestTimeoutMs: 50,
        maxAttempts: 2,
      });
      const failure = await stuck
        .send(new GetCommand({ TableName: 'items', Key: { pk: 'a', sk: 'b' } }))
        .catch((error: unknown) => error);
      expect(failure).toMatchObject({ name: 'TimeoutError' });
      expect(requests).toBe(2);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

/** A server answering each request as `answer` says (`n` counts from 1), keeping the bodies it was sent. */
async function scripted(answer: (n: number, request: IncomingMessage, response: ServerResponse) => void) {
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      answer(bodies.length, request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    bodies,
    wire: new DynamoDbWire({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials,
      connectionTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      maxAttempts: 3,
    }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('DynamoDbWire against what a network answers', () => {
  it('tries again after a 503 whose body is not JSON (a proxy’s HTML page), as the SDK does', async () => {
    const server = await scripted((n, _request, response) => {
      if (n === 1) {
        response.writeHead(503, { 'content-type': 'text/html' });
        response.end('<html><body>503 Service Temporarily Unavailable</body></html>');
      } else {
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        response.end(JSON.stringify({ Item: { pk: { S: 'a' }, sk: { S: 'b' } } }));
      }
    });
    try {
      const got = await server.wire.send(new GetCommand({ TableName: 'items', Key: { pk: 'a', sk: 'b' } }));
      expect(got.Item).toEqual({ pk: 'a', sk: 'b' });
      expect(server.bodies).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('marshals an item as the document client does, refusing the numbers it refuses', async () => {
    const server = await scripted((_n, _request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end('{}');
    });
    const item = {
      pk: 'a',
      empty: '',
      n: Number.MAX_SAFE_INTEGER,
      negative: -Number.MAX_SAFE_INTEGER,
      fraction: 0.1 + 0.2,
      zero: -0,
      yes: true,
      nothing: null,
      big: 10n ** 20n,
      list: [1, 'two', undefined],
      map: { nested: 2 ** 60 / 2 ** 60 },
      tags: new Set(['x']),
      dropped: undefined,
    };
    try {
      await server.wire.send(new PutCommand({ TableName: 'items', Item: item }));
      const expected = marshall(item, { removeUndefinedValues: true });
      expect(JSON.parse(server.bodies[0]).Item).toEqual(JSON.parse(JSON.stringify(expected)));
      for (const refused of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -(2 ** 53)]) {
        let sdkError = '';
        try {
          marshall({ refused }, { removeUndefinedValues: true });
        } catch (error) {
          sdkError = (error as Error).message;
        }
        expect(sdkError).not.toBe('');
        await expect(
          server.wire.send(new PutCommand({ TableName: 'items', Item: { pk: 'a', refused } })),
        ).rejects.toThrow(sdkError);
      }
      expect(server.bodies).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('tries again when the endpoint’s name does not resolve for a moment (EAI_AGAIN), as the SDK does', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'items' }], credentials: await credentials() });
    const port = new URL(dynamodb.endpoint).port;
    let lookups = 0;
    // Lambda's resolver under load: the first lookup fails transiently, the next one answers.
    const agent = new HttpAgent({
      keepAlive: true,
      lookup: ((_host: string, options: { all?: boolean }, done: (...args: unknown[]) => void) => {
        if (++lookups === 1) done(Object.assign(new Error('getaddrinfo EAI_AGAIN dynamodb'), { code: 'EAI_AGAIN' }));
        else if (options.all) done(null, [{ address: '127.0.0.1', family: 4 }]);
        else done(null, '127.0.0.1', 4);
      }) as never,
    });
    try {
      const wire = new DynamoDbWire({
        region: 'us-east-1',
        endpoint: `http://dynamodb.local.test:${port}`,
        credentials,
        connectionTimeoutMs: 1000,
        requestTimeoutMs: 1000,
        maxAttempts: 3,
        agent,
      });
      const got = await wire.send(new GetCommand({ TableName: 'items', Key: { pk: 'a', sk: 'b' } }));
      expect(got.Item).toBeUndefined();
      expect(lookups).toBe(2);
    } finally {
      agent.destroy();
      await dynamodb.close();
    }
  });

  it('tries a transaction whose answer was lost with the same ClientRequestToken, so its own write answers success', async () => {
    const dynamodb = await startLocalDynamoDb({ tables: [{ name: 'items' }], credentials: await credentials() });
    // In front of DynamoDB: the first transaction lands, and its answer is lost (the connection drops).
    let transactions = 0;
    const lossy = await scripted((_n, request, response) => {
      const body = lossy.bodies[lossy.bodies.length - 1];
      const lose = request.headers['x-amz-target'] === 'DynamoDB_20120810.TransactWriteItems' && ++transactions === 1;
      void fetch(dynamodb.endpoint, {
        method: 'POST',
        headers: request.headers as Record<string, string>,
        body,
      }).then(async (answer) => {
        if (lose) {
          request.socket.destroy();
          return;
        }
        response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
        response.end(await answer.text());
      });
    });
    try {
      await lossy.wire.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: 'items',
                Item: { pk: 'TENANT#c', sk: 'PROMPT#p' },
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ],
        }),
      );
      expect(transactions).toBe(2);
      const tokens = lossy.bodies.map((body) => JSON.parse(body).ClientRequestToken);
      expect(tokens[0]).toEqual(expect.any(String));
      expect(tokens[1]).toBe(tokens[0]);
    } finally {
      await lossy.close();
      await dynamodb.close();
    }
  });
});

describe('the lean clients’ endpoint, when none is configured', () => {
  it('is the environment’s, as the SDK takes it (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL), else the regional one', () => {
    const env = { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000', AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' };
    expect(serviceEndpoint('dynamodb', 'us-east-1', env)).toBe('http://127.0.0.1:8000');
    expect(serviceEndpoint('bedrock-runtime', 'us-east-1', env)).toBe('http://127.0.0.1:9000');
    expect(
      serviceEndpoint('bedrock-runtime', 'us-east-1', { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: 'http://127.0.0.1:7000' }),
    ).toBe('http://127.0.0.1:7000');
    // the regional endpoint of the region's partition (China's has a suffix of its own), as the SDK's
    // endpoint rules resolve it: computed, never called
    for (const region of ['cn-north-1', 'us-gov-west-1', 'eu-west-1']) {
      const sdk = new DynamoDBClient({ region }).config.endpointProvider({ Region: region }).url.origin;
      expect(serviceEndpoint('dynamodb', region, {})).toBe(sdk);
    }
    // the partition shows in the domain after `dynamodb.<region>.`, not only in the region
    const domain = (region: string) =>
      new URL(serviceEndpoint('dynamodb', region, {})).hostname.split('.').slice(2).join('.');
    expect(domain('cn-north-1')).not.toBe(domain('eu-west-1'));
    expect(domain('us-gov-west-1')).toBe(domain('eu-west-1'));
  });
});

describe('an AWS JSON error, as the lean clients throw it', () => {
  it('is named as the SDK names it: the header first, then the body, a namespace URL suffix dropped', () => {
    const named = (headers: Record<string, string>, body: object, status = 400) =>
      awsError({ status, headers, text: JSON.stringify(body) }, 'Bedrock').error;
    expect(named({ 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/' }, {}).name).toBe(
      'ThrottlingException',
    );
    expect(named({}, { __type: 'com.amazon.bedrock#ValidationException:http://x' }).name).toBe('ValidationException');
    expect(named({ 'x-amzn-errortype': 'AccessDeniedException' }, { __type: 'other#Thing' }).name).toBe(
      'AccessDeniedException',
    );
    expect(named({}, {}, 503)).toMatchObject({ name: 'InternalServerError', $retryable: {} });
  });
});
