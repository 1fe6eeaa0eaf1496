import type { AdapterEndpointSettings } from '../../contract/adapters';
import type { AdapterRecord } from '../../lambdas/core/adapter-record';
import { ADAPTER_LOAD_POLL_MS, loadAdaptersAt } from '../../lambdas/core/adapters';
import { inMemoryPorts } from '../support/fakes';

/** A move's copy of a tenant's adapters onto its silo's GPU endpoint (`loadAdaptersAt`), against in-memory ports. */
const SILO_ENDPOINT: AdapterEndpointSettings = {
  endpointName: 'silo-adapters',
  baseComponents: { shared: 'silo-adapters-base-shared' },
  artifactBuckets: ['tenant-adapters'],
};
const tenant = { tenantId: 'acme-ai', tier: 'enterprise' as const };
const adapter = (name: string, status: AdapterRecord['status'], bucket = 'tenant-adapters'): AdapterRecord => ({
  name,
  artifactUrl: `s3://${bucket}/acme-ai/${name}.tar.gz`,
  componentName: `ad-acme-ai-${name}-pool`,
  baseComponentName: 'pool-base',
  status,
  createdAt: '2026-12-01T00:00:00.000Z',
});

describe('loading a moving tenant’s adapters at its silo', () => {
  function planes(...adapters: AdapterRecord[]) {
    const pool = inMemoryPorts();
    const silo = inMemoryPorts();
    for (const record of adapters) void pool.ports.registry.putAdapter('acme-ai', record);
    let now = 0;
    const slept: number[] = [];
    const clock = {
      now: () => now,
      // SageMaker finishes what it was creating while the move waits
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
        for (const [name, component] of silo.components) {
          if (component.status === 'Creating') silo.components.set(name, { status: 'InService' });
        }
      },
    };
    const target = {
      registry: silo.ports.registry,
      adapterHost: silo.ports.adapterHost,
      adapterEndpoint: SILO_ENDPOINT,
    };
    return { pool, silo, clock, slept, target };
  }

  it('creates each served or creating adapter on the silo endpoint, skips failed ones, and waits until all are in service', async () => {
    const { pool, silo, clock, slept, target } = planes(
      adapter('a-bot', 'InService'),
      adapter('b-bot', 'Creating'),
      adapter('c-bot', 'Failed'),
    );
    expect(await loadAdaptersAt(pool.ports.registry, target, tenant, clock)).toBe(2);
    expect(silo.events.filter((event) => event.startsWith('create'))).toEqual([
      expect.stringMatching(/^create ad-acme-ai-a-bot-[0-9a-f]{8} on silo-adapters-base-shared$/),
      expect.stringMatching(/^create ad-acme-ai-b-bot-[0-9a-f]{8} on silo-adapters-base-shared$/),
    ]);
    expect((await silo.ports.registry.listAdapters('acme-ai')).map((a) => [a.name, a.status])).toEqual([
      ['a-bot', 'InService'],
      ['b-bot', 'InService'],
    ]);
    expect(slept).toEqual([ADAPTER_LOAD_POLL_MS]);
    // a rerun finds them in service: nothing created again, no wait
    expect(await loadAdaptersAt(pool.ports.registry, target, tenant, clock)).toBe(2);
    expect(silo.events.filter((event) => event.startsWith('create'))).toHaveLength(2);
    expect(slept).toHaveLength(1);
  });

  it('fails the move, saying why, when the silo has no GPU endpoint or may not read the artifact', async () => {
    const served = planes(adapter('a-bot', 'InService'));
    const noEndpoint = { registry: served.target.registry, adapterHost: served.target.adapterHost };
    await expect(loadAdaptersAt(served.pool.ports.registry, noEndpoint, tenant, served.clock)).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(
        /has 1 adapter\(s\) and its silo has no GPU endpoint: .*silo\.acme-ai\.adapterInstanceType/,
      ),
    });
    const foreign = planes(adapter('a-bot', 'InService', 'other-bucket'));
    await expect(loadAdaptersAt(foreign.pool.ports.registry, foreign.target, tenant, foreign.clock)).rejects.toThrow(
      /s3:\/\/other-bucket, which the silo's endpoint may not read/,
    );
    expect(foreign.silo.events).toEqual([]);
    // a tenant without adapters moves to a silo without an endpoint
    const none = planes(adapter('gone-bot', 'Failed'));
    expect(await loadAdaptersAt(none.pool.ports.registry, noEndpoint, tenant, none.clock)).toBe(0);
  });

  it('fails with SageMaker’s reason when a component fails at the silo, and creates it again when asked again', async () => {
    const { pool, silo, clock, target } = planes(adapter('a-bot', 'InService'));
    const failing = {
      ...target,
      adapterHost: {
        ...target.adapterHost,
        create: async (component: Parameters<typeof target.adapterHost.create>[0]) => {
          await target.adapterHost.create(component);
          silo.components.set(component.componentName, { status: 'Failed', failureReason: 'ClientError: bad weights' });
        },
      },
    };
    await expect(loadAdaptersAt(pool.ports.registry, failing, tenant, clock)).rejects.toThrow(
      "adapter 'a-bot' could not be loaded at the silo: ClientError: bad weights",
    );
    expect(await loadAdaptersAt(pool.ports.registry, target, tenant, clock)).toBe(1);
    expect(silo.events.filter((event) => event.startsWith('delete'))).toHaveLength(1);
    expect((await silo.ports.registry.getAdapter('acme-ai', 'a-bot'))?.status).toBe('InService');
  });
});
