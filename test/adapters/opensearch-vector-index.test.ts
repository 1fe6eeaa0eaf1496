import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { STSClient } from '@aws-sdk/client-sts';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { BedrockEmbedder } from '../../lambdas/adapters/bedrock-embedder';
import { indexBody, OpenSearchVectorIndex } from '../../lambdas/adapters/opensearch-vector-index';
import { SignedOpenSearch } from '../../lambdas/adapters/signed-opensearch';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import type { TenantContext } from '../../lambdas/core/tenant';
import { countTokens } from '../../lambdas/core/tokens';
import { startLocalOpenSearch } from '../../local/opensearch-server';
import { startLocalSts } from '../../local/sts-server';
import { localDynamoDb, registerTenant, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

type Platform = Awaited<ReturnType<typeof startTestPlatform>>;
const vector = (seed: number) => Array.from({ length: 1024 }, (_, i) => ((i * seed) % 7) - 3);

describe('OpenSearch adapter requests, against the local OpenSearch subset', () => {
  let platform: Platform;
  const standard = { ...tenantContext('std-co'), tier: 'standard' as const };
  const basic = tenantContext('basic-co');

  const register = (tenant: TenantContext) => registerTenant(platform, tenant);

  beforeAll(async () => {
    platform = await startTestPlatform();
    for (const tenant of [standard, basic]) await register(tenant);
  });
  afterAll(() => platform.close());

  const requestsSince = (mark: number) => platform.opensearch.requests.slice(mark);

  it('creates a tenant index with the documented k-NN mapping', async () => {
    const mark = platform.opensearch.requests.length;
    await platform.deps.vectors.ensureTenantIndex(standard);
    await platform.deps.vectors.ensureTenantIndex(standard);
    const [exists, create, existsAgain] = requestsSince(mark);
    expect([exists.method, exists.path, create.method, create.path, existsAgain.method]).toEqual([
      'HEAD',
      '/t-std-co',
      'PUT',
      '/t-std-co',
      'HEAD',
    ]);
    expect(JSON.parse(create.body)).toEqual(indexBody(1024));
    // strict: no field a tenant's document can add; metadata one flat_object whatever its keys and types
    expect(JSON.parse(create.body).mappings.dynamic).toBe('strict');
    expect(JSON.parse(create.body).mappings.properties.metadata).toEqual({ type: 'flat_object' });
    expect(JSON.parse(create.body).mappings.properties.embedding).toEqual({
      type: 'knn_vector',
      dimension: 1024,
      method: {
        name: 'hnsw',
        engine: 'lucene',
        space_type: 'cosinesimil',
        parameters: { m: 16, ef_construction: 128 },
      },
    });
  });

  it('bulk-indexes into the index path, routed and tagged by tenant in the shared index, never naming an index in the body', async () => {
    await platform.deps.vectors.ensureTenantIndex(basic);
    const mark = platform.opensearch.requests.length;
    await platform.deps.vectors.addChunks(basic, { id: 'doc-1', version: 'v1' }, [
      { documentId: 'doc-1', chunk: 0, title: 'T', text: 'first', vector: vector(3), metadata: { lang: 'en' } },
      { documentId: 'doc-1', chunk: 1, title: 'T', text: 'second', vector: vector(5) },
    ]);
    const [bulk] = requestsSince(mark);
    expect(bulk).toMatchObject({ method: 'PUT', path: '/shared-basic/_bulk?refresh=wait_for' });
    const lines = bulk.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({ index: { _id: 'basic-co:doc-1:v1:0', routing: 'basic-co' } });
    expect(lines[1]).toEqual({
      tenant_id: 'basic-co',
      document_id: 'doc-1',
      version: 'v1',
      chunk: 0,
      title: 'T',
      text: 'first',
      metadata: { lang: 'en' },
      embedding: vector(3),
    });
    expect(lines).toHaveLength(4);
  });

  it('searches with a k-NN query whose filter carries the tenant (shared index) and the metadata filters', async () => {
    const mark = platform.opensearch.requests.length;
    const hits = await platform.deps.vectors.search(basic, { vector: vector(3), topK: 2, filter: { lang: 'en' } });
    const [search] = requestsSince(mark);
    expect(search).toMatchObject({ method: 'POST', path: '/shared-basic/_search?routing=basic-co' });
    expect(JSON.parse(search.body)).toEqual({
      size: 2,
      _source: { excludes: ['embedding'] },
      query: {
        knn: {
          embedding: {
            vector: vector(3),
            k: 2,
            filter: { bool: { filter: [{ term: { tenant_id: 'basic-co' } }, { term: { 'metadata.lang': 'en' } }] } },
          },
        },
      },
    });
    expect(hits).toEqual([{ documentId: 'doc-1', chunk: 0, title: 'T', text: 'first', score: 1 }]);
  });

  it("filters nothing by tenant in a tenant's own index: IAM confines the session to it", async () => {
    const mark = platform.opensearch.requests.length;
    await platform.deps.vectors.search(standard, { vector: vector(3), topK: 1 });
    const [search] = requestsSince(mark);
    expect(search.path).toBe('/t-std-co/_search');
    expect(JSON.parse(search.body).query.knn.embedding.filter).toEqual({ bool: { filter: [] } });
  });

  it('refuses, below the adapter, a session that reaches for another tenant or leaves out the tenant filter', async () => {
    const { credentials } = localDynamoDb(platform);
    const session = await credentials.credentialsFor('basic-co');
    const signerOf = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
      new SignatureV4({ credentials, region: 'us-east-1', service: 'es', sha256: Hash.bind(null, 'sha256') });
    const endpoint = new URL(platform.opensearch.endpoint);
    const send = async (method: string, path: string, body?: unknown, signer = signerOf(session)) => {
      const [pathname, search = ''] = path.split('?');
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const signed = await signer.sign({
        method,
        protocol: 'http:',
        hostname: endpoint.hostname,
        port: Number(endpoint.port),
        path: pathname,
        query: Object.fromEntries(new URLSearchParams(search)),
        headers: { host: endpoint.host, 'content-type': 'application/json' },
        body: payload,
      });
      const response = await fetch(`${platform.opensearch.endpoint}${path}`, {
        method,
        headers: signed.headers,
        body: payload,
      });
      return { status: response.status, body: (await response.json()) as { error?: { type?: string } } };
    };
    const knn = { size: 5, query: { knn: { embedding: { vector: vector(3), k: 5 } } } };
    expect((await send('POST', '/t-std-co/_search', knn)).status).toBe(403);
    expect((await send('POST', '/shared-basic/_search', knn)).status).toBe(403);
    const otherTenant = {
      ...knn,
      query: { knn: { embedding: { ...knn.query.knn.embedding, filter: { term: { tenant_id: 'std-co' } } } } },
    };
    expect((await send('POST', '/shared-basic/_search?routing=basic-co', otherTenant)).status).toBe(403);
    expect((await send('DELETE', '/shared-basic')).status).toBe(403);
    // A key no one issued, or one used without its secret, is no one's.
    for (const credentials of [
      { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' },
      { ...session, secretAccessKey: 'x' },
    ]) {
      const refused = await send('POST', '/shared-basic/_search?routing=basic-co', knn, signerOf(credentials));
      expect([refused.status, refused.body.error?.type]).toEqual([403, 'security_exception']);
    }
    const unsupported = await send('POST', '/t-basic-co/_msearch', {});
    expect(unsupported).toMatchObject({ status: 400, body: { error: { type: 'illegal_argument_exception' } } });
  });

  it('lets no basic tenant change the shared mapping for the others: conflicting types, many keys', async () => {
    const [one, two] = [tenantContext('types-one'), tenantContext('types-two')];
    for (const tenant of [one, two]) await register(tenant);
    await platform.deps.vectors.ensureTenantIndex(one);
    const chunk = (metadata: Record<string, string | number | boolean>) => [
      { documentId: 'd', chunk: 0, text: 'shared index text', vector: vector(7), metadata },
    ];
    // the same keys with a number, a string and a boolean, and more keys than the index's field limit
    await platform.deps.vectors.addChunks(one, { id: 'd', version: 'v' }, chunk({ year: 2024, flag: true }));
    await platform.deps.vectors.addChunks(two, { id: 'd', version: 'v' }, chunk({ year: 'unknown', flag: 'maybe' }));
    // 1,200 distinct keys, past OpenSearch's default limit of 1,000 fields an index
    for (let i = 0; i < 60; i++) {
      const metadata = Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`k${i}_${j}`, j]));
      await platform.deps.vectors.addChunks(two, { id: `many-${i}`, version: 'v' }, [
        { documentId: `many-${i}`, chunk: 0, text: 'x', vector: vector(8), metadata },
      ]);
    }
    const hits = async (tenant: typeof one, filter: Record<string, string | number | boolean>) =>
      (await platform.deps.vectors.search(tenant, { vector: vector(7), topK: 5, filter })).map((p) => p.documentId);
    expect(await hits(one, { year: 2024 })).toEqual(['d']);
    expect(await hits(one, { flag: true })).toEqual(['d']);
    expect(await hits(two, { year: 'unknown' })).toEqual(['d']);
    expect(await hits(two, { year: 2024 })).toEqual([]);
    expect(await hits(one, { year: 'unknown' })).toEqual([]);
  });

  it('the local OpenSearch refuses what real OpenSearch refuses under a dynamic mapping', async () => {
    // the mapping the shared index had before: one tenant's value type fixes the field for everyone
    await register(tenantContext('legacy-co'));
    const session = await localDynamoDb(platform).credentials.credentialsFor('legacy-co');
    const client = new SignedOpenSearch(platform.opensearch.endpoint, 'us-east-1', async () => session);
    const standardBody = indexBody(4);
    const body = {
      ...standardBody,
      mappings: {
        ...standardBody.mappings,
        properties: { ...standardBody.mappings.properties, metadata: { type: 'object', dynamic: true } },
      },
    };
    await client.request('PUT', '/t-legacy-co', { body });
    const doc = (year: string | number) => ({
      tenant_id: 'legacy-co',
      document_id: 'd',
      version: 'v',
      chunk: 0,
      text: 't',
      metadata: { year },
      embedding: [1, 0, 0, 0],
    });
    type BulkAnswer = { errors: boolean; items: { index: { error?: { type: string } } }[] };
    const bulk = (id: string, year: string | number) =>
      client.request<BulkAnswer>('PUT', '/t-legacy-co/_bulk', { ndjson: [{ index: { _id: id } }, doc(year)] });
    const first = await bulk('1', 2024);
    const second = await bulk('2', 'unknown');
    expect(first.errors).toBe(false);
    expect(second.errors).toBe(true);
    expect(second.items[0].index.error?.type).toBe('mapper_parsing_exception');
  });

  it('deletes the versions of a document it is told to, by query, and reports the count', async () => {
    await platform.deps.vectors.addChunks(basic, { id: 'doc-1', version: 'v2' }, [
      { documentId: 'doc-1', chunk: 0, text: 'newer', vector: vector(4) },
    ]);
    const mark = platform.opensearch.requests.length;
    expect(await platform.deps.vectors.deleteDocument(basic, 'doc-1', { except: 'v2' })).toBe(2);
    const deleteByQuery = requestsSince(mark).find((request) => request.path.includes('_delete_by_query'));
    expect(deleteByQuery?.path).toBe('/shared-basic/_delete_by_query?routing=basic-co&refresh=true');
    expect(JSON.parse(deleteByQuery?.body ?? '')).toEqual({
      query: {
        bool: {
          filter: [{ term: { tenant_id: 'basic-co' } }, { term: { document_id: 'doc-1' } }],
          must_not: [{ term: { version: 'v2' } }],
        },
      },
    });
    expect(await platform.deps.vectors.deleteDocument(basic, 'doc-1', { only: 'v1' })).toBe(0);
    expect(await platform.deps.vectors.deleteDocument(basic, 'doc-1')).toBe(1);
    expect(await platform.deps.vectors.deleteDocument(basic, 'doc-1')).toBe(0);
  });

  it('reads and deletes across every placement the tenant ever had, writes only to the current one', async () => {
    const moved = { ...standard, tenantId: 'moved-co', tier: 'basic' as const, placements: ['t-moved-co'] };
    await register(moved);
    await platform.deps.vectors.ensureTenantIndex({ tenantId: 'moved-co', tier: 'standard' });
    await platform.deps.vectors.ensureTenantIndex(moved);
    await platform.deps.vectors.addChunks({ ...moved, tier: 'standard' }, { id: 'old', version: 'v' }, [
      { documentId: 'old', chunk: 0, text: 'written while standard', vector: vector(6) },
    ]);
    await platform.deps.vectors.addChunks(moved, { id: 'new', version: 'v' }, [
      { documentId: 'new', chunk: 0, text: 'written while basic', vector: vector(6) },
    ]);
    const hits = await platform.deps.vectors.search(moved, { vector: vector(6), topK: 5 });
    expect(hits.map((hit) => hit.documentId).sort()).toEqual(['new', 'old']);
    expect(await platform.deps.vectors.deleteDocument(moved, 'old')).toBe(1);
    expect(await platform.deps.vectors.deleteTenant(moved)).toBe(1);
    expect(await platform.deps.vectors.deleteTenant(moved)).toBe(0);
  });
});

