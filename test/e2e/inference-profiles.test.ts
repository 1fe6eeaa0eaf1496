import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockInferenceProfiles } from '../../lambdas/adapters/bedrock-inference-profiles';
import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import type { LocalPlatform } from '../../local/platform';
import { call, localDynamoDb, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { fillerText } from '../support/text';

/** Cost on AWS's own bill: each tenant's Bedrock calls through inference profiles of its own, tagged with its id. */
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'Who pays for this?' }], max_tokens: 16 };

describe('per-tenant Bedrock inference profiles', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(
      platformConfig((key) => ({ tenantInferenceProfiles: 'true' })[key]),
      { now: clock.now },
    );
  });
  afterAll(() => platform.close());

  it('gives a new tenant a profile of each Bedrock model, tagged with its id, and calls the models through them', async () => {
    const { tenant, apiKey } = await onboard(platform, 'billed-co');
    const profiles = tenant.inference_profiles as Record<string, string>;
    expect(Object.keys(profiles).sort()).toEqual(['nova-lite', 'nova-micro', 'titan-embed-text-v2']);
    for (const [model, arn] of Object.entries(profiles)) {
      expect(arn).toMatch(/^arn:aws:bedrock:us-east-1:000000000000:application-inference-profile\/[0-9a-f]{12}$/);
      expect(platform.bedrock.inferenceProfiles.get(arn)).toMatchObject({
        name: `local-billed-co-${model}`,
        tags: { tenantId: 'billed-co' },
      });
    }

    const sent = platform.bedrock.requests.length;
    expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    expect(
      (
        await call(platform, 'POST', '/v1/embeddings', {
          credential: apiKey,
          body: { model: 'titan-embed-text-v2', input: 'hi' },
        })
      ).status,
    ).toBe(200);
    // The model id on the wire is the tenant's own profile, never the shared model's id.
    expect(platform.bedrock.requests.slice(sent).map((request) => decodeURIComponent(request.path))).toEqual([
      `/model/${profiles['nova-micro']}/converse`,
      `/model/${profiles['titan-embed-text-v2']}/invoke`,
    ]);
    // Another tenant's calls go through its own profiles.
    const { tenant: other } = await onboard(platform, 'other-co');
    expect(Object.values(other.inference_profiles)).not.toContain(profiles['nova-micro']);
  });

  it("refuses a call through a tenant's profile signed by anyone but that tenant's session: IAM's tag condition, not the code", async () => {
    const { tenant } = await onboard(platform, 'walled-co');
    await onboard(platform, 'intruder-co');
    const profile = (tenant.inference_profiles as Record<string, string>)['nova-micro'];
    const { credentials } = localDynamoDb(platform);
    const converseAs = async (signer: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) => {
      const client = new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: platform.endpoints.bedrock,
        credentials: signer,
        requestHandler: new NodeHttpHandler(),
        maxAttempts: 1,
      });
      try {
        await client.send(
          new ConverseCommand({ modelId: profile, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }),
        );
        return 'answered';
      } catch (error) {
        return (error as Error).name;
      } finally {
        client.destroy();
      }
    };
    // Holding another tenant's session, or the platform's own key, bypassing every check of the core.
    expect(await converseAs(await credentials.credentialsFor('intruder-co'))).toBe('AccessDeniedException');
    expect(await converseAs(platform.credentials)).toBe('AccessDeniedException');
    expect(await converseAs(await credentials.credentialsFor('walled-co'))).toBe('answered');
  });

  it("embeds a queued document's chunks through the tenant's own profile too", async () => {
    const { tenant, apiKey } = await onboard(platform, 'queued-co');
    const sent = platform.bedrock.requests.length;
    // more chunks than one synchronous batch: queued for the worker
    const queued = await call(platform, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'big', text: fillerText(80 * 160, 'fjord') },
    });
    expect(queued.status).toBe(202);
    let status = queued.body.status;
    // the in-process worker runs between requests: ask until it is done, no timer involved
    for (let i = 0; i < 500 && status !== 'indexed'; i++) {
      status = (await call(platform, 'GET', '/v1/documents/big', { credential: apiKey })).body.status;
    }
    expect(status).toBe('indexed');
    const paths = platform.bedrock.requests.slice(sent).map((request) => decodeURIComponent(request.path));
    expect(paths.length).toBeGreaterThan(3);
    expect(new Set(paths)).toEqual(new Set([`/model/${tenant.inference_profiles['titan-embed-text-v2']}/invoke`]));
  });

  it('finds the profiles an interrupted onboarding made instead of failing, and deletes them at offboarding', async () => {
    const adapter = new BedrockInferenceProfiles(
      { region: 'us-east-1', endpoint: platform.endpoints.bedrockControl, credentials: platform.credentials },
      'local',
    );
    const models = [{ name: 'nova-micro', bedrockModelId: 'amazon.nova-micro-v1:0' }];
    const first = await adapter.createFor('retry-co', models);
    expect(await adapter.createFor('retry-co', models)).toEqual(first);

    const before = platform.bedrock.inferenceProfiles.size;
    const gone = await offboardCompletely(platform, clock, 'billed-co');
    expect(gone.offboarding.deleted.inference_profiles).toBe(3);
    expect(platform.bedrock.inferenceProfiles.size).toBe(before - 3);
    expect([...platform.bedrock.inferenceProfiles.values()].map((p) => p.tags.tenantId)).not.toContain('billed-co');
    // Deleting again (a rerun of the step) finds nothing left, and fails nothing.
    expect(await adapter.deleteAll(Object.values(first))).toBe(1);
    expect(await adapter.deleteAll(Object.values(first))).toBe(1);
  });
});

