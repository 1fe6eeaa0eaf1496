import { CHAT, cpuSeconds, DURATION_SECONDS, load, printTable, type Server, startServer } from './chat';

const CONCURRENCY = [1, 16];
const PATH = '/v1/chat/completions';
/** A streamed answer's first token: the first chunk whose delta carries text. */
const FIRST_TOKEN = /"content":"[^"]/;

/** The two cases gateway benchmarks publish: a buffered chat's whole answer, a streamed one's first token. */
const CASES = [
  { name: 'chat', body: CHAT, until: undefined },
  { name: 'first token', body: JSON.stringify({ ...JSON.parse(CHAT), stream: true }), until: FIRST_TOKEN },
] as const;

const ms = (value: number) => value.toFixed(2);

/**
 * `npm run bench -- overhead`: the latency the platform adds to a request, as gateway vendors
 * publish it: p50 and p99 through the platform's API front (authorizer with its cache, handlers,
 * the production adapters and metered ledger, against the local AWS servers in another process,
 * whose model answers at once) less the same for a bare Node server that answers the same body
 * (no auth, no metering), for a buffered chat completion and a streamed one's first token.
 */
export async function benchOverhead(): Promise<void> {
  const emulators = await startServer(['platform']);
  const front = await startServer(['front'], { BENCH_LOCAL_AWS: JSON.stringify(emulators.aws) });
  const platform = { ...front, apiKey: emulators.apiKey };
  const servers: Server[] = [front, emulators];
  try {
    const rows: string[][] = [];
    const lines: string[] = [];
    for (const { name, body, until } of CASES) {
      // The bare server answers what the platform answered, with its content type.
      const sample = await fetch(`${platform.url}${PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.apiKey}` },
        body,
      });
      const bare = await startServer(['bare', await sample.text(), String(sample.headers.get('content-type'))]);
      servers.push(bare);
      for (const connections of CONCURRENCY) {
        // Warm the platform up (JIT, SDK connection pools) before measuring.
        await load(platform, connections, body, PATH, until);
        const base = await load(bare, connections, body, PATH, until);
        const awsCpuBefore = cpuSeconds(emulators.pid);
        const measured = await load(platform, connections, body, PATH, until);
        const awsCpuMs = ((cpuSeconds(emulators.pid) - awsCpuBefore) * 1000) / Math.max(measured.requests, 1);
        const added = [measured.p50Ms - base.p50Ms, measured.p99Ms - base.p99Ms];
        rows.push([
          name,
          String(connections),
          String(measured.requests),
          ms(measured.p50Ms),
          ms(measured.p99Ms),
          ms(base.p50Ms),
          ms(base.p99Ms),
          ms(added[0]),
          ms(added[1]),
          ms(measured.cpuMsPerRequest),
          ms(awsCpuMs),
          String(measured.failures + base.failures),
        ]);
        const conns = `${connections} connection${connections === 1 ? '' : 's'}`;
        lines.push(`added latency, ${name}, ${conns}: p50 ${ms(added[0])} ms, p99 ${ms(added[1])} ms`);
      }
    }
    printTable(
      [
        'case',
        'conns',
        'platform requests',
        'platform p50 ms',
        'platform p99 ms',
        'bare p50 ms',
        'bare p99 ms',
        'added p50 ms',
        'added p99 ms',
        'front CPU ms/req',
        'local AWS CPU ms/req',
        'non-2xx+errors',
      ],
      rows,
    );
    console.log(`\n${lines.join('\n')}`);
    console.log(
      `\nPOST ${PATH}, ${DURATION_SECONDS}s per cell (BENCH_SECONDS), closed loop, local mode: the platform's API front (authorizer, cached; middy handler; ledger reserve, Bedrock Converse or ConverseStream, the settle with the audit record, through the AWS SDK) in one process, the local AWS servers in another, the local model answering at once; the bare server is a plain Node server returning the platform's answer (the same body, or the same server-sent events at once). Added = platform minus bare, percentile by percentile; it includes the local AWS servers' time (CPU per request of the front and of the local AWS servers, from /proc). The first token is the first event with text.`,
    );
  } finally {
    for (const server of servers) server.process.kill('SIGINT');
  }
}
