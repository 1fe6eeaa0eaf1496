import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { S3VectorsIndex } from '../lambdas/adapters/s3vectors-vector-index';
import { StsTenantCredentials } from '../lambdas/adapters/sts-tenant-credentials';
import type { IndexedChunk } from '../lambdas/core/ports';
import type { TenantContext } from '../lambdas/core/tenant';
import { startLocalS3Vectors } from '../local/s3vectors-server';
import { startLocalSts } from '../local/sts-server';
import { printTable } from './chat';
import { CONCURRENCY, percentile, pool } from './retrieval';

/** With the large one, 10,000 indexes: S3 Vectors' most per vector bucket, so a plane's most tenants on it. */
const TENANTS = Number(process.env.BENCH_TENANTS ?? 9_999);
const CHUNKS_PER_TENANT = 100;
const BIG_TENANT_CHUNKS = Number(process.env.BENCH_BIG_CHUNKS ?? 100_000);
const DIMENSIONS = 1024;
const QUERIES = 200;
/** What one chunk holds besides its vector: its key, its text (about 200 tokens) and its document fields. */
const CHUNK_EXTRA_BYTES = 1_100;

/**
 * us-east-1 list prices (December 2026) the monthly figures are computed from; check the pricing
 * pages before quoting them. S3 Vectors: storage, data written, query calls and data processed
 * (the index's size scanned by a query). OpenSearch: the `production` sizing of `lib/config.ts`.
 */
const PRICES = {
  s3VectorsStorageUsdPerGbMonth: 0.06,
  s3VectorsPutUsdPerGb: 0.2,
  s3VectorsQueryUsdPerMillion: 2.5,
  s3VectorsProcessedUsdPerTb: 0.004,
  openSearchR6gLargeUsdPerHour: 0.167,
  openSearchM6gLargeUsdPerHour: 0.128,
  openSearchGp3UsdPerGbMonth: 0.122,
};
/** The workload each tenant's monthly cost is for: its chunks written once, and this many searches. */
const QUERIES_PER_TENANT_MONTH = 10_000;
const HOURS_PER_MONTH = 730;

const limits = { requestsPerMinute: 1, tokensPerMinute: 1, monthlyTokens: 1, monthlyBudgetUsd: 1 };
const tenantOf = (tenantId: string): TenantContext => ({
  tenantId,
  tier: 'standard',
  principal: { type: 'api_key', id: 'bench' },
  limits,
  auditPrompts: false,
  placements: [],
});

/** A deterministic unit vector. */
function vector(seed: number): number[] {
  let x = (seed * 2654435761) >>> 0;
  const values = Array.from({ length: DIMENSIONS }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x / 2 ** 32 - 0.5;
  });
  const norm = Math.hypot(...values);
  return values.map((value) => value / norm);
}

const chunksOf = (count: number, seed: number): IndexedChunk[] =>
  Array.from({ length: count }, (_, chunk) => ({
    documentId: `doc-${Math.floor(chunk / 10)}`,
    chunk,
    text: 'x'.repeat(800),
    vector: vector(seed * 1_000_003 + chunk),
  }));

/** Monthly cost of one tenant of `chunks` on S3 Vectors, at the workload above. */
function s3VectorsMonthlyUsd(chunks: number): number {
  const gb = (chunks * (DIMENSIONS * 4 + CHUNK_EXTRA_BYTES)) / 1e9;
  const queries = QUERIES_PER_TENANT_MONTH;
  return (
    gb * PRICES.s3VectorsStorageUsdPerGbMonth +
    gb * PRICES.s3VectorsPutUsdPerGb +
    (queries / 1e6) * PRICES.s3VectorsQueryUsdPerMillion +
    ((queries * gb) / 1000) * PRICES.s3VectorsProcessedUsdPerTb
  );
}

/** The `production` OpenSearch domain a month, shared by `tenants`: its floor, whatever they hold. */
function openSearchMonthlyUsd(tenants: number): number {
  const domain =
    (2 * PRICES.openSearchR6gLargeUsdPerHour + 3 * PRICES.openSearchM6gLargeUsdPerHour) * HOURS_PER_MONTH +
    2 * 100 * PRICES.openSearchGp3UsdPerGbMonth;
  return domain / tenants;
}

/**
 * Retrieval at scale against the local S3 Vectors server: `BENCH_TENANTS` tenants of 100 chunks
 * each, plus one of 100,000 (10,000 indexes, a bucket's most), through the production
 * adapter and tenant sessions of the local STS; search latency per size, and a month's cost.
 */
