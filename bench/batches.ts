import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { toFile } from 'openai';
import { MAX_BATCH_LINES, MAX_UPLOAD_BYTES } from '../contract/files';
import { costNanoUsd, resolveModel } from '../lambdas/core/catalog';
import type { TenantContext } from '../lambdas/core/tenant';
import { logger } from '../lambdas/handlers/logger';
import { platformConfig } from '../lib/config';
import { type LocalPlatform, startLocalPlatform } from '../local/platform';
import { benchTenant } from './admin';
import { printTable } from './chat';

const SUBMISSIONS = 5;
const RUN_LINES = 1000;
const POLL_MS = 50;
/** The runner looks at a Bedrock job every minute: the bench moves the platform's clock past it instead of waiting. */
const JOB_POLL_MS = 61_000;
/** Room for the largest batches: the submission reserves their whole estimate against the month. */
const MONTH = { monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };
/** Half of it (a batch's share) covers the 1,000 lines in one minute. */
const RUN_LIMITS = { requestsPerMinute: 2 * RUN_LINES, tokensPerMinute: 2_000_000, ...MONTH };

type Body = Record<string, unknown>;
const chatLine = (i: number, body: Body) =>
  JSON.stringify({ custom_id: String(i), method: 'POST', url: '/v1/chat/completions', body });
const question = (i: number) => ({
  model: 'nova-micro',
  messages: [{ role: 'user', content: `Classify item ${i}` }],
  max_tokens: 16,
});

/** The most short chat lines, up to the batch limit, whose file fits the upload cap. */
function submissionFile(): string[] {
  const rows: string[] = [];
  for (let bytes = 0; rows.length < MAX_BATCH_LINES; ) {
    const row = `${chatLine(rows.length, { model: 'nova-micro', messages: [{ role: 'user', content: 'a' }] })}\n`;
    bytes += Buffer.byteLength(row);
    if (bytes > MAX_UPLOAD_BYTES) break;
    rows.push(row);
  }
  return rows;
}

/** What `work` cost the whole process (the API, the worker and every local AWS server run in it). */
async function measure(platform: LocalPlatform, work: () => Promise<void>) {
  const writeUnits = () => [...platform.dynamodbCapacity.totals.values()].reduce((sum, u) => sum + u.writeUnits, 0);
  const [units, s3, cpu, started] = [writeUnits(), platform.s3.received(), process.cpuUsage(), performance.now()];
  await work();
  const used = process.cpuUsage(cpu);
  return {
    ms: performance.now() - started,
    cpuMs: (used.user + used.system) / 1000,
    writeUnits: writeUnits() - units,
    s3Requests: platform.s3.received() - s3,
  };
}
type Measured = Awaited<ReturnType<typeof measure>>;

const client = (platform: LocalPlatform, apiKey: string) =>
  new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
const upload = async (openai: OpenAI, text: string) =>
  openai.files.create({ file: await toFile(Buffer.from(text), 'lines.jsonl'), purpose: 'batch' });
const create = (openai: OpenAI, input_file_id: string) =>
  openai.batches.create({ input_file_id, endpoint: '/v1/chat/completions', completion_window: '24h' });

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    await sleep(POLL_MS);
  }
}

/**
 * `npm run bench -- batch`: OpenAI's batches on the local platform. The time to admit the largest
 * file an upload holds; then 1,000 lines run on demand (not plain: `response_format`) and 1,000 run
 * as one Bedrock job, each to completed: wall time, the process's CPU, DynamoDB write units and
 * S3 requests a line, and what the tenant was billed against the same lines' on-demand price.
 */