describe('Titan embeddings through InvokeModel', () => {
  it('sends the documented Titan Text Embeddings V2 body and reads vector and token count', async () => {
    const platform = await startTestPlatform();
    try {
      const client = new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: platform.endpoints.bedrock,
        credentials: platform.credentials,
        requestHandler: new NodeHttpHandler(),
      });
      const result = await new BedrockEmbedder(client).embed(tenantContext('any-co'), {
        modelId: 'amazon.titan-embed-text-v2:0',
        texts: ['Refunds take five days', 'Shipping is fast'],
        dimensions: 256,
      });
      const calls = platform.bedrock.requests.slice(-2);
      expect(calls.map((c) => c.path)).toEqual([
        '/model/amazon.titan-embed-text-v2%3A0/invoke',
        '/model/amazon.titan-embed-text-v2%3A0/invoke',
      ]);
      expect(calls.map((c) => c.body)).toEqual(
        expect.arrayContaining([
          { inputText: 'Refunds take five days', dimensions: 256, normalize: true },
          { inputText: 'Shipping is fast', dimensions: 256, normalize: true },
        ]),
      );
      expect(calls[0].headers['content-type']).toBe('application/json');
      expect(result.vectors.map((v) => v.length)).toEqual([256, 256]);
      expect(Math.hypot(...result.vectors[0])).toBeCloseTo(1, 6);
      expect(result.inputTokens).toBe(countTokens('Refunds take five days') + countTokens('Shipping is fast'));
    } finally {
      await platform.close();
    }
  });
});

