import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { DynamoDbTenantRegistry } from '../../lambdas/adapters/dynamodb-tenant-registry';
import type { AdapterRecord } from '../../lambdas/core/adapter-record';
import { addAdapter, removeAdapter } from '../../lambdas/core/adapters';
import { PlatformError } from '../../lambdas/core/errors';
import { beginOffboarding } from '../../lambdas/core/offboarding';
import { requestSilo, startCopy } from '../../lambdas/core/placement';
import type { AdapterHost, StoredApiKey, TenantRegistry, VectorIndex } from '../../lambdas/core/ports';
import type { PromptRecord } from '../../lambdas/core/prompt-record';
import { deletePrompt, putPrompt } from '../../lambdas/core/prompts';
import type { TenantRecord } from '../../lambdas/core/tenant';
import { createApiKey, onboardTenant, revokeApiKey, updateTenant } from '../../lambdas/core/tenants';
import { platformConfig } from '../../lib/config';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const { tiers, retrieval } = platformConfig();
const endpoint = { endpointName: 'gpu', baseComponents: { default: 'base' }, artifactBuckets: ['artifacts'] };
/** The id of the key each raced tenant starts with: a key id's 16 letters and digits. */
const firstKeyOf = (tenantId: string) => `k0${tenantId.replace(/\W/g, '')}`.padEnd(16, '0');
const template = (text: string) => ({ messages: [{ role: 'user' as const, content: text }] });

/** What a race left behind: the tenant record and what hangs off it. */
interface World {
  tenant: TenantRecord;
  keys: StoredApiKey[];
  prompts: PromptRecord[];
  adapters: AdapterRecord[];
}

type Deps = ReturnType<typeof depsFor>;

/**
 * One admin operation: how to run it, and what the world must show after a race given the results
 * of its acknowledged runs (none: it left no trace).
 */
interface Operation {
  run(deps: Deps, tenantId: string, instance: number): Promise<unknown>;
  holds(world: World, acknowledged: unknown[]): void;
}

const OPERATIONS: Record<string, Operation> = {
  'PATCH limits': {
    run: (d, id) => updateTenant(d, id, { limits: { requestsPerMinute: 7 } }),
    holds: ({ tenant }, acked) => expect(tenant.limits.requestsPerMinute === 7).toBe(acked.length > 0),
  },
  'PATCH audit_prompts': {
    run: (d, id) => updateTenant(d, id, { audit_prompts: true }),
    holds: ({ tenant }, acked) => expect(tenant.auditPrompts).toBe(acked.length > 0),
  },
  suspend: {
    run: (d, id) => updateTenant(d, id, { status: 'suspended' }),
    holds: ({ tenant }, acked) =>
      acked.length > 0
        ? expect(['suspended', 'offboarding']).toContain(tenant.status)
        : expect(tenant.status).not.toBe('suspended'),
  },
  'issue key': {
    run: (d, id) => createApiKey(d, id),
    holds: ({ keys }, acked) => {
      expect(keys).toHaveLength(1 + acked.length);
      for (const issued of acked as { key_id: string }[]) {
        expect(keys.find((key) => key.keyId === issued.key_id)?.status).toBe('active');
      }
    },
  },
  'revoke key': {
    run: (d, id) => revokeApiKey(d, id, firstKeyOf(id)),
    holds: ({ keys }, acked) =>
      expect(keys.find((key) => key.keyId.startsWith('k0'))?.status).toBe(acked.length > 0 ? 'revoked' : 'active'),
  },
  'put template': {
    run: (d, id, instance) => putPrompt(d, id, 'p1', template(`version from run ${instance}`)),
    holds: ({ prompts }, acked) => {
      const stored = prompts.find((prompt) => prompt.name === 'p1');
      if (acked.length === 0) return expect(stored).toBeUndefined();
      // Every acknowledged put raised the version: none overwrote another unseen.
      expect(stored?.version).toBe(acked.length);
      expect((acked as PromptRecord[]).map((put) => put.messages[0].content)).toContain(stored?.messages[0].content);
    },
  },
  'delete template': {
    run: (d, id) => deletePrompt(d, id, 'p0'),
    holds: ({ prompts }, acked) => expect(prompts.some((p) => p.name === 'p0')).toBe(acked.length === 0),
  },
  'add adapter': {
    run: (d, id) => addAdapter(d, id, { name: 'a1', artifact_url: `s3://artifacts/${id}/a1.tar.gz` }),
    holds: ({ adapters }, acked) => expect(adapters.some((a) => a.name === 'a1')).toBe(acked.length > 0),
  },
  'remove adapter': {
    run: (d, id) => removeAdapter(d, id, 'a0'),
    holds: ({ adapters }, acked) =>
      acked.length > 0
        ? expect(adapters.some((a) => a.name === 'a0')).toBe(false)
        : expect(adapters.find((a) => a.name === 'a0')?.status).toBe('InService'),
  },
  promote: {
    run: (d, id) => requestSilo(d, id),
    holds: ({ tenant }, acked) => {
      if (acked.length > 0) expect(tenant.placement?.desired).toBe('silo');
    },
  },
  offboard: {
    run: (d, id) => beginOffboarding(d, id),
    holds: ({ tenant }, acked) => {
      expect(tenant.status === 'offboarding').toBe(acked.length > 0);
      expect(tenant.offboarding !== undefined).toBe(acked.length > 0);
    },
  },
  'start the copy': {
    run: (d, id) => startCopy(d, id, { siloUrl: 'https://silo.example' }),
    holds: ({ tenant }, acked) => {
      if (acked.length > 0) expect(tenant.placement?.status).toBe('copying');
      else expect(tenant.placement?.status).not.toBe('copying');
    },
  },
};

