import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chunkText } from '../lambdas/core/retrieval';
import { countTokens } from '../lambdas/core/tokens';
import { logger } from '../lambdas/handlers/logger';
import { offboardingDrainSeconds, platformConfig } from '../lib/config';
import { type LocalPlatform, startLocalPlatform } from '../local/platform';
import { benchTenant } from './admin';
import { printTable } from './chat';

const TENANT = 'move-co';
const CALLS_PER_SECOND = 20;
/** Every fourth call uploads a document, the others chat; every fourth upload is queued (202). */
const UPLOAD_EVERY = 4;
const QUEUED_EVERY = 4;
const CACHE_TTL_SECONDS = 1;
const HANDLER_TIMEOUT_SECONDS = 10;
const DRAIN_MARGIN_SECONDS = 5;
/** The drain the bench runs with: the production formula's shape, with a 1 s cache and 10 s handlers. */
const DRAIN_SECONDS = CACHE_TTL_SECONDS + HANDLER_TIMEOUT_SECONDS + DRAIN_MARGIN_SECONDS;
const LOAD_BEFORE_MS = 3000;
const LOAD_AFTER_MS = 5000;

interface Call {
  readonly kind: 'chat' | 'upload';
  readonly start: number;
  end: number;
  status: number;
  code?: string;
  message?: string;
  /** What a 2xx answer costs: a chat's reported usage; a document's chunks and its text's embedding tokens. */
  billed?: { input: number; output: number; chunks?: number; documentId?: string; queued?: boolean };
}

/** The fields of an answer the bench reads: an error, a chat's usage, or a document. */
interface Answer {
  readonly error?: { readonly code: string; readonly message: string };
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number };
  readonly id?: string;
  readonly chunks?: number;
  readonly status?: string;
}

/** Totals per model: requests and tokens. */
type Usage = Record<string, { requests: number; input_tokens: number; output_tokens: number }>;

/**
 * `npm run bench -- promote`: a tenant moved from the pool to its silo, then back to the pool,
 * under a steady open-loop load of 20 calls/s against the pool's URL (a call every 50 ms whatever
 * the answers: three chats to one document upload, a quarter of the uploads large enough to be
 * queued), the local placement runner driven to `complete` each time, the load kept up a few
 * seconds after. It prints the calls by outcome, how many were refused (any 4xx: every call is
 * valid) during the moves and the longest run of consecutive refusals (start to start), and
 * whether the tenant's bill (its usage, read at the pool) is exactly what the answered calls
 * reported. Exits 1 if a call was lost or billed twice, or answered 5xx or not at all.
 */
