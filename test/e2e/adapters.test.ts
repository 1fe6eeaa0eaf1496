import OpenAI from 'openai';
import { countTokens } from '../../lambdas/core/tokens';
import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import type { LocalPlatform } from '../../local/platform';
import { LOCAL_ADAPTER_LOAD_MS } from '../../local/sagemaker-server';
import { runTenantCli } from '../../local/tenant-cli';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/**
 * Tenants' LoRA adapters in local mode: the production admin, workflow and chat code against the
 * local SageMaker (control plane and runtime), on a manual clock that steps past the load time.
 * The endpoint has two base components sharing a four-GPU instance, one per tier.
 */
const context: Record<string, string> = {
  adapterInstanceType: 'ml.g5.12xlarge',
  adapterComponents: 'standard:2,enterprise:2',
};
const config = platformConfig((key) => context[key]);
const BASE = 'qwen2.5-7b';
const ARTIFACT = 's3://tenant-adapters/acme-ai/support-bot.tar.gz';

describe('LoRA adapters on the GPU endpoint', () => {
  const clock = new ManualClock();
  /** Tenants whose silo's endpoint fails to create their adapters, with SageMaker's reason. */
  const failAtSilo = new Map<string, string>();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let acme: string;
  let bravo: string;
  const admin = (method: string, path: string, body?: unknown) =>
    call(platform, method, path, { credential: platform.operatorToken, body });
  const chat = (credential: string, model: string) =>
    call(platform, 'POST', '/v1/chat/completions', {
      credential,
      body: { model, messages: [{ role: 'user', content: 'Where is my order?' }], max_tokens: 64 },
    });
  /** Runs the tenant CLI in this process, as `npm run tenant` does. */
  async function cli(...args: string[]) {
    const lines: string[] = [];
    const env = { PORT: new URL(platform.url).port, LOCAL_DATA_DIR: platform.dataDir };
    await runTenantCli(args, env, (line) => lines.push(line));
    return JSON.parse(lines.join('\n'));
  }
  /** Steps past the load time and lets the workflow poll. */
  const loaded = async () => {
    clock.advance(LOCAL_ADAPTER_LOAD_MS + 1);
    await platform.adapterWorkflow.runDue();
  };
  const sagemakerCalls = (target: string) =>
    platform.sagemaker?.requests.filter((request) => request.headers['x-amz-target'] === `SageMaker.${target}`) ?? [];

  beforeAll(async () => {
    platform = await startTestPlatform(config, {
      now: clock.now,
      // a move's copy waits for the silo's adapters on the manual clock
      moveSleep: async (ms) => clock.advance(ms),
      siloDeployed: async (tenantId) => {
        const reason = failAtSilo.get(tenantId);
        if (reason) platform.silos.get(tenantId)?.sagemaker?.failCreations(() => reason);
      },
    });
    acme = (await onboard(platform, 'acme-ai', { tier: 'standard' })).apiKey;
    bravo = (await onboard(platform, 'bravo-ai', { tier: 'enterprise' })).apiKey;
  });
  afterAll(() => platform.close());

  it('takes an adapter from `adapter add` to InService, creating its component on the tier base component', async () => {
    const added = await cli('adapter', 'add', 'acme-ai', 'support-bot', '--artifact', ARTIFACT);
    expect(added).toMatchObject({ name: 'support-bot', model: `ft:${BASE}:support-bot`, status: 'Creating' });
    const [create] = sagemakerCalls('CreateInferenceComponent');
    expect(create.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/us-east-1\/sagemaker\//);
    expect(create.body).toEqual({
      InferenceComponentName: expect.stringMatching(/^ad-acme-ai-support-bot-[0-9a-f]{8}$/),
      EndpointName: 'local-adapters',
      Specification: {
        BaseInferenceComponentName: 'local-adapters-base-standard',
        Container: { ArtifactUrl: ARTIFACT },
      },
      // the tenant's tag, as on its other resources
      Tags: [{ Key: 'tenantId', Value: 'acme-ai' }],
    });

    // not in service yet: the model does not exist for anyone
    expect((await chat(acme, `ft:${BASE}:support-bot`)).body.error.code).toBe('unknown_model');
    await platform.adapterWorkflow.runDue();
    expect((await cli('adapter', 'list', 'acme-ai')).data[0].status).toBe('Creating');
    await loaded();
    expect((await cli('adapter', 'list', 'acme-ai')).data).toEqual([
      expect.objectContaining({ name: 'support-bot', status: 'InService', artifact_url: ARTIFACT }),
    ]);
  });

  it("routes the tenant's chat to its adapter's component, and the base model to its tier's base component", async () => {
    const componentName = (sagemakerCalls('CreateInferenceComponent')[0].body as { InferenceComponentName: string })
      .InferenceComponentName;
    const before = platform.sagemaker?.requests.length ?? 0;
    const answer = await chat(acme, `ft:${BASE}:support-bot`);
    expect(answer.status).toBe(200);
    expect(answer.body.model).toBe(`ft:${BASE}:support-bot`);
    expect(answer.body.choices[0].message.content).toMatch(
      /^\[support-bot\] Local echo of 1 message\(s\): Where is my order\?/,
    );
    const invoke = platform.sagemaker?.requests.slice(before).find((r) => r.path.endsWith('/invocations'));
    expect(invoke).toMatchObject({ method: 'POST', path: '/endpoints/local-adapters/invocations' });
    expect(invoke?.headers['x-amzn-sagemaker-inference-component']).toBe(componentName);
    expect(invoke?.headers['content-type']).toBe('application/json');
    expect(invoke?.body).toEqual({ messages: [{ role: 'user', content: 'Where is my order?' }], max_tokens: 64 });

    const base = await chat(bravo, BASE);
    expect(base.body.choices[0].message.content).toMatch(/^Local echo/);
    const baseInvoke = platform.sagemaker?.requests.at(-1);
    expect(baseInvoke?.headers['x-amzn-sagemaker-inference-component']).toBe('local-adapters-base-enterprise');

    // metered under the adapter's name, priced as its base model, with the container's token counts
    const usage = (await call(platform, 'GET', '/v1/usage', { credential: acme })).body.data;
    const line = usage.find((row: { model: string }) => row.model === `ft:${BASE}:support-bot`);
    const { prompt_tokens: input, completion_tokens: output } = answer.body.usage;
    expect(line).toMatchObject({ requests: 1, input_tokens: input, output_tokens: output });
    expect(line.cost_usd).toBeCloseTo((input * 0.2 + output * 0.6) / 1e6, 12);
  });

  it("streams a chat on the tenant's adapter from SageMaker's response stream, billed with the container's count", async () => {
    const before = platform.sagemaker?.requests.length ?? 0;
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: acme,
      body: {
        model: `ft:${BASE}:support-bot`,
        messages: [{ role: 'user', content: 'Where is my order?' }],
        stream: true,
        stream_options: { include_usage: true },
      },
    });
    const data = answer.text
      .split('\n\n')
      .filter((block) => block.startsWith('data: '))
      .map((block) => block.slice('data: '.length));
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((line) => JSON.parse(line));
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('[support-bot] Local echo of 1 message(s): Where is my order?');
    expect(chunks.at(-1).usage).toEqual({
      prompt_tokens: 5,
      completion_tokens: countTokens(text),
      total_tokens: 5 + countTokens(text),
      prompt_tokens_details: { cached_tokens: 0 },
    });
    const invoke = platform.sagemaker?.requests
      .slice(before)
      .find((r) => r.path.endsWith('/invocations-response-stream'));
    expect(invoke?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("answers another tenant's adapter exactly like a model that does not exist", async () => {
    const stolen = await chat(bravo, `ft:${BASE}:support-bot`);
    const missing = await chat(bravo, `ft:${BASE}:no-such-adapter`);
    expect(stolen.status).toBe(400);
    expect(missing.status).toBe(400);
    expect(stolen.body.error.code).toBe(missing.body.error.code);
    expect(stolen.body.error.message.replace('support-bot', 'X')).toBe(
      missing.body.error.message.replace('no-such-adapter', 'X'),
    );
    expect(stolen.text).not.toMatch(/acme/);
    // and lists only its own: the catalog for bravo, the catalog and its adapter for acme
    const list = async (credential: string) =>
      (await call(platform, 'GET', '/v1/models', { credential })).body.data.map((model: { id: string }) => model.id);
    expect(await list(bravo)).toEqual(Object.keys(config.models));
    expect(await list(acme)).toEqual([...Object.keys(config.models), `ft:${BASE}:support-bot`]);
  });

  it("serves a route's adapter target as the tenant's own adapter, and passes over another tenant's", async () => {
    const route = { targets: [{ model: `ft:${BASE}:support-bot` }, { model: 'nova-micro' }] };
    expect((await admin('PUT', '/admin/tenants/acme-ai/routing', { routes: { support: route } })).status).toBe(200);
    expect((await admin('PUT', '/admin/tenants/bravo-ai/routing', { routes: { support: route } })).status).toBe(200);
    clock.advance(61_000); // past the authorizer's cached decisions
    const own = await chat(acme, 'support');
    expect(own.status).toBe(200);
    expect(own.body.model).toBe(`ft:${BASE}:support-bot`);
    expect(own.headers.get('x-attempts')).toBe(`ft:${BASE}:support-bot=ok`);
    // bravo names acme's adapter: it is not bravo's, so the route goes straight to its next target.
    const other = await chat(bravo, 'support');
    expect(other.status).toBe(200);
    expect(other.body.model).toBe('nova-micro');
    expect(other.headers.get('x-attempts')).toBe('nova-micro=ok');
  });

  it('works with the stock OpenAI SDK: models.list and a chat completion with the adapter', async () => {
    const client = new OpenAI({ apiKey: acme, baseURL: `${platform.url}/v1` });
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toContain(`ft:${BASE}:support-bot`);
    const completion = await client.chat.completions.create({
      model: `ft:${BASE}:support-bot`,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(completion.choices[0].message.content).toMatch(/^\[support-bot\]/);
  });

  it("reports a failed creation with SageMaker's reason, and refuses artifacts that are not S3 .tar.gz", async () => {
    platform.sagemaker?.failCreations((url) =>
      url.includes('broken') ? 'ClientError: adapter_config.json was not found at the root of the artifact' : undefined,
    );
    const added = await admin('POST', '/admin/tenants/acme-ai/adapters', {
      name: 'broken-bot',
      artifact_url: 's3://tenant-adapters/acme-ai/broken.tar.gz',
    });
    expect(added.status).toBe(202);
    await loaded();
    const [broken] = (await admin('GET', '/admin/tenants/acme-ai/adapters')).body.data.filter(
      (adapter: { name: string }) => adapter.name === 'broken-bot',
    );
    expect(broken).toMatchObject({
      status: 'Failed',
      failure_reason: 'ClientError: adapter_config.json was not found at the root of the artifact',
    });
    expect((await chat(acme, `ft:${BASE}:broken-bot`)).body.error.code).toBe('unknown_model');
    platform.sagemaker?.failCreations(undefined);

    for (const artifact_url of [
      'https://example.com/a.tar.gz',
      's3://b/../x.zip',
      's3://tenant-adapters/a.tar',
      42,
      // another tenant's artifact, or none's: an adapter is built from its own tenant's artifacts only
      's3://tenant-adapters/other-ai/support-bot.tar.gz',
      's3://tenant-adapters/acme-ai-other/support-bot.tar.gz',
      's3://tenant-adapters/support-bot.tar.gz',
      // the tenant's prefix, of a bucket the endpoint does not read (local mode's is tenant-adapters)
      's3://other-bucket/acme-ai/support-bot.tar.gz',
    ]) {
      const refused = await admin('POST', '/admin/tenants/acme-ai/adapters', { name: 'bad', artifact_url });
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('invalid_request');
    }
    expect(
      (await admin('POST', '/admin/tenants/acme-ai/adapters', { name: 'Bad Name', artifact_url: ARTIFACT })).status,
    ).toBe(400);
    expect(
      (await admin('POST', '/admin/tenants/acme-ai/adapters', { name: 'support-bot', artifact_url: ARTIFACT })).status,
    ).toBe(409);
  });

  it('removes an adapter: its component is deleted and its model is gone', async () => {
    await cli(
      'adapter',
      'add',
      'bravo-ai',
      'legal-bot',
      '--artifact',
      's3://tenant-adapters/bravo-ai/legal-bot.tar.gz',
    );
    await loaded();
    expect((await chat(bravo, `ft:${BASE}:legal-bot`)).status).toBe(200);
    expect(await cli('adapter', 'remove', 'bravo-ai', 'legal-bot')).toEqual({ name: 'legal-bot', deleted: true });
    expect(sagemakerCalls('DeleteInferenceComponent').at(-1)?.body).toEqual({
      InferenceComponentName: expect.stringMatching(/^ad-bravo-ai-legal-bot-/),
    });
    expect((await chat(bravo, `ft:${BASE}:legal-bot`)).body.error.code).toBe('unknown_model');
    expect((await admin('DELETE', '/admin/tenants/bravo-ai/adapters/legal-bot')).status).toBe(404);
  });

  it("offboarding deletes the tenant's adapters and their components", async () => {
    const { apiKey } = await onboard(platform, 'leaving-ai', { tier: 'standard' });
    await admin('POST', '/admin/tenants/leaving-ai/adapters', {
      name: 'temp-bot',
      artifact_url: 's3://tenant-adapters/leaving-ai/temp-bot.tar.gz',
    });
    await loaded();
    expect((await chat(apiKey, `ft:${BASE}:temp-bot`)).status).toBe(200);
    const tombstone = await offboardCompletely(platform, clock, 'leaving-ai');
    expect(tombstone.offboarding.deleted.adapters).toBe(1);
    const listed = await fetchComponents();
    expect(listed.some((name) => name.startsWith('ad-leaving-ai-'))).toBe(false);
    expect(listed.some((name) => name.startsWith('ad-acme-ai-support-bot-'))).toBe(true);
  });

  it("moves a tenant's adapters to its silo's GPU endpoint, in service there before the switch, and unloads the pool's", async () => {
    const { apiKey } = await onboard(platform, 'mover-ai', { tier: 'enterprise' });
    await admin('POST', '/admin/tenants/mover-ai/adapters', {
      name: 'move-bot',
      artifact_url: 's3://tenant-adapters/mover-ai/move-bot.tar.gz',
    });
    await loaded();
    await admin('POST', '/admin/tenants/mover-ai/promote');
    await platform.placement.runDue();
    // switched: the silo loaded the adapter on its own endpoint, from the same artifact, and the
    // move waited for it (the copy polls, the manual clock stepping) before switching
    expect((await admin('GET', '/admin/tenants/mover-ai')).body.placement_status).toBe('catching_up');
    const silo = platform.silos.get('mover-ai') as LocalPlatform;
    const [created] = (silo.sagemaker?.requests ?? []).filter(
      (request) => request.headers['x-amz-target'] === 'SageMaker.CreateInferenceComponent',
    );
    expect(created.body).toEqual({
      InferenceComponentName: expect.stringMatching(/^ad-mover-ai-move-bot-[0-9a-f]{8}$/),
      EndpointName: 'local-adapters',
      Specification: {
        BaseInferenceComponentName: 'local-adapters-base-enterprise',
        Container: { ArtifactUrl: 's3://tenant-adapters/mover-ai/move-bot.tar.gz' },
      },
      Tags: [{ Key: 'tenantId', Value: 'mover-ai' }],
    });
    expect(await silo.deps.registry.listAdapters('mover-ai')).toEqual([
      expect.objectContaining({ name: 'move-bot', status: 'InService' }),
    ]);
    // the tenant's adapter calls through the pool are served by the silo's component
    const siloInvokes = () => (silo.sagemaker?.requests ?? []).filter((r) => r.path.endsWith('/invocations')).length;
    const before = siloInvokes();
    const answer = await chat(apiKey, `ft:${BASE}:move-bot`);
    expect(answer.status).toBe(200);
    expect(answer.body.choices[0].message.content).toMatch(/^\[move-bot\]/);
    expect(siloInvokes()).toBe(before + 1);

    clock.advance(offboardingDrainSeconds(config) * 1000 + 1000);
    await platform.placement.runDue();
    expect((await admin('GET', '/admin/tenants/mover-ai')).body.placement_status).toBe('complete');
    expect(await platform.deps.registry.listAdapters('mover-ai')).toEqual([]);
    expect((await fetchComponents()).some((name) => name.startsWith('ad-mover-ai-'))).toBe(false);
    expect((await chat(apiKey, `ft:${BASE}:move-bot`)).status).toBe(200);
  });

  it('fails a move whose adapter the silo cannot load, before the switch: the pool serves the tenant and its adapter as before', async () => {
    const { apiKey } = await onboard(platform, 'stuck-ai', { tier: 'enterprise' });
    await admin('POST', '/admin/tenants/stuck-ai/adapters', {
      name: 'odd-bot',
      artifact_url: 's3://tenant-adapters/stuck-ai/odd-bot.tar.gz',
    });
    await loaded();
    failAtSilo.set('stuck-ai', 'ClientError: the silo image cannot load this adapter');
    await admin('POST', '/admin/tenants/stuck-ai/promote');
    await platform.placement.runDue();
    const failed = (await admin('GET', '/admin/tenants/stuck-ai')).body;
    expect(failed).toMatchObject({ placement: 'pool', placement_status: 'failed' });
    expect(failed.placement_error).toMatch(
      /adapter 'odd-bot' could not be loaded at the silo: ClientError: the silo image cannot load this adapter/,
    );
    const answer = await chat(apiKey, `ft:${BASE}:odd-bot`);
    expect(answer.status).toBe(200);
    expect(answer.body.choices[0].message.content).toMatch(/^\[odd-bot\]/);
  });

  /** The components on the local endpoint, through the production host's client config. */
  async function fetchComponents(): Promise<string[]> {
    const { SageMakerClient, ListInferenceComponentsCommand } = await import('@aws-sdk/client-sagemaker');
    const client = new SageMakerClient({
      region: 'us-east-1',
      endpoint: platform.endpoints.sagemaker,
      credentials: platform.credentials,
    });
    const listed = await client.send(new ListInferenceComponentsCommand({ EndpointNameEquals: 'local-adapters' }));
    return (listed.InferenceComponents ?? []).map((component) => String(component.InferenceComponentName));
  }
});

describe('without an adapter endpoint', () => {
  it('has no GPU model, no adapter route to use, and lists only the Bedrock catalog', async () => {
    const platform = await startTestPlatform(platformConfig());
    try {
      const { apiKey } = await onboard(platform, 'plain-co');
      const models = (await call(platform, 'GET', '/v1/models', { credential: apiKey })).body.data;
      expect(models.map((m: { id: string }) => m.id)).toEqual(['nova-micro', 'nova-lite', 'titan-embed-text-v2']);
      const added = await call(platform, 'POST', '/admin/tenants/plain-co/adapters', {
        credential: platform.operatorToken,
        body: { name: 'x-bot', artifact_url: ARTIFACT },
      });
      expect(added.status).toBe(409);
      const chat = await call(platform, 'POST', '/v1/chat/completions', {
        credential: apiKey,
        body: { model: BASE, messages: [{ role: 'user', content: 'hi' }] },
      });
      expect(chat.body.error.code).toBe('unknown_model');
    } finally {
      await platform.close();
    }
  });
});
