import { authorize } from '../../lambdas/core/authorize';
import { completeChat } from '../../lambdas/core/chat';
import { indexQueuedJob, ingestDocument } from '../../lambdas/core/documents';
import { PlatformError } from '../../lambdas/core/errors';
import { beginOffboarding, purgeTenantData, tombstoneTenant } from '../../lambdas/core/offboarding';
import {
  catchUpTenantData,
  copyTenantData,
  flipSilo,
  markDeploying,
  markReturning,
  type PlaneStores,
  requestPool,
  requestSilo,
  startCopy,
  switchPlanes,
} from '../../lambdas/core/placement';
import type { TenantPartitions } from '../../lambdas/core/ports';
import type { TenantRecord } from '../../lambdas/core/tenant';
import { createApiKey, onboardTenant, revokeApiKey, updateTenant } from '../../lambdas/core/tenants';
import { DEFAULT_MODELS, DEFAULT_TIERS, platformConfig } from '../../lib/config';
import { contextOf, inMemoryPorts } from '../support/fakes';

/**
 * The core's orchestration on in-memory ports: what it asks of each port, in what order, and what
 * it leaves behind. The adapters and the HTTP layer are tested apart (test/adapters, test/e2e).
 */
const NOW = Date.UTC(2026, 10, 24, 12);
const { retrieval } = platformConfig();

async function world(tier: TenantRecord['tier'] = 'standard', limits: Partial<TenantRecord['limits']> = {}) {
  const fake = inMemoryPorts();
  const deps = {
    ...fake.ports,
    catalog: DEFAULT_MODELS,
    retrieval,
    tiers: DEFAULT_TIERS,
    vectorStores: retrieval.vectorStores,
    now: () => NOW,
  };
  const record = await onboardTenant(deps, { id: 'orchestra', tier, limits, audit_prompts: false });
  return { fake, deps, tenant: contextOf(record) };
}

