import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalPlatform } from '../local/platform';
import { benchTenant } from './admin';

/**
 * A server under benchmark, in its own process so the load generator does not share its CPU:
 * `platform` (the local platform with one tenant of very high limits) or `bare <body>` (a plain
 * Node server answering every request with the same body). Prints `{url, apiKey?}` when ready.
 */
async function main(): Promise<void> {
  const [kind, body] = process.argv.slice(2);
  if (kind === 'bare') {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    console.log(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
    return;
  }
  const platform = await startLocalPlatform({
    dataDir: mkdtempSync(join(tmpdir(), 'bench-')),
    port: 0,
    persist: false,
  });
  const limits = { requestsPerMinute: 1e9, tokensPerMinute: 1e12, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };
  const apiKey = await benchTenant(platform, { id: 'bench', limits });
  console.log(JSON.stringify({ url: platform.url, apiKey }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