export async function benchPromote(): Promise<void> {
  // The pool's ingest worker logs each job it leaves to the silo: lines that would drown the table.
  logger.setLogLevel('WARN');
  const config = { ...platformConfig(), authorizerCacheTtlSeconds: CACHE_TTL_SECONDS };
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-promote-'));
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config,
    handlerTimeoutMs: HANDLER_TIMEOUT_SECONDS * 1000,
    drainSeconds: DRAIN_SECONDS,
  });
  const started = performance.now();
  const at = () => ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `drain: ${DRAIN_SECONDS} s (authorizer cache TTL ${CACHE_TTL_SECONDS} s + handler timeout ${HANDLER_TIMEOUT_SECONDS} s + margin ${DRAIN_MARGIN_SECONDS} s; ${offboardingDrainSeconds(platformConfig())} s with the defaults)`,
  );
  try {
    const limits = { requestsPerMinute: 1e6, tokensPerMinute: 1e9, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };
    const apiKey = await benchTenant(platform, { id: TENANT, tier: 'enterprise', limits });
    const calls: Call[] = [];
    for (let i = 0; i < 3; i++) calls.push(await send(platform.url, apiKey, 'upload', -i - 1));

    // The load: call i starts at i × 50 ms, answered or not.
    let stop = false;
    const inFlight: Promise<unknown>[] = [];
    const load = (async () => {
      const t0 = performance.now();
      for (let i = 0; !stop; i++) {
        const wait = t0 + (i * 1000) / CALLS_PER_SECOND - performance.now();
        if (wait > 0) await sleep(wait);
        const kind = i % UPLOAD_EVERY === UPLOAD_EVERY - 1 ? 'upload' : 'chat';
        inFlight.push(send(platform.url, apiKey, kind, i).then((call) => calls.push(call)));
      }
    })();

    // To the silo, then back to the pool, each driven to its end under the load.
    for (const move of ['promote', 'demote']) {
      await sleep(LOAD_BEFORE_MS);
      const asked = await admin(platform, 'POST', `/admin/tenants/${TENANT}/${move}`);
      if (asked.placement_status !== 'requested') throw new Error(`${move}: ${JSON.stringify(asked)}`);
      console.log(`t=${at()} s ${move} requested`);
      let status = 'requested';
      while (status !== 'complete') {
        await platform.placement.runDue();
        const tenant = await admin(platform, 'GET', `/admin/tenants/${TENANT}`);
        if (tenant.placement_status === 'failed') throw new Error(`the move failed: ${tenant.placement_error}`);
        if (tenant.placement_status !== status) {
          status = tenant.placement_status;
          const copied = status === 'complete' ? ` (copied: ${JSON.stringify(tenant.migrated)})` : '';
          console.log(`t=${at()} s ${status}${copied}`);
        }
        await sleep(100);
      }
    }
    await sleep(LOAD_AFTER_MS);
    stop = true;
    await load;
    await Promise.all(inFlight);
    await indexed(platform.url, apiKey, calls);

    const usage = await fetch(`${platform.url}/v1/usage?group_by=model`, { headers: auth(apiKey) });
    const billed = toUsage(((await usage.json()) as { data: ({ model: string } & Usage[string])[] }).data);
    report(calls, expectedUsage(calls, config.retrieval.syncMaxChunks), billed, config.retrieval.embeddingModel);
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const auth = (credential: string) => ({ authorization: `Bearer ${credential}`, 'content-type': 'application/json' });

async function admin(platform: LocalPlatform, method: string, path: string) {
  const response = await fetch(`${platform.url}${path}`, { method, headers: auth(platform.operatorToken) });
  return (await response.json()) as Record<string, string> & { migrated?: Record<string, number> };
}

/** One call of the load, timed: a chat, or a document small enough to be embedded now or large enough to be queued. */
async function send(url: string, apiKey: string, kind: Call['kind'], i: number): Promise<Call> {
  const sentence = `Parcel ${i} leaves the warehouse on a weekday and reaches its customer within three days. `;
  const queued = kind === 'upload' && i % (UPLOAD_EVERY * QUEUED_EVERY) === UPLOAD_EVERY * QUEUED_EVERY - 1;
  const text = sentence.repeat(queued ? 400 : 2);
  const chat = { model: 'nova-micro', messages: [{ role: 'user', content: sentence }], max_tokens: 32 };
  const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/documents';
  const body = JSON.stringify(kind === 'chat' ? chat : { title: `Note ${i}`, text });
  const call: Call = { kind, start: performance.now(), end: 0, status: 0 };
  try {
    const response = await fetch(`${url}${path}`, { method: 'POST', headers: auth(apiKey), body });
    const answer = (await response.json()) as Answer;
    call.status = response.status;
    if (answer.error) Object.assign(call, { code: answer.error.code, message: answer.error.message });
    else if (answer.usage) call.billed = { input: answer.usage.prompt_tokens, output: answer.usage.completion_tokens };
    else {
      const { chunks = 0, id: documentId, status } = answer;
      call.billed = { input: embeddedTokens(text), output: 0, chunks, documentId, queued: status === 'queued' };
    }
  } catch (error) {
    call.message = String(error);
  }
  call.end = performance.now();
  return call;
}

/**
 * What the embedding model bills for a document: the tokens of each of its chunks, as the local
 * Titan counts them. (The document's `tokens` is the chunker's sum of per-word bounds, a few
 * tokens more.)
 */
function embeddedTokens(text: string): number {
  const { chunkTokens, chunkOverlapTokens } = platformConfig().retrieval;
  return chunkText(text, chunkTokens, chunkOverlapTokens).reduce((sum, chunk) => sum + countTokens(chunk.text), 0);
}

/** Waits (30 s at most) until every queued document is indexed: its embeddings are billed when its jobs run. */
async function indexed(url: string, apiKey: string, calls: readonly Call[]): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (const call of calls.filter((c) => c.billed?.queued)) {
    for (;;) {
      const response = await fetch(`${url}/v1/documents/${call.billed?.documentId}`, { headers: auth(apiKey) });
      if (((await response.json()) as { status?: string }).status === 'indexed') break;
      if (performance.now() > deadline) throw new Error(`document ${call.billed?.documentId} was never indexed`);
      await sleep(200);
    }
  }
}