describe('local OpenSearch persistence (npm start keeps indexes under LOCAL_DATA_DIR)', () => {
  it('writes its indexes at close and reads them back at the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opensearch-'));
    const file = join(dir, 'opensearch.json');
    const base = { accessKeyId: 'a', secretAccessKey: 'b' };
    const sts = await startLocalSts({
      roleArn: 'arn:aws:iam::000000000000:role/r',
      requiredTags: ['tenantId'],
      platformCredentials: base,
      tenantKnown: async () => true,
    });
    const credentials = new StsTenantCredentials(
      new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, credentials: base }),
      'arn:aws:iam::000000000000:role/r',
    );
    const tenant = { ...tenantContext('kept-co'), tier: 'standard' as const };
    try {
      const first = await startLocalOpenSearch({ sts, sharedIndex: 'shared-basic', file });
      const index = new OpenSearchVectorIndex(first.endpoint, 'us-east-1', credentials, 1024);
      await index.ensureTenantIndex(tenant);
      await index.addChunks(tenant, { id: 'doc', version: 'v1' }, [
        { documentId: 'doc', chunk: 0, text: 'kept', vector: vector(3) },
      ]);
      await first.close();

      const second = await startLocalOpenSearch({ sts, sharedIndex: 'shared-basic', file });
      const reopened = new OpenSearchVectorIndex(second.endpoint, 'us-east-1', credentials, 1024);
      expect(await reopened.search(tenant, { vector: vector(3), topK: 1 })).toEqual([
        { documentId: 'doc', chunk: 0, title: undefined, text: 'kept', score: 1 },
      ]);
      await second.close();
    } finally {
      await sts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
