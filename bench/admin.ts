import type { LocalPlatform } from '../local/platform';

/** POSTs to the local platform's admin routes with the operator token; answers the JSON. */
export function adminPost(platform: Pick<LocalPlatform, 'url' | 'operatorToken'>) {
  const headers = { authorization: `Bearer ${platform.operatorToken}`, 'content-type': 'application/json' };
  return (path: string, body: unknown = {}) =>
    fetch(`${platform.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }).then(
      (response) => response.json() as Promise<Record<string, string>>,
    );
}

/** Onboards a benchmark tenant and answers its API key. */
export async function benchTenant(
  platform: Pick<LocalPlatform, 'url' | 'operatorToken'>,
  tenant: Record<string, unknown>,
): Promise<string> {
  const post = adminPost(platform);
  await post('/admin/tenants', tenant);
  return (await post(`/admin/tenants/${tenant.id}/api-keys`)).api_key;
}
