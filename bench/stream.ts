import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BedrockRuntimeClient, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { platformConfig } from '../lib/config';
import { startLocalPlatform } from '../local/platform';
import { benchTenant } from './admin';
import { printTable } from './chat';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** A local word every 5 ms, about a real small model's pace. */
const WORD_DELAY_MS = Number(process.env.BENCH_WORD_DELAY_MS ?? 5);
const QUESTION = 'Tell me about the northern lights over the fjords tonight, please, in some detail';

interface Timing {
  readonly firstMs: number;
  readonly totalMs: number;
}

/** Runs `stream` `ROUNDS` times on each of `connections` clients at once; timings of every stream. */
async function measure(connections: number, stream: () => Promise<Timing>): Promise<Timing[]> {
  const timings: Timing[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let round = 0; round < ROUNDS; round++) timings.push(await stream());
    }),
  );
  return timings;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * `npm run bench -- stream`: time to the first token and to the end of a streamed chat completion
 * through the platform (authorizer, ledger reserve, SSE through the local front, settle) beside the
 * local model's `ConverseStream` read directly, at 1 and 16 concurrent connections.
 */
export async function benchStream(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-stream-'));
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config: platformConfig(),
    modelWordDelayMs: WORD_DELAY_MS,
  });
  try {
    const apiKey = await benchTenant(platform, { id: 'bench-co', tier: 'enterprise' });
    const body = JSON.stringify({
      model: 'nova-micro',
      messages: [{ role: 'user', content: QUESTION }],
      stream: true,
    });
    const viaPlatform = async (): Promise<Timing> => {
      const started = performance.now();
      const response = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body,
      });
      const reader = response.body?.getReader();
      let firstMs = 0;
      for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
        firstMs ||= performance.now() - started;
      }
      return { firstMs, totalMs: performance.now() - started };
    };
    const bedrock = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: platform.endpoints.bedrock,
      credentials: platform.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    const direct = async (): Promise<Timing> => {
      const started = performance.now();
      const output = await bedrock.send(
        new ConverseStreamCommand({
          modelId: 'amazon.nova-micro-v1:0',
          messages: [{ role: 'user', content: [{ text: QUESTION }] }],
          inferenceConfig: { maxTokens: 512 },
        }),
      );
      let firstMs = 0;
      for await (const event of output.stream ?? []) {
        if (event.contentBlockDelta) firstMs ||= performance.now() - started;
      }
      return { firstMs, totalMs: performance.now() - started };
    };
    await Promise.all([viaPlatform(), direct()]);
    const rows: string[][] = [];
    for (const connections of [1, 16]) {
      for (const [name, stream] of [
        ['local model, ConverseStream direct', direct],
        ['POST /v1/chat/completions stream', viaPlatform],
      ] as const) {
        const timings = await measure(connections, stream);
        rows.push([
          name,
          String(connections),
          String(timings.length),
          median(timings.map((t) => t.firstMs)).toFixed(1),
          median(timings.map((t) => t.totalMs)).toFixed(1),
        ]);
      }
    }
    printTable(['path', 'connections', 'streams', 'first token p50 ms', 'total p50 ms'], rows);
    console.log(`\nThe local model streams a word every ${WORD_DELAY_MS} ms (BENCH_WORD_DELAY_MS).`);
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