/** What the answers say the tenant owes: each chat's usage; each document's tokens, one embedding call per job. */
function expectedUsage(calls: readonly Call[], syncMaxChunks: number): Usage {
  const usage: Usage = {};
  for (const { kind, billed } of calls) {
    if (!billed) continue;
    const model = kind === 'chat' ? 'nova-micro' : 'titan-embed-text-v2';
    const line = usage[model] ?? { requests: 0, input_tokens: 0, output_tokens: 0 };
    usage[model] = line;
    line.requests += kind === 'chat' ? 1 : Math.ceil((billed.chunks ?? 0) / syncMaxChunks);
    line.input_tokens += billed.input;
    line.output_tokens += billed.output;
  }
  return usage;
}

function toUsage(lines: readonly ({ model: string } & Usage[string])[]): Usage {
  return Object.fromEntries(
    lines.map(({ model, requests, input_tokens, output_tokens }) => [model, { requests, input_tokens, output_tokens }]),
  );
}

/** Every call of the load is valid: any 4xx is a refusal the moves caused. */
const isRefusal = (call: Call) => call.status >= 400 && call.status < 500;

function report(calls: Call[], expected: Usage, billed: Usage, embeddingModel: string): void {
  calls.sort((a, b) => a.start - b.start);
  const outcome = (call: Call) =>
    call.status >= 200 && call.status < 300 ? 'ok' : isRefusal(call) ? 'refused (4xx)' : 'other';
  const rows = ['ok', 'refused (4xx)', 'other'].map((name) => [
    name,
    ...(['chat', 'upload'] as const).map((kind) =>
      String(calls.filter((c) => c.kind === kind && outcome(c) === name).length),
    ),
  ]);
  printTable(['outcome', 'chats', 'uploads'], rows);
  const others = new Map<string, number>();
  for (const call of calls.filter((c) => outcome(c) !== 'ok')) {
    const key = `${call.status} ${call.code ?? ''} ${call.message ?? ''}`;
    others.set(key, (others.get(key) ?? 0) + 1);
  }
  for (const [key, count] of others) console.log(`  not ok: ${count} × ${key}`);

  // The longest run of consecutive refusals, from its first call's start to its last's.
  let longestMs = 0;
  let runStart: number | undefined;
  for (const call of calls) {
    if (!isRefusal(call)) {
      runStart = undefined;
      continue;
    }
    runStart ??= call.start;
    longestMs = Math.max(longestMs, call.start - runStart);
  }

  // A model's line off by requests counts that many calls; off by tokens alone, one.
  const rowsUsage: string[][] = [];
  let wrong = 0;
  for (const model of new Set([...Object.keys(expected), ...Object.keys(billed), 'nova-micro', embeddingModel])) {
    const want = expected[model] ?? { requests: 0, input_tokens: 0, output_tokens: 0 };
    const got = billed[model] ?? { requests: 0, input_tokens: 0, output_tokens: 0 };
    const requests = Math.abs(got.requests - want.requests);
    const tokensOff = got.input_tokens !== want.input_tokens || got.output_tokens !== want.output_tokens;
    wrong += requests || (tokensOff ? 1 : 0);
    const cell = (key: keyof typeof want) => `${got[key]} / ${want[key]}`;
    rowsUsage.push([model, cell('requests'), cell('input_tokens'), cell('output_tokens')]);
  }
  console.log();
  printTable(['model (billed / answered)', 'requests', 'input tokens', 'output tokens'], rowsUsage);
  const unanswered = calls.filter((c) => c.status === 0 || c.status >= 500).length;
  console.log(`\n5xx or no answer: ${unanswered}`);
  console.log(
    `refused during move (to the silo and back): ${calls.filter(isRefusal).length} calls, longest refusal window: ${(longestMs / 1000).toFixed(1)} s, lost or double-billed: ${wrong}`,
  );
  if (wrong > 0 || unanswered > 0) throw new Error('the move lost, double-billed or failed calls');
}
