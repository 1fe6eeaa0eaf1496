import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateIndexCommand,
  DeleteIndexCommand,
  DeleteVectorsCommand,
  GetIndexCommand,
  GetVectorBucketCommand,
  GetVectorsCommand,
  ListIndexesCommand,
  ListVectorsCommand,
  PutVectorsCommand,
  QueryVectorsCommand,
  S3VectorsClient,
} from '@aws-sdk/client-s3vectors';
import { STSClient } from '@aws-sdk/client-sts';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, DocumentType } from '@smithy/types';
import { S3VectorsIndex } from '../../lambdas/adapters/s3vectors-vector-index';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import { onboardTenant } from '../../lambdas/core/tenants';
import { DEFAULT_TIERS, platformConfig } from '../../lib/config';
import { type LocalS3Vectors, startLocalS3Vectors } from '../../local/s3vectors-server';
import { type LocalSts, startLocalSts } from '../../local/sts-server';
import { inMemoryPorts } from '../support/fakes';

const ROLE_ARN = 'arn:aws:iam::000000000000:role/tenant-access';
const PLATFORM = { accessKeyId: 'platform', secretAccessKey: 'platform-secret' };
const BUCKET = 'plane-vectors';
const INDEX = { vectorBucketName: BUCKET, indexName: 't-acme' };
const INDEX_ARN = `arn:aws:s3vectors:us-east-1:000000000000:bucket/${BUCKET}/index/t-acme`;

/** Cosine distance as float32 vectors have it. */
function cosineDistance(a: number[], b: number[]): number {
  const [x, y] = [Float32Array.from(a), Float32Array.from(b)];
  const dot = x.reduce((sum, v, i) => sum + v * y[i], 0);
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((sum, e) => sum + e * e, 0));
  return 1 - dot / (norm(x) * norm(y));
}