const NAMES = Object.keys(OPERATIONS);
const PAIRS = NAMES.flatMap((first, i) => NAMES.slice(i).map((second) => [first, second] as const));

function depsFor(registry: TenantRegistry) {
  const components = new Map<string, string>();
  const host: AdapterHost = {
    create: async ({ componentName }) => void components.set(componentName, 'InService'),
    describe: async (name) => ({ status: components.has(name) ? 'InService' : 'Failed' }),
    delete: async (name) => void components.delete(name),
  };
  const vectors = { ensureTenantIndex: async () => undefined } as unknown as VectorIndex;
  return {
    registry,
    vectors,
    tiers,
    vectorStores: retrieval.vectorStores,
    host,
    endpoint,
    now: () => Date.UTC(2026, 11, 7),
    drainMs: 60_000,
    workflow: { start: async () => undefined },
  };
}

describe('racing admin operations (core on the DynamoDB registry, dynalite)', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  let registry: DynamoDbTenantRegistry;
  let next = 0;

  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'registry' }], credentials });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    registry = new DynamoDbTenantRegistry(db, 'registry');
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  it('discards a record onboarding could not finish only while nothing changed it (version 1)', async () => {
    const deps = depsFor(registry);
    await onboardTenant(deps, { id: 'discarded', tier: 'basic', audit_prompts: false });
    await registry.discardNewTenant('discarded');
    expect(await registry.getTenant('discarded')).toBeUndefined();
    const kept = await onboardTenant(deps, { id: 'kept', tier: 'basic', audit_prompts: false });
    await registry.updateTenant({ ...kept, status: 'suspended' });
    await registry.discardNewTenant('kept');
    expect(await registry.getTenant('kept')).toMatchObject({ version: 2, status: 'suspended' });
  });

  /** A new enterprise tenant with a key, a template and an adapter; `deploying`: its silo is being deployed. */
  async function tenantAt(start: 'serving' | 'deploying'): Promise<string> {
    const id = `race-${next++}`;
    const deps = depsFor(registry);
    const onboarded = await onboardTenant(deps, { id, tier: 'enterprise', audit_prompts: false });
    await registry.putApiKey(
      { keyId: firstKeyOf(id), tenantId: id, secretHash: 'x', status: 'active', createdAt: '2026-12-07T00:00:00Z' },
      onboarded,
    );
    await putPrompt(deps, id, 'p0', template('the first template'));
    await registry.putAdapter(id, {
      name: 'a0',
      artifactUrl: `s3://artifacts/${id}/a0.tar.gz`,
      componentName: `${id}-a0`,
      baseComponentName: 'base',
      status: 'InService',
      createdAt: '2026-12-07T00:00:00Z',
    });
    if (start === 'deploying') {
      await requestSilo(deps, id);
      const requested = (await registry.getTenant(id)) as TenantRecord;
      const placement = requested.placement as NonNullable<TenantRecord['placement']>;
      await registry.updateTenant({ ...requested, placement: { ...placement, status: 'deploying' } });
    }
    return id;
  }

  async function worldOf(id: string): Promise<World> {
    return {
      tenant: (await registry.getTenant(id)) as TenantRecord,
      keys: await registry.listApiKeys(id),
      prompts: await registry.listPrompts(id),
      adapters: await registry.listAdapters(id),
    };
  }

  /** The registry with every answer delivered when the scheduler says: the operations interleave at each call. */
  function scheduled(s: fc.Scheduler): TenantRegistry {
    return new Proxy(registry, {
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => s.schedule(value.apply(target, args), String(property));
      },
    });
  }

  const RACES = PAIRS.flatMap(([a, b]) => (['serving', 'deploying'] as const).map((start) => [a, b, start] as const));

  it.each(RACES)(
    '%s racing %s (%s): both apply in some order, or the loser answers 409 and changes nothing',
    async (a, b, start) => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), async (s) => {
          const id = await tenantAt(start);
          const deps = depsFor(scheduled(s));
          const outcomes = await s.waitFor(
            Promise.allSettled([OPERATIONS[a].run(deps, id, 0), OPERATIONS[b].run(deps, id, 1)]),
          );
          for (const outcome of outcomes) {
            if (outcome.status === 'rejected') {
              // A refusal is the operator's to see: the state or the race it lost, never a failure.
              expect(outcome.reason).toBeInstanceOf(PlatformError);
              expect(['conflict', 'not_found']).toContain(outcome.reason.code);
            }
          }
          const world = await worldOf(id);
          for (const name of new Set([a, b])) {
            const acknowledged = outcomes
              .filter((outcome, index) => [a, b][index] === name && outcome.status === 'fulfilled')
              .map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value);
            OPERATIONS[name].holds(world, acknowledged);
          }
        }),
        { numRuns: 1, seed: 20261207 },
      );
    },
  );
});