describe('completeChat', () => {
  it('reserves the bound, calls the model once, settles what it used', async () => {
    const { fake, deps, tenant } = await world();
    const answer = await completeChat(
      deps,
      tenant,
      { model: 'nova-micro', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 20 },
      { requestId: 'c1' },
    );
    expect(answer.usage).toEqual({
      prompt_tokens: 10,
      completion_tokens: 2,
      total_tokens: 12,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    // 'Hello there': 2 tokens (two listed words), plus 4 for the message and 3 for the reply; and 20 of output
    expect(fake.events).toEqual(['reserve c1 29', 'generate', 'settle c1 12']);
    expect(fake.reservations.size).toBe(0);
  });

  it('bills both tries of a format call whose second try may have run (timed out), not one', async () => {
    const { fake, deps, tenant } = await world();
    let tries = 0;
    const models = {
      ...deps.models,
      generate: async () => {
        tries += 1;
        if (tries === 1) return { text: 'not json', finishReason: 'stop' as const, inputTokens: 10, outputTokens: 2 };
        throw new PlatformError('upstream_timeout', 'late', { upstream: 'timeout' });
      },
    };
    const request = {
      model: 'nova-micro',
      messages: [{ role: 'user' as const, content: 'Hello there' }],
      max_tokens: 20,
      response_format: { type: 'json_object' as const },
    };
    await expect(completeChat({ ...deps, models }, tenant, request, { requestId: 'c9' })).rejects.toThrow('late');
    // Reserved for two tries (2 x 40 tokens: the format is a forced tool); billed the first as it ran
    // (12) and the second, which may have run, at one try's estimate (40).
    expect(fake.events).toEqual(['reserve c9 80', 'settle c9 52']);
  });

  it('grounds the prompt in the tenant’s passages, the query embedding metered on its own', async () => {
    const { fake, deps, tenant } = await world();
    await ingestDocument(deps, tenant, { id: 'refunds', text: 'Refunds take five days.' }, { requestId: 'd1' });
    fake.events.length = 0;
    const answer = await completeChat(
      deps,
      tenant,
      { model: 'nova-micro', messages: [{ role: 'user', content: 'How long?' }], retrieval: { top_k: 2 } },
      { requestId: 'c2' },
    );
    expect(fake.events.map((event) => event.split(' ')[0])).toEqual([
      'reserve',
      'embed',
      'settle',
      'reserve',
      'generate',
      'settle',
    ]);
    expect(fake.events[0]).toMatch(/^reserve c2:query /);
    expect(fake.generated.at(-1)?.messages[0]).toMatchObject({
      role: 'system',
      content: expect.stringContaining('<passage n="1">\nRefunds take five days.\n</passage>'),
    });
    expect(answer.citations?.[0]).toMatchObject({ index: 1, document_id: 'refunds' });
  });

  it('refuses retrieval without a user message before anything is reserved', async () => {
    const { fake, deps, tenant } = await world();
    await expect(
      completeChat(
        deps,
        tenant,
        { model: 'nova-micro', messages: [{ role: 'system', content: 'x' }], retrieval: { top_k: 1 } },
        { requestId: 'c3' },
      ),
    ).rejects.toMatchObject({ code: 'invalid_request' });
    expect(fake.events).toEqual([]);
  });
});

describe('ingestDocument and the worker', () => {
  const long = (word: string) => Array.from({ length: 9000 }, (_, i) => (i % 50 === 0 ? word : 'tok')).join(' ');

  it('indexes a small document now and removes the version it replaces', async () => {
    const { fake, deps, tenant } = await world();
    const first = await ingestDocument(deps, tenant, { id: 'doc', text: 'first text' }, { requestId: 'i1' });
    const second = await ingestDocument(deps, tenant, { id: 'doc', text: 'second text' }, { requestId: 'i2' });
    expect(second.version).not.toBe(first.version);
    expect(fake.chunks.map((stored) => [stored.version, stored.chunk.text])).toEqual([[second.version, 'second text']]);
  });

  it('queues a large document as id-only jobs, each reserved at upload, and settles each as the worker indexes it', async () => {
    const { fake, deps, tenant } = await world();
    const record = await ingestDocument(deps, tenant, { id: 'big', text: long('fjord') }, { requestId: 'q1' });
    expect(record.status).toBe('queued');
    const jobs = Math.ceil(record.chunks / retrieval.syncMaxChunks);
    expect(fake.queued).toHaveLength(jobs);
    expect(Object.keys(fake.queued[0]).sort()).toEqual([
      'batch',
      'documentId',
      'principal',
      'requestId',
      'tenantId',
      'version',
    ]);
    expect([...fake.reservations.keys()]).toEqual(fake.queued.map((ref) => `q1:${ref.batch}`));

    const worker = { ...deps, registry: fake.ports.registry };
    for (const ref of fake.queued) expect(await indexQueuedJob(worker, ref)).toBe('indexed');
    expect(fake.reservations.size).toBe(0);
    expect(fake.settled).toHaveLength(jobs);
    expect(fake.jobs.size).toBe(0);
    expect(fake.records.get('orchestra/big')).toMatchObject({ status: 'indexed', indexedChunks: record.chunks });
    // again, as SQS may deliver it: nothing embedded or billed twice
    const embeds = fake.events.filter((event) => event.startsWith('embed')).length;
    expect(await indexQueuedJob(worker, fake.queued[0])).toBe('dropped: done before');
    expect(fake.events.filter((event) => event.startsWith('embed')).length).toBe(embeds);
  });

  it('keeps a queued job’s reservation when the model refused it, so the redelivered job is billed', async () => {
    const { fake, deps, tenant } = await world();
    await ingestDocument(deps, tenant, { id: 'big', text: long('tundra') }, { requestId: 'q3' });
    const worker = { ...deps, registry: fake.ports.registry };
    const [ref] = fake.queued;
    const embed = fake.ports.embedder.embed;
    fake.ports.embedder.embed = () => Promise.reject(new PlatformError('upstream_unavailable', 'throttled'));
    await expect(indexQueuedJob(worker, ref)).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(fake.reservations.has('q3:0')).toBe(true);
    fake.ports.embedder.embed = embed;
    expect(await indexQueuedJob(worker, ref)).toBe('indexed');
    expect(fake.settled.map((usage) => usage.requestId)).toEqual(['q3:0']);
  });

  it('refuses a queued document over the quota whole: nothing stored, every reservation given back', async () => {
    const { fake, deps, tenant } = await world('standard', { monthlyTokens: 8000 });
    await expect(
      ingestDocument(deps, tenant, { id: 'huge', text: long('steppe') }, { requestId: 'q2' }),
    ).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(fake.reservations.size).toBe(0);
    expect(fake.queued).toEqual([]);
    expect(fake.records.size).toBe(0);
    expect(fake.events.filter((event) => event.startsWith('release'))).toHaveLength(1);
  });
});

describe('offboarding', () => {
  it('waits for the drain, purges each store once even when a step is run again, then tombstones', async () => {
    const { fake, deps, tenant } = await world();
    await ingestDocument(deps, tenant, { id: 'doc', text: 'kept until offboarding' }, { requestId: 'o1' });
    let now = NOW;
    const adapterStore = { registry: deps.registry, host: deps.adapterHost };
    const offboarding = { ...deps, adapterStore, now: () => now, drainMs: 210_000 };
    const begun = await beginOffboarding(offboarding, 'orchestra');
    expect(begun.status).toBe('offboarding');
    await expect(purgeTenantData(offboarding, 'orchestra')).rejects.toMatchObject({ code: 'conflict' });

    now += 210_000;
    const purged = await purgeTenantData(offboarding, 'orchestra');
    expect(purged.offboarding?.deleted).toEqual({
      adapters: 0,
      prompts: 0,
      sessions: 0,
      cache_entries: 0,
      stored_responses: 0,
      chunks: 1,
      documents: 1,
      audit_records: 0,
      ledger_items: 1,
      files: 0,
      api_keys: 0,
      // onboarding gave it a profile of each of the catalog's three Bedrock models
      inference_profiles: 3,
    });
    expect(fake.chunks).toEqual([]);
    expect(fake.profiles.size).toBe(0);
    expect((await purgeTenantData(offboarding, 'orchestra')).offboarding?.deleted).toEqual(purged.offboarding?.deleted);
    const tombstone = await tombstoneTenant(offboarding, 'orchestra');
    expect(tombstone).toMatchObject({
      status: 'offboarded',
      offboarding: { completedAt: new Date(now).toISOString() },
    });
    await expect(onboardTenant(deps, { id: 'orchestra', tier: 'basic', audit_prompts: false })).rejects.toMatchObject({
      code: 'conflict',
    });
  });
  it('deletes the inference profiles a move made in another region too, when the move ended before it was done', async () => {
    const { fake, deps } = await world();
    const made = await fake.ports.inferenceProfiles.createFor('orchestra-far', [
      { name: 'nova-micro', bedrockModelId: 'amazon.nova-micro-v1:0' },
    ]);
    const record = await deps.registry.getTenant('orchestra');
    if (!record) throw new Error('no tenant');
    await deps.registry.updateTenant({
      ...record,
      placement: {
        current: 'pool',
        desired: 'silo',
        status: 'failed',
        migrated: {},
        updatedAt: new Date(NOW).toISOString(),
        targetInferenceProfiles: made,
      },
    });
    let now = NOW;
    const offboarding = {
      ...deps,
      adapterStore: { registry: deps.registry, host: deps.adapterHost },
      now: () => now,
      drainMs: 1,
    };
    await beginOffboarding(offboarding, 'orchestra');
    now += 1;
    const purged = await purgeTenantData(offboarding, 'orchestra');
    expect(purged.offboarding?.deleted.inference_profiles).toBe(4);
    expect(fake.profiles.size).toBe(0);
  });
});

describe('authorize', () => {
  it('names the tenant only for an active one, and carries a JWT’s expiry', async () => {
    const { fake } = await world();
    const tokens = { verify: async () => ({ tenantId: 'orchestra', userId: 'ada', expiresAt: 1_800_000_000 }) };
    const decision = await authorize({ registry: fake.ports.registry, tokens }, 'Bearer eyJhbGciOi.x.y');
    expect(decision).toMatchObject({
      effect: 'Allow',
      context: {
        tenantId: 'orchestra',
        principal: { type: 'user', id: 'ada' },
        expiresAt: 1_800_000_000,
        placements: ['s3vectors/t-orchestra'],
      },
    });
    const record = fake.tenants.get('orchestra') as TenantRecord;
    const suspended = await fake.ports.registry.updateTenant({ ...record, status: 'suspended' });
    expect(await authorize({ registry: fake.ports.registry, tokens }, 'Bearer eyJhbGciOi.x.y')).toMatchObject({
      effect: 'Deny',
    });
    await fake.ports.registry.updateTenant({ ...suspended, status: 'offboarded' });
    await expect(authorize({ registry: fake.ports.registry, tokens }, 'Bearer eyJhbGciOi.x.y')).rejects.toMatchObject({
      code: 'unauthenticated',
    });
  });
});

describe('completeChat with tools', () => {
  it('hands back tool-call arguments that are not JSON as the model gave them, finish_reason tool_calls', async () => {
    const { fake, deps, tenant } = await world();
    const toolCall = { id: 'call_1', name: 'lookup', arguments: '{"q": "unterminated' };
    const models = {
      ...fake.ports.models,
      generate: async () => ({
        text: '',
        finishReason: 'tool_calls' as const,
        toolCalls: [toolCall],
        inputTokens: 30,
        outputTokens: 7,
      }),
    };
    const answer = await completeChat(
      { ...deps, models },
      tenant,
      {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'Look it up' }],
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
      },
      { requestId: 't1' },
    );
    expect(answer.choices[0]).toEqual({
      index: 0,
      message: {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q": "unterminated' } },
        ],
      },
      finish_reason: 'tool_calls',
    });
    expect(fake.reservations.size).toBe(0);
  });
});