describe('local S3 Vectors, driven by the S3 Vectors SDK with tenant sessions', () => {
  let sts: LocalSts;
  let stsClient: STSClient;
  let credentials: StsTenantCredentials;
  let server: LocalS3Vectors;
  let client: S3VectorsClient;
  const clients: S3VectorsClient[] = [];

  const clientOf = (
    endpoint: string,
    identity: () => Promise<AwsCredentialIdentity> = () => credentials.credentialsFor('acme'),
  ) => {
    const created = new S3VectorsClient({ region: 'us-east-1', endpoint, credentials: identity });
    clients.push(created);
    return created;
  };

  /** A new empty `t-acme`, whatever the test before left. */
  async function freshIndex(dimension: number, distanceMetric: 'cosine' | 'euclidean' = 'cosine'): Promise<void> {
    await client.send(new DeleteIndexCommand(INDEX)).catch((error: Error) => {
      if (error.name !== 'NotFoundException') throw error;
    });
    await client.send(
      new CreateIndexCommand({
        ...INDEX,
        dataType: 'float32',
        dimension,
        distanceMetric,
        metadataConfiguration: { nonFilterableMetadataKeys: ['text'] },
      }),
    );
  }

  beforeAll(async () => {
    sts = await startLocalSts({
      roleArn: ROLE_ARN,
      requiredTags: ['tenantId'],
      platformCredentials: PLATFORM,
      tenantKnown: async () => true,
    });
    stsClient = new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, credentials: PLATFORM });
    credentials = new StsTenantCredentials(stsClient, ROLE_ARN);
    server = await startLocalS3Vectors({ sts, vectorBucketName: BUCKET });
    client = clientOf(server.endpoint);
  });
  afterAll(async () => {
    for (const each of clients) each.destroy();
    stsClient.destroy();
    await server.close();
    await sts.close();
  });

  it('creates an index and reads it back by name and by ARN; creating it again is a conflict', async () => {
    const created = await client.send(
      new CreateIndexCommand({ ...INDEX, dataType: 'float32', dimension: 3, distanceMetric: 'cosine' }),
    );
    expect(created.indexArn).toBe(INDEX_ARN);
    expect(server.requests.at(-1)).toEqual({
      operation: 'CreateIndex',
      body: { ...INDEX, dataType: 'float32', dimension: 3, distanceMetric: 'cosine' },
    });
    for (const naming of [INDEX, { indexArn: INDEX_ARN }]) {
      const { index } = await client.send(new GetIndexCommand(naming));
      expect(index).toMatchObject({ ...INDEX, indexArn: INDEX_ARN, dataType: 'float32', dimension: 3 });
      expect(index?.creationTime).toBeInstanceOf(Date);
    }
    await expect(
      client.send(new CreateIndexCommand({ ...INDEX, dataType: 'float32', dimension: 3, distanceMetric: 'cosine' })),
    ).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
  });

  it('queries the nearest vectors that match a metadata filter, in distance order', async () => {
    await freshIndex(3);
    const items: [string, number[], DocumentType][] = [
      ['a', [1, 0, 0], { genre: 'drama', year: 2021, text: 'kept, not filterable' }],
      ['b', [0.9, 0.1, 0], { genre: 'comedy', year: 2022 }],
      ['c', [0.8, 0.2, 0], { genre: 'drama', year: 2019 }],
      ['d', [0, 1, 0], { genre: ['drama', 'romance'], year: 2023 }],
      ['e', [0.95, 0.05, 0], { genre: 'horror', year: 2022 }],
      ['f', [0.7, 0.3, 0], { genre: 'comedy', year: 2020 }],
    ];
    await client.send(
      new PutVectorsCommand({
        ...INDEX,
        vectors: items.map(([key, float32, metadata]) => ({ key, data: { float32 }, metadata })),
      }),
    );
    const query = { ...INDEX, queryVector: { float32: [1, 0, 0] } };
    const answer = await client.send(
      new QueryVectorsCommand({
        ...query,
        topK: 3,
        filter: { $and: [{ genre: { $in: ['drama', 'comedy'] } }, { year: { $gte: 2020, $lt: 2023 } }] },
        returnDistance: true,
        returnMetadata: true,
      }),
    );
    expect(answer.distanceMetric).toBe('cosine');
    expect(answer.vectors?.map((v) => v.key)).toEqual(['a', 'b', 'f']);
    answer.vectors?.forEach((v) => {
      const [, vector] = items.find(([key]) => key === v.key) ?? [];
      expect(v.distance).toBeCloseTo(cosineDistance([1, 0, 0], vector ?? []), 6);
    });
    expect(answer.vectors?.[0].metadata).toEqual(items[0][2]);

    const keys = async (filter: DocumentType) =>
      (await client.send(new QueryVectorsCommand({ ...query, topK: 10, filter }))).vectors?.map((v) => v.key);
    // Implicit equality, which a list value meets by any element; keys only, without distances.
    expect(await keys({ genre: 'drama' })).toEqual(['a', 'c', 'd']);
    expect(await keys({ $or: [{ genre: 'horror' }, { year: { $lte: 2019 } }] })).toEqual(['e', 'c']);
    // Non-filterable metadata is returned, never matched.
    expect(await keys({ text: { $exists: true } })).toEqual([]);
  });

  it('pages through 1,200 vectors with nextToken, each once, the token absent at the end', async () => {
    await freshIndex(2, 'euclidean');
    const all = Array.from({ length: 1200 }, (_, i) => `v-${String(i).padStart(4, '0')}`);
    for (let start = 0; start < all.length; start += 500) {
      const vectors = all.slice(start, start + 500).map((key, i) => ({ key, data: { float32: [start + i, 1] } }));
      await client.send(new PutVectorsCommand({ ...INDEX, vectors }));
    }
    const sizes: number[] = [];
    const listed: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await client.send(new ListVectorsCommand({ ...INDEX, nextToken }));
      sizes.push(page.vectors?.length ?? 0);
      listed.push(...(page.vectors ?? []).map((v) => v.key as string));
      expect(page.vectors?.[0]).not.toHaveProperty('data');
      nextToken = page.nextToken;
    } while (nextToken);
    expect(sizes).toEqual([500, 500, 200]);
    expect([...listed].sort()).toEqual(all);
    expect(new Set(listed).size).toBe(1200);

    const big = await client.send(new ListVectorsCommand({ ...INDEX, maxResults: 1000, returnData: true }));
    expect(big.vectors).toHaveLength(1000);
    expect(big.vectors?.[0].data?.float32).toHaveLength(2);
  });

  it('gets vectors by key, overwrites a key, and deletes keys (missing ones are fine)', async () => {
    await freshIndex(2, 'euclidean');
    const put = (vectors: { key: string; data: { float32: number[] }; metadata?: DocumentType }[]) =>
      client.send(new PutVectorsCommand({ ...INDEX, vectors }));
    await put([
      { key: 'a', data: { float32: [0.5, 0.25] }, metadata: { lang: 'en' } },
      { key: 'b', data: { float32: [1, 2] } },
    ]);
    const get = async (keys: string[], returnData = true) =>
      (await client.send(new GetVectorsCommand({ ...INDEX, keys, returnData, returnMetadata: true }))).vectors;
    expect(await get(['b', 'missing', 'a'])).toEqual([
      { key: 'b', data: { float32: [1, 2] } },
      { key: 'a', data: { float32: [0.5, 0.25] }, metadata: { lang: 'en' } },
    ]);
    expect(await get(['a'], false)).toEqual([{ key: 'a', metadata: { lang: 'en' } }]);
    await put([{ key: 'a', data: { float32: [3, 4] } }]);
    expect(await get(['a'])).toEqual([{ key: 'a', data: { float32: [3, 4] } }]);
    const nearest = await client.send(
      new QueryVectorsCommand({ ...INDEX, topK: 1, queryVector: { float32: [0, 0] }, returnDistance: true }),
    );
    expect(nearest).toMatchObject({ distanceMetric: 'euclidean', vectors: [{ key: 'b', distance: Math.sqrt(5) }] });

    await client.send(new DeleteVectorsCommand({ ...INDEX, keys: ['a', 'missing'] }));
    expect(await get(['a', 'b'])).toEqual([{ key: 'b', data: { float32: [1, 2] } }]);
  });

  it('deletes an index: then it is not found', async () => {
    await freshIndex(2);
    await client.send(new DeleteIndexCommand({ indexArn: INDEX_ARN }));
    const notFound = { name: 'NotFoundException', $metadata: { httpStatusCode: 404 } };
    await expect(client.send(new GetIndexCommand(INDEX))).rejects.toMatchObject(notFound);
    await expect(
      client.send(new PutVectorsCommand({ ...INDEX, vectors: [{ key: 'k', data: { float32: [1, 2] } }] })),
    ).rejects.toMatchObject(notFound);
    await expect(client.send(new DeleteIndexCommand(INDEX))).rejects.toMatchObject(notFound);
  });

  it("refuses a tenant session another tenant's index, another bucket and ListIndexes, as IAM would", async () => {
    await freshIndex(2);
    const denied = { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } };
    const refused = [
      () =>
        client.send(
          new CreateIndexCommand({
            vectorBucketName: BUCKET,
            indexName: 't-other',
            dataType: 'float32',
            dimension: 2,
            distanceMetric: 'cosine',
          }),
        ),
      () => client.send(new GetIndexCommand({ indexArn: INDEX_ARN.replace('t-acme', 't-other') })),
      () => client.send(new GetIndexCommand({ vectorBucketName: 'other-bucket', indexName: 't-acme' })),
      () => client.send(new GetIndexCommand({ indexArn: INDEX_ARN.replace(BUCKET, 'other-bucket') })),
      () => client.send(new ListIndexesCommand({ vectorBucketName: BUCKET })),
    ];
    for (const request of refused) await expect(request()).rejects.toMatchObject(denied);
  });

  it('refuses a request signed with a key the STS never issued, or with a session key but not its secret', async () => {
    const session = await credentials.credentialsFor('acme');
    const strangers = [
      { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'guessed' },
      { ...session, secretAccessKey: 'guessed' },
    ];
    for (const identity of strangers) {
      await expect(
        clientOf(server.endpoint, async () => identity).send(new GetIndexCommand(INDEX)),
      ).rejects.toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
    }
  });

  it('refuses a body other than the one the signature covers', async () => {
    await freshIndex(2);
    const session = await credentials.credentialsFor('acme');
    const signer = new SignatureV4({
      credentials: session,
      region: 'us-east-1',
      service: 's3vectors',
      sha256: Hash.bind(null, 'sha256'),
    });
    const endpoint = new URL(server.endpoint);
    const signed = JSON.stringify({ ...INDEX, keys: ['a'] });
    const { headers } = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: endpoint.hostname,
      port: Number(endpoint.port),
      path: '/DeleteVectors',
      headers: {
        host: endpoint.host,
        'content-type': 'application/json',
        'x-amz-content-sha256': createHash('sha256').update(signed).digest('hex'),
      },
      body: signed,
    });
    const send = (body: string) => fetch(`${server.endpoint}/DeleteVectors`, { method: 'POST', headers, body });
    expect((await send(JSON.stringify({ ...INDEX, keys: ['b'] }))).status).toBe(403);
    expect((await send(signed)).status).toBe(200);
  });

  it('refuses invalid requests with a ValidationException, and survives a body that is not JSON', async () => {
    await freshIndex(3);
    const invalid = { name: 'ValidationException', $metadata: { httpStatusCode: 400 } };
    await expect(
      client.send(new PutVectorsCommand({ ...INDEX, vectors: [{ key: 'k', data: { float32: [1, 2] } }] })),
    ).rejects.toMatchObject({ ...invalid, message: expect.stringMatching(/3 finite float32 numbers/) });
    await expect(
      client.send(new QueryVectorsCommand({ ...INDEX, topK: 101, queryVector: { float32: [1, 2, 3] } })),
    ).rejects.toMatchObject({ ...invalid, message: 'topK must be an integer from 1 to 100' });
    await expect(client.send(new GetVectorBucketCommand({ vectorBucketName: BUCKET }))).rejects.toMatchObject({
      ...invalid,
      message: 'local S3 Vectors does not serve POST /GetVectorBucket',
    });
    const garbage = await fetch(`${server.endpoint}/PutVectors`, { method: 'POST', body: '{"vectors": [' });
    expect(garbage.status).toBe(400);
    expect(garbage.headers.get('x-amzn-errortype')).toBe('ValidationException');
    expect((await client.send(new GetIndexCommand(INDEX))).index?.dimension).toBe(3);
  });

  it("refuses onboarding once the plane's bucket is full, with a 409 naming the way out, and leaves no record behind", async () => {
    // A bucket that holds one index, S3 Vectors' quota of 10,000 made small
    const full = await startLocalS3Vectors({ sts, vectorBucketName: BUCKET, indexesPerBucket: 1 });
    try {
      const { retrieval } = platformConfig();
      const vectors = new S3VectorsIndex(
        BUCKET,
        { region: 'us-east-1', endpoint: full.endpoint },
        credentials,
        8,
        retrieval.vectorStores,
      );
      const fake = inMemoryPorts();
      const deps = {
        ...fake.ports,
        vectors,
        tiers: DEFAULT_TIERS,
        vectorStores: retrieval.vectorStores,
        now: () => Date.UTC(2026, 11, 7),
      };
      const onboard = (id: string) => onboardTenant(deps, { id, tier: 'basic', audit_prompts: false });
      await onboard('first-co');
      await expect(onboard('second-co')).rejects.toMatchObject({
        code: 'conflict',
        message: expect.stringMatching(/holds 10000 indexes.*OpenSearch \(vectorStores\) or in a silo/),
      });
      expect(await fake.ports.registry.getTenant('second-co')).toBeUndefined();
      // Room again (the first offboarded): the same onboarding now succeeds.
      await vectors.deleteTenant({ tenantId: 'first-co', tier: 'basic', placements: [] });
      expect((await onboard('second-co')).version).toBe(1);
    } finally {
      await full.close();
    }
  });

  it('keeps indexes and vectors in its journal across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3vectors-'));
    const file = join(dir, 'vectors.jsonl');
    try {
      const first = await startLocalS3Vectors({ sts, vectorBucketName: BUCKET, file });
      const before = clientOf(first.endpoint);
      await before.send(
        new CreateIndexCommand({ ...INDEX, dataType: 'float32', dimension: 2, distanceMetric: 'cosine' }),
      );
      const vectors = ['a', 'b', 'c'].map((key, i) => ({ key, data: { float32: [i + 0.5, 1] }, metadata: { i } }));
      await before.send(new PutVectorsCommand({ ...INDEX, vectors }));
      await before.send(new DeleteVectorsCommand({ ...INDEX, keys: ['b'] }));
      await first.close();

      const second = await startLocalS3Vectors({ sts, vectorBucketName: BUCKET, file });
      const after = clientOf(second.endpoint);
      expect((await after.send(new GetIndexCommand(INDEX))).index).toMatchObject({
        dimension: 2,
        distanceMetric: 'cosine',
      });
      const listed = await after.send(new ListVectorsCommand({ ...INDEX, returnData: true, returnMetadata: true }));
      expect(listed.vectors).toEqual([
        { key: 'a', data: { float32: [0.5, 1] }, metadata: { i: 0 } },
        { key: 'c', data: { float32: [2.5, 1] }, metadata: { i: 2 } },
      ]);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
