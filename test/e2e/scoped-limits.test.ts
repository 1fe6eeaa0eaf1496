import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { runTenantCli } from '../../local/tenant-cli';
import { call, localDynamoDb, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/** Limits below the tenant: an API key's own, each end user's own, enforced by the ledger as the tenant's are. */
describe('limits of a project, a key and an end user', () => {
  // A clock that stands still: no minute window turns over between two calls of a test.
  const clock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
  });
  afterAll(() => platform.close());

  const admin = (method: string, path: string, body?: unknown) =>
    call(platform, method, path, { credential: platform.operatorToken, body });
  const chat = (apiKey: string, user?: string) =>
    call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, ...(user && { user }) },
    });

  it("stops a key at its own limit, naming the key's scope, while the tenant's other keys go on", async () => {
    const { apiKey: open } = await onboard(platform, 'scoped-keys');
    const limited = await admin('POST', '/admin/tenants/scoped-keys/api-keys', { limits: { requestsPerMinute: 2 } });
    expect(limited.status).toBe(201);
    expect(limited.body.limits).toEqual({ requestsPerMinute: 2 });
    const key = limited.body.api_key as string;
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(200);
    const refused = await chat(key);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limited', scope: 'key' });
    expect(refused.body.error.message).toMatch(/^this API key's own limit: /);
    // The tenant's other key, and the tenant, are not held back by it.
    for (let i = 0; i < 3; i++) expect((await chat(open)).status).toBe(200);
    // The refused call holds nothing: the tenant billed 5 calls, the key's own ledger 2.
    const usage = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: open })).body;
    expect(usage.totals.requests).toBe(5);
    const byKey = (await call(platform, 'GET', '/v1/usage?group_by=key', { credential: open })).body;
    expect(byKey.data).toEqual([
      expect.objectContaining({ key: limited.body.key_id, model: 'nova-micro', requests: 2 }),
    ]);
    // The operator's bill counts the tenant's calls once, not its key's again.
    const bill = (await admin('GET', `/admin/usage?month=${new Date(clock.now()).toISOString().slice(0, 7)}`)).body;
    const lines = bill.data.filter((line: { tenant_id: string }) => line.tenant_id.startsWith('scoped-keys'));
    expect(lines).toEqual([expect.objectContaining({ tenant_id: 'scoped-keys', requests: 5 })]);
  });

  it("stops an end user at the tenant's limit for each end user, and only that user", async () => {
    const { apiKey } = await onboard(platform, 'scoped-users');
    const set = await admin('PATCH', '/admin/tenants/scoped-users', { user_limits: { requestsPerMinute: 2 } });
    expect(set.body.user_limits).toEqual({ requestsPerMinute: 2 });
    clock.advance(61_000); // past the authorizer's cached decision
    expect((await chat(apiKey, 'alice')).status).toBe(200);
    expect((await chat(apiKey, 'alice')).status).toBe(200);
    const refused = await chat(apiKey, 'alice');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limited', scope: 'user' });
    expect((await chat(apiKey, 'bob')).status).toBe(200);
    // A call naming no end user is the tenant's alone.
    expect((await chat(apiKey)).status).toBe(200);
    const byUser = (await call(platform, 'GET', '/v1/usage?group_by=user', { credential: apiKey })).body;
    expect(byUser.data.map((line: { user: string; requests: number }) => [line.user, line.requests])).toEqual([
      ['alice', 2],
      ['bob', 1],
    ]);
  });

  it("holds an end user named by an embeddings request to the end user's own limits too", async () => {
    const { apiKey } = await onboard(platform, 'scoped-embed');
    await admin('PATCH', '/admin/tenants/scoped-embed', { user_limits: { requestsPerMinute: 1 } });
    clock.advance(61_000);
    const embed = (user: string) =>
      call(platform, 'POST', '/v1/embeddings', {
        credential: apiKey,
        body: { model: 'titan-embed-text-v2', input: 'hello', user },
      });
    expect((await embed('erin')).status).toBe(200);
    const refused = await embed('erin');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ scope: 'user' });
    expect((await embed('frank')).status).toBe(200);
  });

  it("counts a chat's retrieval embedding against its end user's limits too", async () => {
    const { apiKey } = await onboard(platform, 'scoped-retrieval');
    await admin('PATCH', '/admin/tenants/scoped-retrieval', { user_limits: { requestsPerMinute: 3 } });
    clock.advance(61_000);
    const grounded = (user: string) =>
      call(platform, 'POST', '/v1/chat/completions', {
        credential: apiKey,
        body: { model: 'nova-micro', messages: [{ role: 'user', content: 'refunds?' }], retrieval: {}, user },
      });
    // Two model calls each: the query's embedding and the chat.
    expect((await grounded('frank')).status).toBe(200);
    const second = await grounded('frank');
    expect(second.status).toBe(429);
    expect(second.body.error.scope).toBe('user');
    expect((await grounded('grace')).status).toBe(200);
  });

  it('never lets 64 parallel first calls of a new end user past its monthly tokens, and bills the tenant only for those admitted', async () => {
    const { apiKey } = await onboard(platform, 'scoped-race', { tier: 'standard' });
    // Each call reserves its estimate (about 22 tokens) against 260 a month, and gives back at its
    // settle what it did not use: a dozen calls get in, the rest are refused as the user's.
    await admin('PATCH', '/admin/tenants/scoped-race', { user_limits: { monthlyTokens: 260 } });
    clock.advance(61_000);
    const answers = await Promise.all(Array.from({ length: 64 }, () => chat(apiKey, 'racer')));
    const admitted = answers.filter((answer) => answer.status === 200);
    const refused = answers.filter((answer) => answer.status === 429);
    expect(admitted.length + refused.length).toBe(64);
    expect(admitted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.map((answer) => answer.body.error.scope)).toEqual(refused.map(() => 'user'));
    const used = admitted.reduce((sum, answer) => sum + answer.body.usage.total_tokens, 0);
    const byUser = (await call(platform, 'GET', '/v1/usage?group_by=user', { credential: apiKey })).body;
    expect(byUser.totals.input_tokens + byUser.totals.output_tokens).toBe(used);
    expect(used).toBeLessThanOrEqual(260);
    // The tenant's ledger bills exactly the admitted calls: the refused ones gave their holds back.
    const tenant = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: apiKey })).body;
    expect(tenant.totals.requests).toBe(admitted.length);
  });

  it("holds a project's keys to the project's own limits together, and counts a key moved mid-month toward each project in turn", async () => {
    const { apiKey: outside } = await onboard(platform, 'scoped-projects');
    const key = async (project: string) =>
      (await admin('POST', '/admin/tenants/scoped-projects/api-keys', { project })).body as {
        api_key: string;
        key_id: string;
      };
    const [web1, web2, mover] = [await key('web'), await key('web'), await key('alpha')];
    await admin('PATCH', '/admin/tenants/scoped-projects', { project_limits: { web: { requestsPerMinute: 3 } } });
    clock.advance(61_000);
    // Two keys of project web share its three requests a minute.
    expect((await chat(web1.api_key)).status).toBe(200);
    expect((await chat(web2.api_key)).status).toBe(200);
    expect((await chat(web1.api_key)).status).toBe(200);
    const refused = await chat(web2.api_key);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ scope: 'project' });
    expect(refused.body.error.message).toMatch(/^this project's own limit: /);
    // A key of no project, and a key of another project, go on.
    expect((await chat(outside)).status).toBe(200);
    expect((await chat(mover.api_key)).status).toBe(200);
    expect((await chat(mover.api_key)).status).toBe(200);
    // The mover goes to project beta: its next calls count there, what it used stays with alpha.
    const moved = await admin('PATCH', `/admin/tenants/scoped-projects/api-keys/${mover.key_id}`, { project: 'beta' });
    expect(moved.status).toBe(200);
    clock.advance(61_000);
    expect((await chat(mover.api_key)).status).toBe(200);
    // A JWT's project claim counts toward its project too.
    const token = (
      await call(platform, 'POST', '/local/tokens', {
        credential: platform.operatorToken,
        body: { tenant_id: 'scoped-projects', user_id: 'dana', project: 'beta' },
      })
    ).body.token as string;
    expect((await chat(token)).status).toBe(200);
    const byProject = (await call(platform, 'GET', '/v1/usage?group_by=project', { credential: outside })).body;
    expect(byProject.data.map((line: { project: string; requests: number }) => [line.project, line.requests])).toEqual([
      ['alpha', 2],
      ['beta', 2],
      ['web', 3],
    ]);
    // Another tenant's key cannot be moved by naming it under this tenant.
    expect((await admin('PATCH', `/admin/tenants/scoped-keys/api-keys/${mover.key_id}`, { project: 'x' })).status).toBe(
      404,
    );
  });

  it("sets a key's and the end users' limits from the tenant CLI", async () => {
    await onboard(platform, 'scoped-cli');
    const lines: string[] = [];
    const env = { PORT: String(new URL(platform.url).port), LOCAL_DATA_DIR: platform.dataDir };
    const cli = (...args: string[]) => runTenantCli(args, env, (line) => lines.push(line));
    await cli('update', 'scoped-cli', '--user-rpm', '5', '--user-monthly-budget', '2.5');
    expect(JSON.parse(lines.join('\n')).user_limits).toEqual({ requestsPerMinute: 5, monthlyBudgetUsd: 2.5 });
    lines.length = 0;
    await cli('key', 'create', 'scoped-cli', '--rpm', '7', '--monthly-tokens', '1000');
    const key = lines.at(-1) as string;
    const keys = (await call(platform, 'GET', '/v1/api-keys', { credential: key })).body;
    expect(keys.data.length).toBe(2);
  });

  it("deletes a tenant's scopes' ledgers when it is offboarded", async () => {
    const { apiKey } = await onboard(platform, 'scoped-gone');
    await admin('PATCH', '/admin/tenants/scoped-gone', { user_limits: { requestsPerMinute: 50 } });
    clock.advance(61_000);
    expect((await chat(apiKey, 'carol')).status).toBe(200);
    const items = async () =>
      (
        await localDynamoDb(platform).ownRole.send(
          new ScanCommand({ TableName: platform.deps.settings.ledgerTableName }),
        )
      ).Items?.filter((item) => String(item.pk).startsWith('TENANT#scoped-gone#')) ?? [];
    expect((await items()).length).toBeGreaterThan(0);
    await offboardCompletely(platform, clock, 'scoped-gone');
    expect(await items()).toEqual([]);
  });
});
