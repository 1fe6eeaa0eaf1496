import { load, printTable, row, startServer } from './chat';

/**
 * `npm run bench -- local`: the whole local platform (`npm start`: the API front and every AWS
 * stand-in in one process) under metered chats at one connection, as a newcomer's first load test
 * meets it: chats per second and the process's CPU per chat (`BENCH_PROFILE_DIR` writes its profile).
 */
export async function benchLocal(): Promise<void> {
  const platform = await startServer(['platform']);
  try {
    // Warm it up (JIT, connection pools) before measuring.
    await load(platform, 1);
    const measured = await load(platform, 1);
    printTable(
      ['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'process CPU ms/req', 'non-2xx+errors'],
      [row('local platform, metered chat', 1, measured)],
    );
    console.log(
      `\nlocal mode, one connection: ${measured.rps.toFixed(0)} metered chats/s, ${measured.cpuMsPerRequest.toFixed(1)} ms of CPU each`,
    );
  } finally {
    platform.process.kill('SIGINT');
  }
}
