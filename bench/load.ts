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
 * a monotonic clock (sub-millisecond).
 */
export async function runLoad(options: {
  url: string;
  connections: number;
  seconds: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
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
          res.resume();
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300) failures++;
            resolve(performance.now() - started);
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