export async function benchVectors(): Promise<void> {
  const platformKey = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };
  const sts = await startLocalSts({
    roleArn: 'arn:aws:iam::000000000000:role/tenant-access',
    requiredTags: ['tenantId'],
    platformCredentials: platformKey,
    tenantKnown: async () => true,
  });
  const server = await startLocalS3Vectors({ sts, vectorBucketName: 'bench-vectors' });
  const local = { region: 'us-east-1', requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true } }) };
  const credentials = new StsTenantCredentials(
    new STSClient({ ...local, endpoint: sts.endpoint, credentials: platformKey }),
    'arn:aws:iam::000000000000:role/tenant-access',
  );
  const stores = { basic: 's3vectors', standard: 's3vectors', enterprise: 's3vectors' } as const;
  const index = new S3VectorsIndex(
    'bench-vectors',
    { ...local, endpoint: server.endpoint },
    credentials,
    DIMENSIONS,
    stores,
  );
  try {
    const small = Array.from({ length: TENANTS }, (_, i) => tenantOf(`small-${i}`));
    const loadStarted = performance.now();
    await pool(small, async (tenant) => {
      await index.ensureTenantIndex(tenant);
      await index.addChunks(tenant, { id: 'all', version: 'v1' }, chunksOf(CHUNKS_PER_TENANT, small.indexOf(tenant)));
    });
    const big = tenantOf('big-0');
    await index.ensureTenantIndex(big);
    for (let from = 0; from < BIG_TENANT_CHUNKS; from += 5_000) {
      const part = chunksOf(Math.min(5_000, BIG_TENANT_CHUNKS - from), 999_999).map((chunk) => ({
        ...chunk,
        chunk: chunk.chunk + from,
      }));
      await index.addChunks(big, { id: 'all', version: 'v1' }, part);
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;

    // One query at a time: a latency, not a queue behind the one-threaded local server.
    const timed = async (tenants: readonly TenantContext[], queries: number) => {
      const ms: number[] = [];
      for (let q = 0; q < queries; q++) {
        const started = performance.now();
        await index.search(tenants[(q * 7919) % tenants.length], { vector: vector(q + 31), topK: 5 });
        ms.push(performance.now() - started);
      }
      return ms.sort((a, b) => a - b);
    };
    const smallMs = await timed(small, QUERIES);
    const bigMs = await timed([big], QUERIES / 4);
    printTable(
      [
        'tenant',
        'chunks',
        'search p50 ms',
        'search p99 ms',
        'S3 Vectors $/month',
        'OpenSearch $/month (shared domain)',
      ],
      [
        [
          `each of ${TENANTS}`,
          String(CHUNKS_PER_TENANT),
          percentile(smallMs, 0.5).toFixed(1),
          percentile(smallMs, 0.99).toFixed(1),
          s3VectorsMonthlyUsd(CHUNKS_PER_TENANT).toFixed(4),
          openSearchMonthlyUsd(TENANTS + 1).toFixed(4),
        ],
        [
          'the large one',
          String(BIG_TENANT_CHUNKS),
          percentile(bigMs, 0.5).toFixed(1),
          percentile(bigMs, 0.99).toFixed(1),
          s3VectorsMonthlyUsd(BIG_TENANT_CHUNKS).toFixed(4),
          openSearchMonthlyUsd(TENANTS + 1).toFixed(4),
        ],
      ],
    );
    console.log(
      `\n${TENANTS + 1} indexes of their own in one local vector bucket (${TENANTS} x ${CHUNKS_PER_TENANT} + ${BIG_TENANT_CHUNKS} vectors of ${DIMENSIONS} dimensions, loaded in ${loadSeconds.toFixed(0)} s), top-5 searches one at a time (loaded at concurrency ${CONCURRENCY}) through the production adapter with tenant sessions. Local search is exact brute force in one process: the latencies show the adapter and protocol cost and how a brute-force scan grows, not S3 Vectors' (AWS quotes ~100 ms for frequent queries). Monthly cost per tenant: its chunks written once and ${QUERIES_PER_TENANT_MONTH} searches, at the list prices in bench/vectors.ts; OpenSearch: the production domain's floor (2 r6g.large, 3 m6g.large masters, 2 x 100 GB gp3) split over the tenants, which it could not hold as an index each (1,000 shards a node).`,
    );
  } finally {
    await server.close();
    await sts.close();
  }
}
