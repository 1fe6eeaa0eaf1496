import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingestDocument, retrievePassages } from '../lambdas/core/documents';
import type { TenantContext } from '../lambdas/core/tenant';
import { onboardTenant } from '../lambdas/core/tenants';
import { modelDeps } from '../lambdas/runtime';
import { startLocalPlatform } from '../local/platform';
import { printTable } from './chat';

const CHUNKS_PER_TENANT = Number(process.env.BENCH_CHUNKS_PER_TENANT ?? 1000);
const TENANT_STEPS = [1, 10, 100];
const QUERIES = 200;
/** How many calls `pool` keeps in flight. */
export const CONCURRENCY = 8;
/** 980 three-letter words (consonant, vowel, consonant): one token each to the platform's estimate. */
const WORDS = Array.from(
  { length: 980 },
  (_, i) => `${'bdfgklmnprstvz'[i % 14]}${'aeiou'[Math.floor(i / 14) % 5]}${'bdfgklmnprstvz'[Math.floor(i / 70) % 14]}`,
);
/** BENCH_PERSIST=1: the local stores journal every change to disk, as under `npm start`. */
const PERSIST = process.env.BENCH_PERSIST === '1';
const limits = { requestsPerMinute: 1e7, tokensPerMinute: 1e11, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };

/** Deterministic pseudo-random text: `tokens` words drawn from the vocabulary. */
function text(seed: number, tokens: number): string {
  let x = seed * 2654435761;
  return Array.from({ length: tokens }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return WORDS[x % WORDS.length];
  }).join(' ');
}

/** Runs `run` over `items`, `CONCURRENCY` at a time. */
export async function pool<T>(items: readonly T[], run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await run(items[next++]);
    }),
  );
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

export async function benchRetrieval(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-retrieval-'));
  const platform = await startLocalPlatform({ dataDir, port: 0, persist: PERSIST });
  const deps = modelDeps(platform.deps);
  const { chunkTokens, chunkOverlapTokens } = deps.retrieval;
  // Ten chunks per document: 10 windows of `chunkTokens`, each starting `chunkTokens - overlap` after the last.
  const documentTokens = chunkTokens + 9 * (chunkTokens - chunkOverlapTokens);
  const documentsPerTenant = Math.ceil(CHUNKS_PER_TENANT / 10);
  const tenants: TenantContext[] = [];
  const rows: string[][] = [];
  try {
    for (const count of TENANT_STEPS) {
      const added: TenantContext[] = [];
      for (let i = tenants.length; i < count; i++) {
        const record = await onboardTenant(
          { ...deps, tiers: deps.settings.tiers, vectorStores: deps.settings.retrieval.vectorStores },
          { id: `bench-${String(i).padStart(3, '0')}`, tier: 'standard', limits, audit_prompts: false },
        );
        added.push({
          tenantId: record.tenantId,
          tier: record.tier,
          principal: { type: 'api_key', id: 'bench' },
          limits: record.limits,
          auditPrompts: false,
          placements: record.placements,
        });
      }
      const jobs = added.flatMap((tenant) => Array.from({ length: documentsPerTenant }, (_, d) => ({ tenant, d })));
      let chunks = 0;
      const ingestStarted = performance.now();
      await pool(jobs, async ({ tenant, d }) => {
        const record = await ingestDocument(
          deps,
          tenant,
          { id: `doc-${d}`, text: text(d + tenants.length * 7919, documentTokens) },
          { requestId: randomUUID() },
        );
        chunks += record.chunks;
      });
      const ingestSeconds = (performance.now() - ingestStarted) / 1000;
      tenants.push(...added);

      const retrieveMs: number[] = [];
      const searchMs: number[] = [];
      await pool(
        Array.from({ length: QUERIES }, (_, q) => q),
        async (q) => {
          const tenant = tenants[q % tenants.length];
          const query = text(q * 31 + 7, 12);
          const t0 = performance.now();
          await retrievePassages(deps, tenant, { query, topK: 5 }, { requestId: randomUUID() });
          retrieveMs.push(performance.now() - t0);
          const vector = (
            await platform.deps.embedder.embed(tenant, {
              modelId: 'amazon.titan-embed-text-v2:0',
              texts: [query],
              dimensions: 1024,
            })
          ).vectors[0];
          const t1 = performance.now();
          await platform.deps.vectors.search(tenant, { vector, topK: 5 });
          searchMs.push(performance.now() - t1);
        },
      );
      retrieveMs.sort((a, b) => a - b);
      searchMs.sort((a, b) => a - b);
      rows.push([
        String(count),
        String(count * documentsPerTenant * 10),
        String(chunks),
        (chunks / ingestSeconds).toFixed(0),
        percentile(searchMs, 0.5).toFixed(2),
        percentile(searchMs, 0.99).toFixed(2),
        percentile(retrieveMs, 0.5).toFixed(2),
        percentile(retrieveMs, 0.99).toFixed(2),
      ]);
      console.error(`done: ${count} tenants`);
    }
    printTable(
      [
        'tenants',
        'chunks held',
        'chunks ingested',
        'ingest chunks/s',
        'search p50 ms',
        'search p99 ms',
        'retrieve p50 ms',
        'retrieve p99 ms',
      ],
      rows,
    );
    console.log(
      `\n${CHUNKS_PER_TENANT} chunks of ${chunkTokens} tokens per tenant (standard tier: an index each), 1024-dim vectors; ${QUERIES} queries top-5 at concurrency ${CONCURRENCY}. Ingest = chunk + embed (local Titan) + bulk index + document record + metering. Search = the k-NN request alone; retrieve = embed the query + meter it + search. Local mode: exact brute-force search in the local OpenSearch, everything in one process; ${PERSIST ? 'stores journaled to disk (fdatasync per write)' : 'stores in memory'}.`,
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