describe('completeChat with a response format', () => {
  it('bills the first try as it ran when the second is refused before it runs', async () => {
    const { fake, deps, tenant } = await world();
    let calls = 0;
    const models = {
      ...fake.ports.models,
      generate: async () => {
        calls += 1;
        if (calls === 1)
          return { text: 'not json', finishReason: 'stop' as const, inputTokens: 1000, outputTokens: 400 };
        throw new PlatformError('upstream_unavailable', 'throttled');
      },
    };
    await expect(
      completeChat(
        { ...deps, models },
        tenant,
        {
          model: 'nova-micro',
          messages: [{ role: 'user', content: 'json please' }],
          response_format: { type: 'json_object' },
        },
        { requestId: 'f1' },
      ),
    ).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(fake.events.filter((event) => event.startsWith('settle'))).toEqual(['settle f1 1400']);
  });
});

/** A plane's data tables holding nothing: these moves test the registry's part. */
const NO_ITEMS: TenantPartitions = {
  read: async () => ({ items: [] }),
  get: async () => [],
  write: async () => {},
  counters: () => [],
  apply: async () => {},
};

/** What a move's steps take besides the ports: a minute's drain and cache, no workflow, no waits, no profiles. */
function movingDeps<D extends object>(deps: D) {
  return {
    ...deps,
    drainMs: 60_000,
    workflow: { start: async () => {} },
    sleep: async () => {},
    catalog: {},
    authorizerCacheMs: 60_000,
  };
}

