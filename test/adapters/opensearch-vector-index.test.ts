import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { STSClient } from '@aws-sdk/client-sts';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { BedrockCallers } from '../../lambdas/adapters/bedrock-callers';
import { BedrockEmbedder } from '../../lambdas/adapters/bedrock-embedder';
import { indexBody, OpenSearchVectorIndex } from '../../lambdas/adapters/opensearch-vector-index';
import { SignedOpenSearch } from '../../lambdas/adapters/signed-opensearch';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import type { TenantContext } from '../../lambdas/core/tenant';
import { countTokens } from '../../lambdas/core/tokens';
import { platformConfig } from '../../lib/config';
import { startLocalOpenSearch } from '../../local/opensearch-server';
import { startLocalSts } from '../../local/sts-server';
import { localDynamoDb, registerTenant, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

type Platform = Awaited<ReturnType<typeof startTestPlatform>>;
const vector = (seed: number) => Array.from({ length: 1024 }, (_, i) => ((i * seed) % 7) - 3);

/** Every tier on OpenSearch: each tenant in an index of its own. */
const OPENSEARCH_EVERYWHERE = { basic: 'opensearch', standard: 'opensearch', enterprise: 'opensearch' } as const;

describe('OpenSearch adapter requests, against the local OpenSearch subset', () => {
  let platform: Platform;
  const standard = { ...tenantContext('std-co'), tier: 'standard' as const };
  /** A basic tenant of before: its first chunks are in the shared index of old. */
  const basic = { ...tenantContext('basic-co'), placements: ['t-basic-co', 'shared-basic'] };

  const register = (tenant: TenantContext) => registerTenant(platform, tenant);

  /** Writes chunks into the shared index as the adapter did before every tenant had its own index. */
  async function seedSharedIndex(tenantId: string, documentId: string, chunks: { text: string; lang?: string }[]) {
    const session = await localDynamoDb(platform).credentials.credentialsFor(tenantId);
    const client = new SignedOpenSearch(platform.opensearch.endpoint, 'us-east-1', async () => session);
    if (!(await client.exists('shared-basic'))) await client.request('PUT', '/shared-basic', { body: indexBody(1024) });
    await client.request('PUT', '/shared-basic/_bulk', {
      query: { refresh: 'wait_for' },
      ndjson: chunks.flatMap((chunk, i) => [
        { index: { _id: `${tenantId}:${documentId}:v1:${i}`, routing: tenantId } },
        {
          tenant_id: tenantId,
          document_id: documentId,
          version: 'v1',
          chunk: i,
          title: 'T',
          text: chunk.text,
          metadata: chunk.lang ? { lang: chunk.lang } : {},
          embedding: vector(3 + 2 * i),
        },
      ]),
    });
  }

  beforeAll(async () => {
    const config = platformConfig();
    platform = await startTestPlatform({
      ...config,
      retrieval: { ...config.retrieval, vectorStores: OPENSEARCH_EVERYWHERE },
    });
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

  it("bulk-indexes into the tenant's own index path, every tier, never naming an index in the body", async () => {
    await platform.deps.vectors.ensureTenantIndex(basic);
    await seedSharedIndex('basic-co', 'doc-1', [{ text: 'first', lang: 'en' }, { text: 'second' }]);
    const mark = platform.opensearch.requests.length;
    await platform.deps.vectors.addChunks(basic, { id: 'doc-own', version: 'v1' }, [
      { documentId: 'doc-own', chunk: 0, title: 'T', text: 'own', vector: vector(9), metadata: { lang: 'fr' } },
    ]);
    const [bulk] = requestsSince(mark);
    expect(bulk).toMatchObject({ method: 'PUT', path: '/t-basic-co/_bulk?refresh=wait_for' });
    const lines = bulk.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({ index: { _id: 'basic-co:doc-own:v1:0' } });
    expect(lines[1]).toEqual({
      tenant_id: 'basic-co',
      document_id: 'doc-own',
      version: 'v1',
      chunk: 0,
      title: 'T',
      text: 'own',
      metadata: { lang: 'fr' },
      embedding: vector(9),
    });
    expect(lines).toHaveLength(2);
  });

  it('searches the shared index of old with a k-NN query whose filter carries the tenant and the metadata filters', async () => {
    const mark = platform.opensearch.requests.length;
    const hits = await platform.deps.vectors.search(basic, { vector: vector(3), topK: 2, filter: { lang: 'en' } });
    const search = requestsSince(mark).find((request) => request.path.startsWith('/shared-basic/')) as {
      path: string;
      body: string;
    };
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
    const deleteByQuery = requestsSince(mark).find((request) =>
      request.path.startsWith('/shared-basic/_delete_by_query'),
    );
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

  it('reads and deletes across every placement the tenant ever had, writes only to its own index', async () => {
    const moved = { ...tenantContext('moved-co'), placements: ['t-moved-co', 'shared-basic'] };
    await register(moved);
    await seedSharedIndex('moved-co', 'old', [{ text: 'written to the shared index of old' }]);
    await platform.deps.vectors.ensureTenantIndex(moved);
    await platform.deps.vectors.addChunks(moved, { id: 'new', version: 'v' }, [
      { documentId: 'new', chunk: 0, text: 'written to its own', vector: vector(6) },
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
      const result = await new BedrockEmbedder(new BedrockCallers(client)).embed(tenantContext('any-co'), {
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
      const index = new OpenSearchVectorIndex(first.endpoint, 'us-east-1', credentials, 1024, OPENSEARCH_EVERYWHERE);
      await index.ensureTenantIndex(tenant);
      await index.addChunks(tenant, { id: 'doc', version: 'v1' }, [
        { documentId: 'doc', chunk: 0, text: 'kept', vector: vector(3) },
      ]);
      await first.close();

      const second = await startLocalOpenSearch({ sts, sharedIndex: 'shared-basic', file });
      const reopened = new OpenSearchVectorIndex(
        second.endpoint,
        'us-east-1',
        credentials,
        1024,
        OPENSEARCH_EVERYWHERE,
      );
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
