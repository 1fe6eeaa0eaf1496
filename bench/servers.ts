import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { platformConfig } from '../lib/config';
import { type LocalAws, startLocalPlatform, startPlatformFront } from '../local/platform';
import { benchTenant } from './admin';

/**
 * A server under benchmark, in its own process so the load generator does not share its CPU:
 * `platform` (the local platform with one tenant of very high limits; it also prints its local
 * AWS, `aws`), `front` (the platform's API front alone, against the local AWS of a `platform`
 * process given in `BENCH_LOCAL_AWS`: the platform's own CPU, apart from the emulators'), or
 * `bare <body> [content-type]` (a plain Node server answering every request with the same body, as
 * `application/json` unless told). Prints `{url, apiKey?, aws?}` when ready.
 */
async function main(): Promise<void> {
  const [kind, body, contentType = 'application/json'] = process.argv.slice(2);
  if (kind === 'bare') {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': contentType });
        response.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    console.log(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
    return;
  }
  if (kind === 'front') {
    const front = await startPlatformFront(JSON.parse(String(process.env.BENCH_LOCAL_AWS)) as LocalAws);
    console.log(JSON.stringify({ url: front.url }));
    return;
  }
  const config = platformConfig();
  const platform = await startLocalPlatform({
    config,
    dataDir: mkdtempSync(join(tmpdir(), 'bench-')),
    port: 0,
    persist: false,
  });
  const limits = { requestsPerMinute: 1e9, tokensPerMinute: 1e12, monthlyTokens: 1e12, monthlyBudgetUsd: 1e6 };
  const apiKey = await benchTenant(platform, { id: 'bench', limits });
  const aws: LocalAws = {
    settings: platform.deps.settings,
    endpoints: platform.endpoints,
    operatorToken: platform.operatorToken,
    authorizerCacheTtlSeconds: config.authorizerCacheTtlSeconds,
  };
  console.log(JSON.stringify({ url: platform.url, apiKey, aws }));
}

// Exit through Node's exit path, so a `--cpu-prof` profile is written.
process.on('SIGINT', () => process.exit(0));

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
