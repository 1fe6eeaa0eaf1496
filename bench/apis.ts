import { load, printTable, row, startServer } from './chat';

const CONNECTIONS = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const QUESTION = 'Give me a short status update on the platform.';

/** The same question through each model API: buffered bodies, and the streamed one with `stream: true`. */
const APIS = [
  {
    name: 'chat completions',
    path: '/v1/chat/completions',
    body: { model: 'nova-micro', messages: [{ role: 'user', content: QUESTION }], max_tokens: 64 },
  },
  { name: 'responses', path: '/v1/responses', body: { model: 'nova-micro', input: QUESTION, max_output_tokens: 64 } },
  {
    name: 'messages',
    path: '/v1/messages',
    body: { model: 'nova-micro', messages: [{ role: 'user', content: QUESTION }], max_tokens: 64 },
  },
];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * `npm run bench -- apis`: the three model APIs side by side, each a codec over the one metered
 * core: the platform front's CPU per buffered call at 16 connections (its own process, from
 * /proc), and the median time to the first streamed event, one stream at a time.
 */
export async function benchApis(): Promise<void> {
  const emulators = await startServer(['platform']);
  const front = await startServer(['front'], { BENCH_LOCAL_AWS: JSON.stringify(emulators.aws) });
  const platform = { ...front, apiKey: emulators.apiKey };
  try {
    const rows: string[][] = [];
    const summary: string[] = [];
    // Warm every route up (JIT, connection pools) before measuring any.
    for (const api of APIS) await load(platform, CONNECTIONS, JSON.stringify(api.body), api.path);
    for (const api of APIS) {
      const body = JSON.stringify(api.body);
      const measured = await load(platform, CONNECTIONS, body, api.path);
      const firsts: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const started = performance.now();
        const response = await fetch(`${platform.url}${api.path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${platform.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ ...api.body, stream: true }),
        });
        const reader = response.body?.getReader();
        let first = 0;
        for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
          first ||= performance.now() - started;
        }
        firsts.push(first);
      }
      rows.push([...row(api.name, CONNECTIONS, measured), median(firsts).toFixed(2)]);
      summary.push(`${api.name} ${measured.cpuMsPerRequest.toFixed(2)} ms`);
    }
    printTable(
      ['api', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'non-2xx+errors', 'first event ms (p50)'],
      rows,
    );
    console.log(`\nplatform process CPU per call: ${summary.join(', ')}`);
    console.log(
      `\nThe same question through each API, buffered at ${CONNECTIONS} connections for the CPU (the platform front in its own process, the local AWS servers in another), streamed one at a time (${ROUNDS} rounds) for the first event.`,
    );
  } finally {
    for (const server of [front, emulators]) server.process.kill('SIGINT');
  }
}