export async function benchBatches(): Promise<void> {
  // The worker logs each step and job: lines that would drown the table.
  logger.setLogLevel('WARN');
  const config = platformConfig();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-batches-'));
  let offsetMs = 0;
  const start = (name: string, ingestWorker: boolean) =>
    startLocalPlatform({ dataDir: join(dataDir, name), port: 0, persist: false, config, ingestWorker, now });
  const now = () => Date.now() + offsetMs;
  const perLine = (name: string, lines: number, m: Measured) => [
    name,
    String(lines),
    m.ms.toFixed(0),
    (m.cpuMs / lines).toFixed(3),
    `${m.writeUnits.toFixed(0)} (${(m.writeUnits / lines).toPrecision(2)})`,
    `${m.s3Requests} (${(m.s3Requests / lines).toPrecision(2)})`,
  ];

  // Submission alone: without the worker, the queued batches do not run beside the next submission.
  const rows = submissionFile();
  const lines = rows.length;
  let platform = await start('submit', false);
  let submission: string[];
  try {
    const openai = client(platform, await benchTenant(platform, { id: 'submit', tier: 'standard', limits: MONTH }));
    const input = await upload(openai, rows.join(''));
    const runs: Measured[] = [];
    for (let i = 0; i < SUBMISSIONS; i++) runs.push(await measure(platform, () => create(openai, input.id).then()));
    runs.sort((a, b) => a.ms - b.ms);
    submission = [
      ...perLine(`submission (p50 of ${SUBMISSIONS})`, lines, runs[Math.floor(SUBMISSIONS / 2)]),
      '-',
      '-',
      '-',
    ];
  } finally {
    await platform.close();
  }

  platform = await start('run', true);
  let tenants = 0;
  /** Waits for the batch's Bedrock job to complete at the local Bedrock, then moves the clock to the runner's next look. */
  const jobRan = async (tenantId: string, id: string) => {
    const inference = platform.deps.batchInference;
    if (!inference) throw new Error('the local platform runs no Bedrock batch jobs');
    const read = () => platform.deps.batches.get({ tenantId } as TenantContext, id);
    const arn = (await until(read, (batch) => !!batch?.job?.arn))?.job?.arn as string;
    await until(
      () => inference.state(arn),
      (state) => state.status === 'Completed',
    );
    offsetMs += JOB_POLL_MS;
    platform.sqs.releaseDue();
  };
  /** A batch of RUN_LINES lines of `body`, from its creation to completed, for a tenant of its own. */
  const run = async (name: string, body: (i: number) => Body, job: boolean) => {
    const tenantId = `batch-${++tenants}`;
    const apiKey = await benchTenant(platform, { id: tenantId, tier: 'standard', limits: RUN_LIMITS });
    const openai = client(platform, apiKey);
    const input = await upload(openai, Array.from({ length: RUN_LINES }, (_, i) => chatLine(i, body(i))).join('\n'));
    let done: OpenAI.Batches.Batch | undefined;
    const m = await measure(platform, async () => {
      const { id } = await create(openai, input.id);
      if (job) await jobRan(tenantId, id);
      done = await until(
        () => openai.batches.retrieve(id),
        (batch) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status),
      );
    });
    if (done?.status !== 'completed' || done.request_counts?.completed !== RUN_LINES) {
      throw new Error(`${name}: ${JSON.stringify(done)}`);
    }
    // The same lines at the on-demand catalog's prices: each output line's model and usage.
    const output = await (await openai.files.content(done.output_file_id as string)).text();
    const onDemandUsd =
      output
        .trim()
        .split('\n')
        .reduce((sum, row) => {
          const { model, usage } = JSON.parse(row).response.body;
          return (
            sum + costNanoUsd(resolveModel(config.models, model, 'chat'), usage.prompt_tokens, usage.completion_tokens)
          );
        }, 0) / 1e9;
    const usage = await fetch(`${platform.url}/v1/usage`, { headers: { authorization: `Bearer ${apiKey}` } });
    const billedUsd = ((await usage.json()) as { totals: { cost_usd: number } }).totals.cost_usd;
    const ratio = billedUsd / onDemandUsd;
    const cells = [...perLine(name, RUN_LINES, m), billedUsd.toFixed(6), onDemandUsd.toFixed(6), ratio.toFixed(3)];
    return { cells, cpuMsPerLine: m.cpuMs / RUN_LINES, ratio };
  };
  const notPlain = (i: number) => ({ ...question(i), response_format: { type: 'json_object' } });
  let runs: Awaited<ReturnType<typeof run>>[] = [];
  try {
    // The first pass warms up (JIT, the tenants' sessions, the ledger's first leases): only the second counts.
    for (let pass = 0; pass < 2; pass++) {
      runs = [await run('on demand (json_object)', notPlain, false), await run('Bedrock job (plain)', question, true)];
    }
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  printTable(
    [
      'batch',
      'lines',
      'wall ms',
      'CPU ms/line',
      'DynamoDB write units (a line)',
      'S3 requests (a line)',
      'billed $',
      'on-demand $',
      'ratio',
    ],
    [submission, ...runs.map((r) => r.cells)],
  );
  console.log(
    `\nCPU: the whole process's (the API, the worker, every local AWS server and the local model run in it; a retrieve every ${POLL_MS} ms too). Write units: as the local DynamoDB counts them. S3: requests to the local S3 (the local Bedrock reads and writes a job's objects in process, uncounted).`,
  );
  if (lines < MAX_BATCH_LINES)
    console.log(`submission: ${lines} lines, the most that fit an upload of ${MAX_UPLOAD_BYTES} bytes`);
  const [onDemand, job] = runs;
  console.log(
    `\nbatch line: ${onDemand.cpuMsPerLine.toFixed(2)} ms CPU on demand, ${job.cpuMsPerLine.toFixed(2)} ms as a job; billed ${onDemand.ratio.toFixed(3)} (on demand) and ${job.ratio.toFixed(3)} (job) of on-demand`,
  );
}
