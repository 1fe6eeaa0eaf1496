import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { runLoad } from './load';

export const DURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 16];
/** The bench's typical chat: one short question, a short answer. */
export const CHAT = JSON.stringify({
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'Give me a short status update on the platform.' }],
  max_tokens: 64,
});
/** An agent's first turn: one tool offered, the model calls it. */
const TOOL_CHAT = JSON.stringify({
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  tools: [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Get the current weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ],
  max_tokens: 64,
});

export interface Server {
  readonly url: string;
  readonly apiKey?: string;
  /** A `platform` server's local AWS, for a `front` to use. */
  readonly aws?: unknown;
  readonly process: ChildProcess;
  readonly pid: number;
}

export async function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  // BENCH_PROFILE_DIR: a V8 CPU profile of the platform (its front, or the whole local platform), written there when it stops.
  const profile = ['front', 'platform'].includes(args[0]) && process.env.BENCH_PROFILE_DIR;
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', 'bench/servers.ts', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      ...env,
    },
  });
  if (!child.stdout || child.pid === undefined) throw new Error('could not start the server under benchmark');
  const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
  return { ...JSON.parse(String(first.value)), process: child, pid: child.pid };
}

/** CPU seconds the process has used (user + system), from /proc: the server's own cost per request. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Load on one route of `server` for a cell; the server's CPU per request from /proc. With `until`,
 * latency runs to the first moment the body received matches it (see `runLoad`).
 */
export async function load(
  server: Server,
  connections: number,
  body = CHAT,
  path = '/v1/chat/completions',
  until?: RegExp,
) {
  const cpuBefore = cpuSeconds(server.pid);
  const result = await runLoad({
    url: `${server.url}${path}`,
    method: 'POST',
    connections,
    seconds: DURATION_SECONDS,
    headers: { 'content-type': 'application/json', ...(server.apiKey && { authorization: `Bearer ${server.apiKey}` }) },
    body,
    until,
  });
  return {
    ...result,
    cpuMsPerRequest: ((cpuSeconds(server.pid) - cpuBefore) * 1000) / Math.max(result.requests, 1),
  };
}

/**
 * `npm run bench -- chat`: metered chat completions through the platform's API front in its own
 * process, against the local AWS servers (DynamoDB, STS, Bedrock...) in another: the front's CPU
 * is the platform's own cost per call (API front, authorizer, handler, SDK calls), beside a bare
 * Node server answering the same body.
 */
export async function benchChat(): Promise<void> {
  const emulators = await startServer(['platform']);
  const front = await startServer(['front'], { BENCH_LOCAL_AWS: JSON.stringify(emulators.aws) });
  const platform = { ...front, apiKey: emulators.apiKey };
  const sample = await fetch(`${platform.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.apiKey}` },
    body: CHAT,
  });
  const bare = await startServer(['bare', await sample.text()]);
  try {
    const rows: string[][] = [];
    let platformCpuMs = 0;
    let toolCpuMs = 0;
    for (const connections of CONCURRENCY) {
      // Warm the platform up (JIT, SDK connection pools) before measuring.
      await load(platform, connections);
      await load(platform, connections, TOOL_CHAT);
      const base = await load(bare, connections);
      const measured = await load(platform, connections);
      const tools = await load(platform, connections, TOOL_CHAT);
      platformCpuMs = measured.cpuMsPerRequest;
      toolCpuMs = tools.cpuMsPerRequest;
      rows.push(
        row('bare node http', connections, base),
        row('platform chat', connections, measured),
        row('platform tool-calling chat', connections, tools),
        [
          'overhead (platform / bare)',
          String(connections),
          ratio(base.rps, measured.rps),
          ratio(measured.p50Ms, base.p50Ms),
          ratio(measured.p99Ms, base.p99Ms),
          ratio(measured.cpuMsPerRequest, base.cpuMsPerRequest),
          '',
        ],
      );
    }
    printTable(['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'non-2xx+errors'], rows);
    console.log(`\nplatform process CPU per metered chat: ${platformCpuMs.toFixed(2)} ms`);
    console.log(`platform process CPU per tool-calling chat: ${toolCpuMs.toFixed(2)} ms`);
    console.log(
      `\nPOST /v1/chat/completions, ${DURATION_SECONDS}s per cell, local mode: the platform's API front (authorizer, cached; middy handler; ledger reserve and the settle with the audit record through the platform's lean DynamoDB client, Bedrock Converse through the AWS SDK) in one process, the local AWS servers in another; CPU is the front's, from /proc, at ${CONCURRENCY.at(-1)} connections. The tool-calling chat offers one tool, which the model calls (its arguments screened by the tier's guardrail). The bare server returns the plain chat's body.`,
    );
  } finally {
    for (const server of [front, emulators, bare]) server.process.kill('SIGINT');
  }
}

export function row(name: string, connections: number, r: Awaited<ReturnType<typeof load>>): string[] {
  return [
    name,
    String(connections),
    r.rps.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.cpuMsPerRequest.toFixed(3),
    String(r.failures),
  ];
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(1)}x` : '-';
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}
