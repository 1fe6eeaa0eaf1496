import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { platformConfig } from '../lib/config';
import { startLocalPlatform } from '../local/platform';
import { LOCAL_ADAPTER_LOAD_MS } from '../local/sagemaker-server';
import { adminPost, benchTenant } from './admin';
import { printTable } from './chat';

const CALLS = Number(process.env.BENCH_CALLS ?? 400);
const CONCURRENCY = 8;
const MESSAGES = [{ role: 'user' as const, content: 'Where is my order?' }];

/** Runs `call` CALLS times on CONCURRENCY workers; returns latencies (ms) and wall time. */
async function measure(call: () => Promise<void>): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let remaining = CALLS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (remaining-- > 0) {
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), seconds: (performance.now() - started) / 1000 };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * `npm run bench -- adapters`: a chat completion on a tenant's adapter through the platform
 * (authorizer, adapter lookup with tenant-scoped credentials, ledger reserve and settle, audit,
 * `InvokeEndpoint`) beside the same `InvokeEndpoint` sent directly, both against the local
 * SageMaker Runtime: the difference is the platform's routing and metering overhead per call.
 */
export async function benchAdapters(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-adapters-'));
  let now = Date.now();
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config: platformConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge' })[key]),
    now: () => now,
  });
  try {
    const post = adminPost(platform);
    const apiKey = await benchTenant(platform, { id: 'bench-co', tier: 'enterprise' });
    const adapter = await post('/admin/tenants/bench-co/adapters', {
      name: 'bench-bot',
      artifact_url: 's3://bench-adapters/bench-bot.tar.gz',
    });
    now += LOCAL_ADAPTER_LOAD_MS + 1;
    await platform.adapterWorkflow.runDue();
    const [record] = await platform.deps.registry.listAdapters('bench-co');
    if (record?.status !== 'InService') throw new Error('the adapter did not load');

    const chatWith = (model: string) => async () => {
      const response = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: MESSAGES, max_tokens: 32 }),
      });
      if (response.status !== 200) throw new Error(`platform answered ${response.status}`);
      await response.arrayBuffer();
    };
    const viaPlatform = chatWith(adapter.model);
    const viaBedrock = chatWith('nova-micro');
    const runtime = new SageMakerRuntimeClient({
      region: 'us-east-1',
      endpoint: platform.endpoints.sagemakerRuntime,
      credentials: platform.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    const direct = async () => {
      await runtime.send(
        new InvokeEndpointCommand({
          EndpointName: 'local-adapters',
          InferenceComponentName: record.componentName,
          ContentType: 'application/json',
          Body: JSON.stringify({ messages: MESSAGES, max_tokens: 32 }),
        }),
      );
    };
    // Warm both paths (first STS session, first connections) before measuring.
    for (let i = 0; i < 20; i++) await Promise.all([viaPlatform(), viaBedrock(), direct()]);
    const directRun = await measure(direct);
    const platformRun = await measure(viaPlatform);
    const bedrockRun = await measure(viaBedrock);
    const row = (name: string, run: { latencies: number[]; seconds: number }) => [
      name,
      String(CALLS),
      (CALLS / run.seconds).toFixed(0),
      quantile(run.latencies, 0.5).toFixed(2),
      quantile(run.latencies, 0.99).toFixed(2),
    ];
    printTable(
      ['path', 'calls', 'calls/s', 'p50 ms', 'p99 ms'],
      [
        row('InvokeEndpoint direct', directRun),
        row('POST /v1/chat/completions (adapter)', platformRun),
        row('POST /v1/chat/completions (Bedrock model)', bedrockRun),
      ],
    );
    const overhead = quantile(platformRun.latencies, 0.5) - quantile(directRun.latencies, 0.5);
    const lookup = quantile(platformRun.latencies, 0.5) - quantile(bedrockRun.latencies, 0.5);
    console.log(`\nrouting overhead per call (p50): ${overhead.toFixed(2)} ms`);
    console.log(`of which the adapter lookup (p50, adapter minus Bedrock path): ${lookup.toFixed(2)} ms`);
    console.log(
      `${CONCURRENCY} concurrent clients, local servers on this machine; the overhead is the platform's own work.`,
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
