import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import { runTenantCli } from '../../local/tenant-cli';
import { call, ManualClock, startTestPlatform } from '../support/platform';

const CACHE_TTL_SECONDS = 60;
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'status?' }], max_tokens: 8 };

describe('tenant lifecycle through the README admin CLI (npm run tenant)', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  const clock = new ManualClock();
  const afterCacheTtl = () => clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);

  /** Runs the tenant CLI in this process, as `npm run tenant` runs it, against the test platform. */
  async function cli(...args: string[]): Promise<string> {
    const lines: string[] = [];
    const env = { PORT: new URL(platform.url).port, LOCAL_DATA_DIR: platform.dataDir };
    await runTenantCli(args, env, (line) => lines.push(line));
    return `${lines.join('\n')}\n`;
  }
  const chatWith = async (credential: string) =>
    (await call(platform, 'POST', '/v1/chat/completions', { credential, body: chat })).status;

  beforeAll(async () => {
    platform = await startTestPlatform(
      { ...platformConfig(), authorizerCacheTtlSeconds: CACHE_TTL_SECONDS },
      { now: clock.now },
    );
  });
  afterAll(() => platform.close());

  it('creates, updates, suspends, resumes, rotates keys and offboards a tenant', async () => {
    // create: the tenant as JSON, then its API key alone on the last line
    const created = (await cli('create', 'lifecycle-co', '--tier', 'standard', '--rpm', '50')).trim().split('\n');
    const firstKey = created.at(-1) ?? '';
    expect(firstKey).toMatch(/^mt_/);
    expect(JSON.parse(created.slice(0, -1).join('\n'))).toMatchObject({
      id: 'lifecycle-co',
      tier: 'standard',
      status: 'active',
      limits: { requestsPerMinute: 50 },
    });
    expect(await chatWith(firstKey)).toBe(200);

    // update: a new tier resets limits to its defaults, then applies the overrides given
    const updated = JSON.parse(await cli('update', 'lifecycle-co', '--tier', 'basic', '--monthly-tokens', '12345'));
    expect(updated).toMatchObject({ tier: 'basic', limits: { requestsPerMinute: 60, monthlyTokens: 12345 } });

    // suspend: 403 once the authorizer cache has expired; resume: 200 again
    expect(JSON.parse(await cli('suspend', 'lifecycle-co')).status).toBe('suspended');
    afterCacheTtl();
    const suspended = await call(platform, 'POST', '/v1/chat/completions', { credential: firstKey, body: chat });
    expect(suspended.status).toBe(403);
    expect(suspended.body.error.code).toBe('forbidden');
    expect(JSON.parse(await cli('resume', 'lifecycle-co')).status).toBe('active');
    afterCacheTtl();
    expect(await chatWith(firstKey)).toBe(200);

    // keys: issue a second, revoke the first
    const secondKey = (await cli('key', 'create', 'lifecycle-co')).trim();
    const firstKeyId = firstKey.split('_')[1];
    expect(JSON.parse(await cli('key', 'revoke', 'lifecycle-co', firstKeyId))).toMatchObject({
      key_id: firstKeyId,
      status: 'revoked',
    });
    afterCacheTtl();
    expect(await chatWith(firstKey)).toBe(401);
    expect(await chatWith(secondKey)).toBe(200);

    // the operator's month report, as CSV: one line for this tenant and model, matching what it was told
    const month = new Date().toISOString().slice(0, 7);
    const csv = (await cli('usage', '--month', month, '--csv')).trim().split('\n');
    expect(csv[0]).toBe('tenant_id,model,requests,input_tokens,output_tokens,cost_usd');
    expect(csv.filter((line) => line.startsWith('lifecycle-co,nova-micro,3,'))).toHaveLength(1);

    // offboard: the tenant stops at once, its data goes once the drain is over, its id stays taken
    const started = JSON.parse(await cli('offboard', 'lifecycle-co', '--no-wait'));
    expect(started).toMatchObject({ status: 'offboarding', status_url: '/admin/tenants/lifecycle-co' });
    clock.advance(platform.deps.settings.offboardingDrainSeconds * 1000 + 1000);
    await platform.offboarding.runDue();
    const offboarded = JSON.parse(await cli('get', 'lifecycle-co'));
    expect(offboarded.status).toBe('offboarded');
    expect(offboarded.offboarding.deleted.api_keys).toBe(2);
    // the month's grant and its shard item (counters, held calls, the day's usage cells)
    expect(offboarded.offboarding.deleted.ledger_items).toBe(2);
    // the three chats that reached the handler (refusals by the authorizer are API Gateway's access logs)
    expect(offboarded.offboarding.deleted.audit_records).toBe(3);
    expect(await chatWith(secondKey)).toBe(401);
    await expect(cli('create', 'lifecycle-co')).rejects.toThrow(/conflict/);
  });

  it('refuses to onboard ids that are not valid tenant ids, and duplicates', async () => {
    for (const id of ['ab', '../other', 'Acme', 'аcme', 'a'.repeat(42), 'acme_co']) {
      const response = await call(platform, 'POST', '/admin/tenants', {
        credential: platform.operatorToken,
        body: { id },
      });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('invalid_request');
    }
    expect(
      (await call(platform, 'POST', '/admin/tenants', { credential: platform.operatorToken, body: { id: 'dup-co' } }))
        .status,
    ).toBe(201);
    const duplicate = await call(platform, 'POST', '/admin/tenants', {
      credential: platform.operatorToken,
      body: { id: 'dup-co' },
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.code).toBe('conflict');
  });

  it('applies a PATCH naming a version only at that version; the loser gets 409 with the tenant as it is', async () => {
    const admin = { credential: platform.operatorToken };
    const created = await call(platform, 'POST', '/admin/tenants', { ...admin, body: { id: 'versioned-co' } });
    expect(created.body.version).toBe(1);
    const first = await call(platform, 'PATCH', '/admin/tenants/versioned-co', {
      ...admin,
      body: { version: 1, audit_prompts: true },
    });
    expect(first.status).toBe(200);
    expect(first.body.version).toBe(2);
    // A second operator who read version 1 too: refused, shown the change it lost to.
    const stale = await call(platform, 'PATCH', '/admin/tenants/versioned-co', {
      ...admin,
      body: { version: 1, status: 'suspended' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('conflict');
    expect(stale.body.current).toMatchObject({ id: 'versioned-co', version: 2, status: 'active', audit_prompts: true });
    // Offboarding moves it on: a change after that is refused the same way.
    expect((await call(platform, 'DELETE', '/admin/tenants/versioned-co', admin)).status).toBe(202);
    const late = await call(platform, 'PATCH', '/admin/tenants/versioned-co', { ...admin, body: { tier: 'standard' } });
    expect(late.status).toBe(409);
    expect(late.body.current).toMatchObject({ status: 'offboarding', tier: 'basic' });
  });

  it('onboards onto a silo and promotes to one, and `get` shows where the tenant is served', async () => {
    const drain = () => clock.advance(offboardingDrainSeconds(platformConfig()) * 1000 + 1000);
    const created = (await cli('create', 'vault-co', '--tier', 'enterprise', '--placement', 'silo', '--no-wait'))
      .trim()
      .split('\n');
    const vaultKey = created.at(-1) ?? '';
    expect(JSON.parse(created.slice(0, -1).join('\n'))).toMatchObject({
      placement: 'pool',
      placement_status: 'requested',
    });
    expect(await chatWith(vaultKey)).toBe(200);

    await cli('create', 'grown-co', '--tier', 'enterprise');
    expect(JSON.parse(await cli('promote', 'grown-co', '--no-wait'))).toMatchObject({ placement_status: 'requested' });
    await platform.placement.runDue();
    drain();
    await platform.placement.runDue();

    for (const id of ['vault-co', 'grown-co']) {
      expect(JSON.parse(await cli('get', id))).toMatchObject({
        placement: 'silo',
        placement_status: 'complete',
        silo_url: platform.silos.get(id)?.url,
      });
    }
    const silo = platform.silos.get('vault-co');
    if (!silo) throw new Error('no silo');
    const atSilo = await call(silo, 'POST', '/v1/chat/completions', { credential: vaultKey, body: chat });
    expect(atSilo.status).toBe(200);
  });
});
