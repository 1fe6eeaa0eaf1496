import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { costNanoUsd, resolveModel } from '../lambdas/core/catalog';
import { create as createAuthorizer } from '../lambdas/handlers/authorizer';
import { platformConfig } from '../lib/config';
import { DEFAULT_MEMORY_MB, FUNCTION_ARCHITECTURE, FUNCTION_TRACING } from '../lib/constructs/platform-function';
import { lambdaContext } from '../local/lambda-context';
import { type LocalPlatform, startLocalPlatform } from '../local/platform';
import { benchTenant } from './admin';
import { CHAT, printTable } from './chat';
import {
  type ChatFootprint,
  costPerMillionChats,
  guardrailTextUnits,
  type LambdaArchitecture,
  lambdaUsdPerMillion,
  PRICES,
} from './pricing';

const CHATS = Number(process.env.BENCH_COST_CHATS ?? 200);
const WARM_UP = 20;
const CHATS_PER_MONTH = Number(process.env.BENCH_COST_CHATS_PER_MONTH ?? 10_000_000);
const AUTHORIZER_CACHE_HIT_RATIO = Number(process.env.BENCH_COST_AUTHORIZER_HIT_RATIO ?? 0.9);
const CHAT_ROUTE = 'POST /v1/chat/completions';

/** What a piece of work wrote to stdout and stderr (the functions' log lines and EMF), and the DynamoDB units it consumed, by table. */
async function observe(platform: LocalPlatform, work: () => Promise<void>) {
  const unitsByTable = () => {
    const totals = new Map<string, { read: number; write: number }>();
    for (const [key, units] of platform.dynamodbCapacity.totals) {
      const table = key.split('/')[0];
      const total = totals.get(table) ?? { read: 0, write: 0 };
      totals.set(table, { read: total.read + units.readUnits, write: total.write + units.writeUnits });
    }
    return totals;
  };
  const before = unitsByTable();
  const lines: string[] = [];
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof stream.write;
  }
  try {
    await work();
  } finally {
    streams.forEach((stream, i) => {
      stream.write = writes[i];
    });
  }
  const units = [...unitsByTable()].map(([table, after]) => ({
    table,
    read: after.read - (before.get(table)?.read ?? 0),
    write: after.write - (before.get(table)?.write ?? 0),
  }));
  return { lines, units, bytes: lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0) };
}

/** What Lambda itself writes per invocation (text log format, tracing active), at typical widths. */
function lambdaLogBytes(ms: number, memoryMb: number): number {
  const id = randomUUID();
  const lines = [
    `START RequestId: ${id} Version: $LATEST`,
    `END RequestId: ${id}`,
    `REPORT RequestId: ${id}\tDuration: ${ms.toFixed(2)} ms\tBilled Duration: ${Math.ceil(ms)} ms\tMemory Size: ${memoryMb} MB\tMax Memory Used: 128 MB\t`,
    'XRAY TraceId: 1-6756f2a0-3b5c1e2d4f6a7b8c9d0e1f2a\tSegmentId: 1a2b3c4d5e6f7a8b\tSampled: true\t',
  ];
  return lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
}

