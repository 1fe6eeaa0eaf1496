import { Agent, request } from 'node:http';
import awsLite from '@aws-lite/client';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { AwsClient } from 'aws4fetch';
import { printTable, startServer } from './chat';

const CALLS = Number(process.env.BENCH_SDK_CALLS ?? 8000);
const CONCURRENCY = 16;
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench', sessionToken: 'bench' };
const ITEM = {
  pk: 'TENANT#bench',
  sk: 'AUDIT#2026-11-25T10:00:00.000Z#0b9f4c1e-5d7a-4f0e-9a43-1f1f0c6f2a11',
  route: 'POST /v1/chat/completions',
  model: 'nova-micro',
  status: 200,
  inputTokens: 12,
  outputTokens: 40,
  expiresAt: 1_772_000_000,
};

/** CPU milliseconds this process spends per call of `once`, CONCURRENCY calls at a time (after a warm-up). */
async function cpuMsPerCall(once: () => Promise<unknown>): Promise<number> {
  const run = async (calls: number) => {
    let started = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (started++ < calls) await once();
      }),
    );
  };
  await run(CALLS / 4);
  const before = process.cpuUsage();
  await run(CALLS);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / CALLS;
}

/**
 * `npm run bench -- sdk`: what one DynamoDB `PutItem` costs the calling process in CPU, by client,
 * against a server in another process that answers `{}` at once: the floor under the chat bench's
 * `platform process CPU per metered chat`, which makes three such calls.
 */
export async function benchSdk(): Promise<void> {
  const server = await startServer(['bare', '{}']);
  const url = new URL(server.url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const config = {
    region: 'us-east-1',
    endpoint: server.url,
    credentials,
    requestHandler: new NodeHttpHandler({ httpAgent: agent }),
  };
  const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient(config), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const signer = new SignatureV4({
    credentials,
    region: 'us-east-1',
    service: 'dynamodb',
    sha256: Hash.bind(null, 'sha256'),
  });
  const tunedClient = new DynamoDBClient({ ...config, cacheMiddleware: true, signer: async () => signer });
  /** The same request, signed by the SDK's signer and sent with node:http (`sign` false: unsigned). */
  const direct = (sign: boolean) => async () => {
    const body = JSON.stringify({ TableName: 'audit', Item: marshall(ITEM) });
    const headers = {
      host: url.host,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.PutItem',
    };
    const signed = sign
      ? (await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, path: '/', headers, body }))
          .headers
      : headers;
    await new Promise<void>((resolve, reject) => {
      const call = request(
        { agent, host: url.hostname, port: url.port, method: 'POST', path: '/', headers: signed },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        },
      );
      call.on('error', reject);
      call.end(body);
    });
  };
  // Two lean clients: aws4fetch (SigV4 over fetch) and aws-lite (its client, the request as its DynamoDB plugin sends it).
  const aws4 = new AwsClient({ ...credentials, service: 'dynamodb', region: 'us-east-1' });
  const lite = await awsLite({ ...credentials, region: 'us-east-1', endpoint: server.url, plugins: [] });
  const clients: [string, () => Promise<unknown>][] = [
    [
      'AWS SDK v3 document client (the platform)',
      () => documentClient.send(new PutCommand({ TableName: 'audit', Item: ITEM })),
    ],
    [
      'AWS SDK v3 base client, cacheMiddleware, one signer',
      () => tunedClient.send(new PutItemCommand({ TableName: 'audit', Item: marshall(ITEM) })),
    ],
    [
      'aws4fetch (fetch, keep-alive)',
      async () =>
        (
          await aws4.fetch(server.url, {
            method: 'POST',
            headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
            body: JSON.stringify({ TableName: 'audit', Item: marshall(ITEM) }),
          })
        ).json(),
    ],
    [
      'aws-lite client',
      () =>
        lite({
          service: 'dynamodb',
          path: '/',
          headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
          payload: { TableName: 'audit', Item: marshall(ITEM) },
        }),
    ],
    ['SignatureV4 + node:http', direct(true)],
    ['node:http, unsigned', direct(false)],
  ];
  try {
    const rows: string[][] = [];
    for (const [name, once] of clients) rows.push([name, (await cpuMsPerCall(once)).toFixed(3)]);
    printTable(['client', 'CPU ms per PutItem'], rows);
    console.log(
      `\n${CALLS} calls per client, ${CONCURRENCY} at a time, keep-alive, against a Node server in another process answering {}; CPU is this process's (user + system).`,
    );
  } finally {
    agent.destroy();
    server.process.kill('SIGINT');
  }
}
