import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalPlatform, startLocalPlatform } from '../../lambdas/local/platform';
import type { PlatformConfig } from '../../lib/config';

/** A local platform on a free port, in memory, with its own data dir; `close` removes everything. */
export async function startTestPlatform(config?: PlatformConfig): Promise<LocalPlatform & { dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'platform-test-'));
  const platform = await startLocalPlatform({ dataDir, port: 0, persist: false, config });
  return {
    ...platform,
    dataDir,
    close: async () => {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Calls the platform over HTTP; returns status, headers and the parsed JSON body. */
export async function call(
  platform: LocalPlatform,
  method: string,
  path: string,
  options: { credential?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${platform.url}${path}`, {
    method,
    headers: {
      ...(options.credential && { authorization: `Bearer ${options.credential}` }),
      ...((options.body !== undefined || options.rawBody !== undefined) && { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined };
}

/** Onboards a tenant through the admin API and returns its first API key. */
export async function onboard(platform: LocalPlatform, id: string, extra: Record<string, unknown> = {}) {
  const admin = platform.operatorToken;
  const created = await call(platform, 'POST', '/admin/tenants', { credential: admin, body: { id, ...extra } });
  if (created.status !== 201) throw new Error(`onboarding ${id} failed: ${created.text}`);
  const key = await call(platform, 'POST', `/admin/tenants/${id}/api-keys`, { credential: admin });
  return { tenant: created.body, apiKey: key.body.api_key as string, keyId: key.body.key_id as string };
}