/**
 * A tenant with profiles of its own, promoted to a silo: in the pool's region the silo calls the
 * same profiles (one Bedrock control plane a region); in another region, whose Bedrock knows no
 * profile of the pool's, the copy makes the tenant's profiles there and the cleanup deletes the old.
 */
describe("a tenant's inference profiles, moved to its silo", () => {
  const clock = new ManualClock();
  const config = platformConfig((key) => ({ tenantInferenceProfiles: 'true' })[key]);
  let pool: Awaited<ReturnType<typeof startTestPlatform>>;
  const admin = (method: string, path: string, body?: unknown) =>
    call(pool, method, path, { credential: pool.operatorToken, body });

  beforeAll(async () => {
    pool = await startTestPlatform(config, { now: clock.now, siloRegions: { 'far-co': 'eu-central-1' } });
  });
  afterAll(() => pool.close());

  /** Moves the tenant (`promote`, or `demote`) through the drain; returns its record when switched and at the end. */
  async function promote(tenantId: string, body?: unknown, move = 'promote') {
    expect((await admin('POST', `/admin/tenants/${tenantId}/${move}`, body)).status).toBe(202);
    await pool.placement.runDue();
    const switched = (await admin('GET', `/admin/tenants/${tenantId}`)).body;
    // through its waits: a promotion's drain; a return's wait for the pool's cache, then its drain
    for (let wait = 0; wait < 2; wait++) {
      clock.advance(offboardingDrainSeconds(config) * 1000 + 1000);
      await pool.placement.runDue();
    }
    return { switched, done: (await admin('GET', `/admin/tenants/${tenantId}`)).body };
  }

  it('keeps calling the same profiles from a silo in the pool’s region', async () => {
    const { tenant, apiKey } = await onboard(pool, 'near-co', { tier: 'enterprise' });
    const { done } = await promote('near-co');
    expect(done).toMatchObject({ placement_status: 'complete', inference_profiles: tenant.inference_profiles });
    const silo = pool.silos.get('near-co') as LocalPlatform;
    const sent = silo.bedrock.requests.length;
    expect((await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    expect(silo.bedrock.requests.slice(sent).map((request) => decodeURIComponent(request.path))).toEqual([
      `/model/${tenant.inference_profiles['nova-micro']}/converse`,
    ]);
    expect(pool.bedrock.inferenceProfiles.has(tenant.inference_profiles['nova-micro'])).toBe(true);
  });

  it('makes the tenant’s profiles in the silo’s region, calls them there, and deletes the pool region’s', async () => {
    const { tenant, apiKey } = await onboard(pool, 'far-co', { tier: 'enterprise' });
    const old = tenant.inference_profiles as Record<string, string>;
    const { switched, done } = await promote('far-co');
    expect(switched.placement_status).toBe('catching_up');
    const silo = pool.silos.get('far-co') as LocalPlatform;
    const made = Object.fromEntries(
      [...silo.bedrock.inferenceProfiles.entries()].map(([arn, profile]) => [profile.name.split('far-co-')[1], arn]),
    );
    expect(Object.keys(made).sort()).toEqual(Object.keys(old).sort());
    for (const [model, arn] of Object.entries(made)) {
      expect(arn).toMatch(/^arn:aws:bedrock:eu-central-1:000000000000:application-inference-profile\//);
      expect(silo.bedrock.inferenceProfiles.get(arn)).toMatchObject({
        name: `local-far-co-${model}`,
        tags: { tenantId: 'far-co' },
      });
    }
    // the silo's record calls them; once done the pool's record names them, the old ones deleted
    expect((await silo.deps.registry.getTenant('far-co'))?.inferenceProfiles).toEqual(made);
    expect(done).toMatchObject({ placement_status: 'complete', inference_profiles: made });
    for (const arn of Object.values(old)) expect(pool.bedrock.inferenceProfiles.has(arn)).toBe(false);
    const sent = silo.bedrock.requests.length;
    const answered = await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(answered.status).toBe(200);
    expect(silo.bedrock.requests.slice(sent).map((request) => decodeURIComponent(request.path))).toEqual([
      `/model/${made['nova-micro']}/converse`,
    ]);
  });

  it('moves a silo tenant to a silo in another region: back to the pool, then promoted there, its profiles made there', async () => {
    const { tenant, apiKey } = await onboard(pool, 'hop-co', { tier: 'enterprise' });
    await promote('hop-co');
    const first = pool.silos.get('hop-co') as LocalPlatform;
    expect(first.deps.settings.region).toBe('us-east-1');
    const { done: returned } = await promote('hop-co', undefined, 'demote');
    expect(returned).toMatchObject({
      placement: 'pool',
      placement_status: 'complete',
      inference_profiles: tenant.inference_profiles,
    });
    // only a region the platform places silos in (its pipeline may deploy there)
    const wrong = await admin('POST', '/admin/tenants/hop-co/promote', { region: 'ap-south-1' });
    expect([wrong.status, wrong.body.error.message]).toEqual([400, expect.stringMatching(/us-east-1, eu-central-1/)]);

    const { done } = await promote('hop-co', { region: 'eu-central-1' });
    const second = pool.silos.get('hop-co') as LocalPlatform;
    expect(second.deps.settings.region).toBe('eu-central-1');
    expect(done).toMatchObject({ placement: 'silo', placement_status: 'complete', silo_region: 'eu-central-1' });
    const profiles = done.inference_profiles as Record<string, string>;
    for (const arn of Object.values(profiles)) expect(arn).toMatch(/^arn:aws:bedrock:eu-central-1:/);
    for (const arn of Object.values(tenant.inference_profiles as Record<string, string>)) {
      expect(pool.bedrock.inferenceProfiles.has(arn)).toBe(false);
    }
    const sent = second.bedrock.requests.length;
    expect((await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    expect(second.bedrock.requests.slice(sent).map((request) => decodeURIComponent(request.path))).toEqual([
      `/model/${profiles['nova-micro']}/converse`,
    ]);
  });
});