/** One line of the stage's access log (its format in `lib/constructs/tenant-api.ts`), with typical values. */
function accessLogBytes(tenantId: string): number {
  return Buffer.byteLength(
    JSON.stringify({
      requestId: randomUUID(),
      time: '07/Dec/2026:12:00:00 +0000',
      method: 'POST',
      resource: '/v1/chat/completions',
      status: '200',
      latencyMs: '850',
      tenantId,
      principalId: `key-${randomUUID()}`,
      errorType: '-',
      sourceIp: '203.0.113.10',
    }),
  );
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
const emf = (line: string) => line.startsWith('{"_aws":');

/**
 * `npm run bench -- cost`: what a metered chat costs on AWS beside the model's own price. Real
 * metered chats through the local platform (the production handlers and adapters) give what each
 * one uses: DynamoDB units as the local front counts them, the lines the functions log and the EMF
 * metrics, the handlers' wall time as a stand-in for Lambda's duration; one table of list prices
 * (`bench/pricing.ts`) prices them.
 */
export async function benchCost(): Promise<void> {
  // The functions' EMF lines are what CloudWatch ingests and bills on AWS: count them.
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  const config = platformConfig();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-cost-'));
  const platform = await startLocalPlatform({ dataDir, port: 0, persist: false, config });
  try {
    const tenantId = 'bench';
    // A tenant of the standard tier, at its limits (well above this bench's 200 chats in a few seconds).
    const apiKey = await benchTenant(platform, { id: tenantId, tier: 'standard' });
    const answers: { content: string; inputTokens: number; outputTokens: number }[] = [];
    const chat = async () => {
      const response = await fetch(`${platform.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
        body: CHAT,
      });
      const body = (await response.json()) as {
        choices: { message: { content: string } }[];
        usage: { prompt_tokens: number; completion_tokens: number };
      };
      if (response.status !== 200) throw new Error(`chat answered ${response.status}: ${JSON.stringify(body)}`);
      answers.push({
        content: body.choices[0].message.content,
        inputTokens: body.usage.prompt_tokens,
        outputTokens: body.usage.completion_tokens,
      });
    };
    // Warm-up, not counted: JIT, the tenant's session, each ledger shard's first lease of the month.
    await observe(platform, async () => {
      for (let i = 0; i < WARM_UP; i++) await chat();
    });
    answers.length = 0;
    const chats = await observe(platform, async () => {
      for (let i = 0; i < CHATS; i++) await chat();
    });

    // The authorizer, as API Gateway invokes it on a cache miss: the production handler, timed.
    const authorizer = createAuthorizer(platform.deps);
    const event = {
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:000000000000:api/prod/POST/v1/chat/completions',
      headers: { authorization: `Bearer ${apiKey}` },
    } as unknown as APIGatewayRequestAuthorizerEvent;
    for (let i = 0; i < WARM_UP; i++) await authorizer(event, lambdaContext());
    const authorizerMs: number[] = [];
    const authorizations = await observe(platform, async () => {
      for (let i = 0; i < CHATS; i++) {
        const started = performance.now();
        await authorizer(event, lambdaContext());
        authorizerMs.push(performance.now() - started);
      }
    });

    const chatHandlerMs = mean(
      chats.lines.filter(emf).flatMap((line) => {
        const parsed = JSON.parse(line);
        return parsed.route === CHAT_ROUTE ? [parsed.Latency as number] : [];
      }),
    );
    const memoryMb = DEFAULT_MEMORY_MB;
    const architecture = FUNCTION_ARCHITECTURE.name as LambdaArchitecture;
    const { tenantTableName, auditTableName } = platform.deps.settings;
    const chatUnits = chats.units.filter((u) => u.table !== tenantTableName);
    // The audit table's local secondary index (projection ALL): dynalite reports no units for its writes.
    const lsiWriteUnits =
      chatUnits.filter((u) => u.table === auditTableName).reduce((sum, u) => sum + u.write, 0) / CHATS;
    const chatWriteUnits = chatUnits.reduce((sum, u) => sum + u.write, 0) / CHATS + lsiWriteUnits;
    const chatReadUnits = chatUnits.reduce((sum, u) => sum + u.read, 0) / CHATS;
    const authorizerReadUnits = authorizations.units.reduce((sum, u) => sum + u.read, 0) / CHATS;
    const emfLines = chats.lines.filter(emf);
    const metrics = new Set(
      emfLines.flatMap((line) => {
        const parsed = JSON.parse(line);
        return parsed._aws.CloudWatchMetrics.flatMap(
          (directive: { Dimensions: string[][]; Metrics: { Name: string }[] }) =>
            directive.Dimensions.flatMap((set) =>
              directive.Metrics.map((m) => `${m.Name}|${set.map((d) => `${d}=${parsed[d]}`).join(',')}`),
            ),
        );
      }),
    );
    const tiers = Object.keys(config.tiers).length;
    const model = resolveModel(config.models, JSON.parse(CHAT).model, 'chat');
    const inputTokens = mean(answers.map((a) => a.inputTokens));
    const outputTokens = mean(answers.map((a) => a.outputTokens));
    const question = JSON.parse(CHAT)
      .messages.map((m: { content: string }) => m.content)
      .join('');
    const outputCharacters = mean(answers.map((a) => a.content.length));
    const footprint: ChatFootprint = {
      memoryMb,
      architecture,
      chatHandlerMs,
      authorizerMs: mean(authorizerMs),
      authorizerCacheHitRatio: AUTHORIZER_CACHE_HIT_RATIO,
      chatWriteUnits,
      chatReadUnits,
      authorizerReadUnits,
      chatLogBytes: chats.bytes / CHATS + lambdaLogBytes(chatHandlerMs, memoryMb) + accessLogBytes(tenantId),
      authorizerLogBytes: authorizations.bytes / CHATS + lambdaLogBytes(mean(authorizerMs), memoryMb),
      customMetrics: metrics.size * tiers,
      chatsPerMonth: CHATS_PER_MONTH,
      tracing: FUNCTION_TRACING === 'Active',
      guardrailTextUnits: config.guardrails ? guardrailTextUnits(question.length, outputCharacters) : undefined,
    };
    const components = costPerMillionChats(footprint);
    const units = footprint.guardrailTextUnits;
    const what: Record<string, string> = {
      'API Gateway REST requests': '1 request',
      'Lambda chat handler': `1 invocation, ${chatHandlerMs.toFixed(1)} ms, ${memoryMb} MB ${architecture}`,
      'Lambda authorizer (cache misses)': `${(1 - AUTHORIZER_CACHE_HIT_RATIO).toFixed(2)} invocation, ${footprint.authorizerMs.toFixed(1)} ms`,
      'DynamoDB on-demand': `${chatWriteUnits.toFixed(2)} WRU (${lsiWriteUnits.toFixed(2)} of them the audit LSI), ${(chatReadUnits + (1 - AUTHORIZER_CACHE_HIT_RATIO) * authorizerReadUnits).toFixed(2)} RRU`,
      'CloudWatch Logs ingestion': `${Math.round(footprint.chatLogBytes + (1 - AUTHORIZER_CACHE_HIT_RATIO) * footprint.authorizerLogBytes)} bytes (${emfLines.length / CHATS} EMF lines)`,
      'CloudWatch custom metrics (EMF)': `${metrics.size} metrics x ${tiers} tiers a month, over ${CHATS_PER_MONTH / 1e6} M chats`,
      'X-Ray traces': `default sampling at ${CHATS_PER_MONTH / 1e6} M chats a month`,
      'Bedrock Guardrails': units
        ? `${units.contentFilters} + ${units.deniedTopics} + ${units.sensitiveInformation} text units (prompt attack, topics, PII)`
        : '',
    };
    const platformUsd = components.reduce((sum, c) => sum + c.usdPerMillionChats, 0);
    const guardrailUsd = components.find((c) => c.component === 'Bedrock Guardrails')?.usdPerMillionChats ?? 0;
    const modelUsd = costNanoUsd(model, inputTokens, outputTokens) / 1000;
    printTable(
      ['component', 'per chat', '$ per million chats'],
      components.map((c) => [c.component, what[c.component], c.usdPerMillionChats.toFixed(2)]),
    );
    const share = (usd: number) => `${((100 * usd) / (usd + modelUsd)).toFixed(1)} %`;
    console.log(`\n$ per million metered chats: ${platformUsd.toFixed(2)}`);
    console.log(
      `without Bedrock Guardrails: ${(platformUsd - guardrailUsd).toFixed(2)}; the model (${model.name}, ${inputTokens} input + ${outputTokens} output tokens a chat): ${modelUsd.toFixed(2)}`,
    );
    console.log(
      `platform share of platform + model: ${share(platformUsd)} (${share(platformUsd - guardrailUsd)} without guardrails)`,
    );
    const per100Ms = lambdaUsdPerMillion(100, memoryMb, architecture) - PRICES.lambdaUsdPerMillionRequests;
    console.log(
      `\nAssumptions: us-east-1 list prices, no free tier (bench/pricing.ts). Lambda duration: the handlers' wall time in local mode (${CHATS} sequential chats, local model and DynamoDB answering at once); on AWS the chat handler also waits for the model: each 100 ms adds ${per100Ms.toFixed(2)} $ per million chats.`,
    );
    console.log(
      `Authorizer: ${AUTHORIZER_CACHE_HIT_RATIO * 100} % of calls answered from API Gateway's cache (BENCH_COST_AUTHORIZER_HIT_RATIO). DynamoDB: units as the local front counts them from what dynalite reports, plus the audit LSI's write (projection ALL: as many units as the item), which dynalite leaves out.`,
    );
    console.log(
      `Logs: the lines the functions wrote, Lambda's START/END/REPORT and the access log line. EMF: billed as those log bytes, plus ${metrics.size * tiers} custom metrics a month whatever the volume, spread over ${CHATS_PER_MONTH / 1e6} M chats (BENCH_COST_CHATS_PER_MONTH); they count other routes' requests too. X-Ray: 1 trace a second, then 5 %.`,
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