describe('a move to a silo', () => {
  it('starts the workflow once per move, and keeps only the silo it was given from the step input', async () => {
    const { deps } = await world('enterprise');
    const started: string[] = [];
    const moving = {
      ...deps,
      drainMs: 60_000,
      workflow: { start: async ({ tenantId }: { tenantId: string }) => void started.push(tenantId) },
    };
    await requestSilo(moving, 'orchestra');
    // Asked again while still `requested` (a start that may have failed): started again.
    await requestSilo(moving, 'orchestra');
    await markDeploying(moving, 'orchestra');
    // Asked again mid-move (an operator's retry): nothing starts a second execution.
    await requestSilo(moving, 'orchestra');
    expect(started).toEqual(['orchestra', 'orchestra']);
    const stepInput = {
      step: 'copy_start',
      tenantId: 'orchestra',
      siloUrl: 'https://silo.example/v1',
      siloResources: '{}',
    };
    const copying = await startCopy(moving, 'orchestra', stepInput);
    expect(copying.placement).toMatchObject({ status: 'copying', siloUrl: 'https://silo.example/v1' });
    expect(copying.placement).not.toHaveProperty('step');
    expect(copying.placement).not.toHaveProperty('tenantId');
  });

  it('carries a key revoked and a suspension made while the copy ran over to the silo, and refuses them once copied', async () => {
    const { deps, fake } = await world('enterprise');
    const moving = movingDeps(deps);
    const leaked = await createApiKey(deps, 'orchestra');
    const kept = await createApiKey(deps, 'orchestra');
    await requestSilo(moving, 'orchestra');
    await markDeploying(moving, 'orchestra');
    await startCopy(moving, 'orchestra', { siloUrl: 'https://silo.example' });
    const silo = inMemoryPorts();
    const marks = () => ({
      marked: async () => [{ month: '2026-11', thresholdPercent: 80 }],
      mark: async (tenantId: string, month: string, percent: number) =>
        Boolean(silo.events.push(`mark ${tenantId} ${month} ${percent}`)),
      unmark: async () => {},
    });
    // The operator acts while the copy runs: after it read the keys and the record, before it is done.
    const source: PlaneStores = {
      ...fake.ports,
      partitions: NO_ITEMS,
      budgetAlertMarks: marks(),
      region: 'us-east-1',
      apiUrl: 'https://plane.example',
      registry: {
        ...fake.ports.registry,
        listPrompts: async (tenantId) => {
          await revokeApiKey(deps, 'orchestra', leaked.key_id);
          await updateTenant(deps, 'orchestra', { status: 'suspended' });
          return fake.ports.registry.listPrompts(tenantId);
        },
      },
    };
    const target: PlaneStores = {
      ...silo.ports,
      partitions: NO_ITEMS,
      budgetAlertMarks: marks(),
      region: 'us-east-1',
      apiUrl: 'https://plane.example',
    };
    const copied = await copyTenantData(
      { ...moving, source, target, vectorStores: retrieval.vectorStores },
      'orchestra',
    );
    expect(copied.placement).toMatchObject({ status: 'copied', migrated: { api_keys: 2, budget_alert_marks: 1 } });
    expect((await silo.ports.registry.getApiKey(leaked.key_id))?.status).toBe('revoked');
    expect((await silo.ports.registry.getApiKey(kept.key_id))?.status).toBe('active');
    expect((await silo.ports.registry.getTenant('orchestra'))?.status).toBe('suspended');
    expect(silo.events).toContain('mark orchestra 2026-11 80');
    // the pool's worker runs the tenant's queued jobs until the switch: the silo queues them at the catch-up
    expect(silo.queued).toEqual([]);
    // Copied, the switch pending: still only the safe direction, which the switch carries over
    await expect(updateTenant(deps, 'orchestra', { limits: { requestsPerMinute: 5 } })).rejects.toMatchObject({
      code: 'conflict',
    });
    await revokeApiKey(deps, 'orchestra', kept.key_id);
    await switchPlanes({ ...moving, source, target, vectorStores: retrieval.vectorStores }, 'orchestra');
    expect((await silo.ports.registry.getApiKey(kept.key_id))?.status).toBe('revoked');
    // switched: the silo manages the tenant, the pool changes nothing of it
    await expect(revokeApiKey(deps, 'orchestra', kept.key_id)).rejects.toMatchObject({ code: 'conflict' });
  });

  it('carries a suspension made while the switch ran to the silo, never undoing the silo own changes', async () => {
    const { deps, fake } = await world('enterprise');
    const moving = movingDeps(deps);
    const key = await createApiKey(deps, 'orchestra');
    await requestSilo(moving, 'orchestra');
    await markDeploying(moving, 'orchestra');
    await startCopy(moving, 'orchestra', { siloUrl: 'https://silo.example' });
    const silo = inMemoryPorts();
    const marks = { marked: async () => [], mark: async () => true, unmark: async () => {} };
    const move = {
      ...moving,
      source: {
        ...fake.ports,
        partitions: NO_ITEMS,
        budgetAlertMarks: marks,
        region: 'us-east-1',
        apiUrl: 'https://plane.example',
      },
      target: {
        ...silo.ports,
        partitions: NO_ITEMS,
        budgetAlertMarks: marks,
        region: 'us-east-1',
        apiUrl: 'https://plane.example',
      },
      vectorStores: retrieval.vectorStores,
    };
    await copyTenantData(move, 'orchestra');
    // as a client may send it: the fields it leaves out present but undefined
    await updateTenant(deps, 'orchestra', { status: 'suspended', limits: undefined, tier: undefined });
    await switchPlanes(move, 'orchestra');
    expect((await silo.ports.registry.getTenant('orchestra'))?.status).toBe('suspended');
    expect((await silo.ports.registry.getApiKey(key.key_id))?.status).toBe('active');
  });
});

