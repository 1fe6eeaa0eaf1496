import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { operatorTokenFile } from '../lambdas/local/platform';

const USAGE = `usage: npm run tenant -- <command> [options]
  create <id> [--tier basic|standard|enterprise] [--rpm N] [--tpm N] [--monthly-tokens N] [--budget-usd N]
                                  onboard a tenant and print its first API key
  get <id>                        show a tenant
  key create <id>                 issue another API key (printed once)
  token <id> [--user U] [--expires-in SECONDS]
                                  mint a JWT for a user of the tenant (local dev issuer)
Talks to the local platform on http://127.0.0.1:$PORT (default 8787) with the operator token in
$LOCAL_DATA_DIR/operator-token (default .local).`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tier: { type: 'string' },
    rpm: { type: 'string' },
    tpm: { type: 'string' },
    'monthly-tokens': { type: 'string' },
    'budget-usd': { type: 'string' },
    user: { type: 'string' },
    'expires-in': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

const baseUrl = `http://127.0.0.1:${process.env.PORT ?? 8787}`;
const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  let operatorToken: string;
  try {
    operatorToken = readFileSync(operatorTokenFile(dataDir), 'utf8').trim();
  } catch {
    throw new Error(`no operator token in ${dataDir}: is the local platform running (npm start)?`);
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).catch(() => {
    throw new Error(`cannot reach ${baseUrl}: start the platform with npm start`);
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(JSON.stringify(answer));
  return answer;
}

const numberOption = (name: keyof typeof values) => (values[name] === undefined ? undefined : Number(values[name]));

async function main(): Promise<void> {
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  if (command === 'create' && rest[0]) {
    const limits = Object.fromEntries(
      Object.entries({
        requestsPerMinute: numberOption('rpm'),
        tokensPerMinute: numberOption('tpm'),
        monthlyTokens: numberOption('monthly-tokens'),
        monthlyBudgetUsd: numberOption('budget-usd'),
      }).filter(([, value]) => value !== undefined),
    );
    const tenant = await call('POST', '/admin/tenants', { id: rest[0], tier: values.tier, limits });
    console.log(JSON.stringify(tenant, null, 2));
    const key = await call('POST', `/admin/tenants/${encodeURIComponent(rest[0])}/api-keys`);
    console.log(key.api_key);
  } else if (command === 'get' && rest[0]) {
    console.log(JSON.stringify(await call('GET', `/admin/tenants/${encodeURIComponent(rest[0])}`), null, 2));
  } else if (command === 'key' && rest[0] === 'create' && rest[1]) {
    const key = await call('POST', `/admin/tenants/${encodeURIComponent(rest[1])}/api-keys`);
    console.log(key.api_key);
  } else if (command === 'token' && rest[0]) {
    const answer = await call('POST', '/local/tokens', {
      tenant_id: rest[0],
      user_id: values.user,
      expires_in: numberOption('expires-in'),
    });
    console.log(answer.token);
  } else {
    throw new Error(USAGE);
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
