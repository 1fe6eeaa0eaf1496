import { Agent, request } from 'node:http';

export interface LoadResult {
  readonly requests: number;
  readonly failures: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * A closed-loop load generator: `connections` keep-alive clients, each sending its next request
 * as soon as the previous answer arrives, for `seconds`. Latencies are measured per request with
 * a monotonic clock (sub-millisecond), to the answer's end or, with `until`, to the first moment
 * the body received so far matches it (a streamed answer's first token; the body is still read to
 * its end before the client's next request).
 */
export async function runLoad(options: {
  url: string;
  connections: number;
  seconds: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  until?: RegExp;
}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const target = new URL(options.url);
  const latencies: number[] = [];
  let failures = 0;
  const deadline = performance.now() + options.seconds * 1000;

  const once = () =>
    new Promise<number>((resolve) => {
      const started = performance.now();
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: options.method ?? 'GET',
          headers: options.headers,
        },
        (res) => {
          const { until } = options;
          let marked: number | undefined;
          let received = '';
          if (until) {
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (marked !== undefined) return;
              received += chunk;
              if (until.test(received)) marked = performance.now() - started;
            });
          } else res.resume();
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300 || (until && marked === undefined)) failures++;
            resolve(marked ?? performance.now() - started);
          });
        },
      );
      req.on('error', () => {
        failures++;
        resolve(performance.now() - started);
      });
      req.end(options.body);
    });

  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < deadline) latencies.push(await once());
    }),
  );
  const elapsedSeconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    failures,
    rps: latencies.length / elapsedSeconds,
    p50Ms: percentile(50),
    p99Ms: percentile(99),
  };
}