describe('a return to the pool', () => {
  /** A silo tenant (its promotion complete) and the planes its return reads (the silo) and writes (the pool). */
  async function siloTenant(clock: { now: number }) {
    const { deps, fake } = await world('enterprise');
    const moving = { ...movingDeps(deps), now: () => clock.now };
    const pooled = await fake.ports.registry.getTenant('orchestra');
    if (!pooled) throw new Error('not onboarded');
    const promoted: TenantRecord = {
      ...pooled,
      placement: {
        current: 'silo',
        desired: 'silo',
        status: 'complete',
        siloUrl: 'https://silo.example',
        updatedAt: new Date(NOW).toISOString(),
        migrated: {},
      },
    };
    await fake.ports.registry.updateTenant(promoted);
    const silo = inMemoryPorts();
    await silo.ports.registry.createTenant(promoted);
    const marks = { marked: async () => [], mark: async () => true, unmark: async () => {} };
    const plane = { partitions: NO_ITEMS, budgetAlertMarks: marks, region: 'us-east-1' };
    const move = {
      ...moving,
      source: { ...silo.ports, ...plane, apiUrl: 'https://silo.example' },
      target: { ...fake.ports, ...plane, apiUrl: 'https://pool.example' },
      vectorStores: retrieval.vectorStores,
    };
    return { deps, moving, move, silo };
  }

  it('keeps a suspension made at the pool after the switch, through a rerun of the switch and the flip', async () => {
    const clock = { now: NOW };
    const { deps, moving, move } = await siloTenant(clock);
    await requestPool(moving, 'orchestra');
    await markReturning(moving, 'orchestra');
    await copyTenantData(move, 'orchestra');
    await switchPlanes(move, 'orchestra');
    // switched: the pool manages the tenant, and its operator suspends it (the safe direction)
    await updateTenant(deps, 'orchestra', { status: 'suspended' });
    // the switch run again (a resumed move), then the flip: the silo's status does not undo it
    await switchPlanes(move, 'orchestra');
    clock.now += move.authorizerCacheMs + 1000;
    await flipSilo(move, 'orchestra');
    expect((await deps.registry.getTenant('orchestra'))?.status).toBe('suspended');
  });

  it('flips the silo only once the pool cannot forward to it, and waits out the silo from then', async () => {
    const clock = { now: NOW };
    const { moving, move, silo } = await siloTenant(clock);
    await requestPool(moving, 'orchestra');
    await markReturning(moving, 'orchestra');
    await copyTenantData(move, 'orchestra');
    const switched = await switchPlanes(move, 'orchestra');
    expect(Date.parse(switched.placement?.drainUntil ?? '')).toBe(NOW + move.authorizerCacheMs + 1000);
    // the pool's cached decisions may still forward to the silo: it serves them, not flipped yet
    await expect(flipSilo(move, 'orchestra')).rejects.toMatchObject({ code: 'conflict' });
    await expect(catchUpTenantData(move, 'orchestra')).rejects.toThrow(/still serves it: flip it first/);
    expect((await silo.ports.registry.getTenant('orchestra'))?.placement).toMatchObject({ current: 'silo' });
    // flipped an hour later (a resumed move): the silo served and wrote until now, so the drain runs from now
    clock.now += 3_600_000;
    const flipped = await flipSilo(move, 'orchestra');
    expect((await silo.ports.registry.getTenant('orchestra'))?.placement).toMatchObject({
      current: 'pool',
      poolUrl: 'https://pool.example',
    });
    expect(Date.parse(flipped.placement?.drainUntil ?? '')).toBe(clock.now + move.drainMs);
  });

  it('writes nothing into the pool once an offboarding that began mid-copy may have purged it', async () => {
    const clock = { now: NOW };
    const { moving, move } = await siloTenant(clock);
    await requestPool(moving, 'orchestra');
    await markReturning(moving, 'orchestra');
    let purged = false;
    const writtenAfterPurge: string[] = [];
    // A long copy (its adapters loading, a large tenant): the offboarding begins, its drain passes and
    // the pool is purged before the copy reaches the silo's audit records.
    const source = {
      ...move.source,
      partitions: {
        ...NO_ITEMS,
        read: async (_tenantId: string, table: string) => {
          if (table === 'audit' && !purged) {
            await beginOffboarding(moving, 'orchestra');
            purged = true;
          }
          return { items: [{ pk: 'TENANT#orchestra', sk: `${table}#1` }] };
        },
      },
    };
    const target = {
      ...move.target,
      partitions: {
        ...NO_ITEMS,
        write: async (_tenantId: string, table: string) => {
          if (purged) writtenAfterPurge.push(table);
        },
      },
    };
    await expect(copyTenantData({ ...move, source, target }, 'orchestra')).rejects.toMatchObject({
      code: 'conflict',
    });
    expect(writtenAfterPurge).toEqual([]);
  });
});
