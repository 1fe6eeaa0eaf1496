import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbLedger } from '../../lambdas/adapters/dynamodb-ledger';
import { DynamoDbTenantPartitions } from '../../lambdas/adapters/dynamodb-tenant-partitions';
import {
  catchUpTenantData,
  copyTenantData,
  drainUntil,
  failPlacement,
  markDeploying,
  type PlaneStores,
  requestSilo,
  startCopy,
  switchPlanes,
} from '../../lambdas/core/placement';
import { createApiKey, onboardTenant, revokeApiKey, updateTenant } from '../../lambdas/core/tenants';
import { DEFAULT_MODELS, DEFAULT_TIERS, platformConfig } from '../../lib/config';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';
import { inMemoryPorts } from '../support/fakes';
import { tenantContext } from '../support/tenant';

/** A move's copy, switch and catch-up on dynalite, with the real ledger and partitions on both planes. */
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const { retrieval } = platformConfig();

describe('a move to a silo: the ledger and its items across both planes', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({
      tables: ['ledger', 'audit', 'documents', 'sledger', 'saudit', 'sdocuments'].map((name) => ({ name })),
      credentials,
    });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: dynamodb.endpoint,
        credentials,
      }),
    );
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  async function moving(id: string) {
    let nowMs = Date.UTC(2026, 10, 24, 12, 0, 10);
    const pool = inMemoryPorts();
    const silo = inMemoryPorts();
    const deps = {
      ...pool.ports,
      catalog: DEFAULT_MODELS,
      retrieval,
      tiers: DEFAULT_TIERS,
      vectorStores: retrieval.vectorStores,
      now: () => nowMs,
    };
    await onboardTenant(deps, { id, tier: 'enterprise', audit_prompts: false });
    const opts = { reservationTtlMs: 300_000 };
    const poolLedger = new DynamoDbLedger(() => db, 'ledger', {
      ...opts,
      audit: { tableName: 'audit', retentionDays: 30 },
    });
    const siloLedger = new DynamoDbLedger(() => db, 'sledger', {
      ...opts,
      audit: { tableName: 'saudit', retentionDays: 30 },
    });
    const marks = { marked: async () => [], mark: async () => true, unmark: async () => {} };
    const source: PlaneStores = {
      ...pool.ports,
      partitions: new DynamoDbTenantPartitions(() => db, { ledger: 'ledger', audit: 'audit', documents: 'documents' }),
      budgetAlertMarks: marks,
      region: 'us-east-1',
      apiUrl: 'https://plane.example',
    };
    const target: PlaneStores = {
      ...silo.ports,
      partitions: new DynamoDbTenantPartitions(() => db, {
        ledger: 'sledger',
        audit: 'saudit',
        documents: 'sdocuments',
      }),
      budgetAlertMarks: marks,
      region: 'us-east-1',
      apiUrl: 'https://plane.example',
    };
    const move = {
      ...deps,
      drainMs: 60_000,
      workflow: { start: async () => {} },
      authorizerCacheMs: 60_000,
      source,
      target,
      sleep: async () => {},
    };
    return {
      poolLedger,
      siloLedger,
      move,
      advance: (ms: number) => {
        nowMs += ms;
      },
      now: () => nowMs,
      start: async () => {
        await requestSilo(move, id);
        await markDeploying(move, id);
        await startCopy(move, id, { siloUrl: 'https://silo.example' });
      },
    };
  }

  it('does not let the silo spend again what the pool spent between the copy and the switch', async () => {
    // GIVEN a tenant allowed 1,000 tokens a month, 100 used in the pool
    const id = 'lease-co';
    const w = await moving(id);
    const t = tenantContext(id, { monthlyTokens: 1_000, tokensPerMinute: 1_000_000, requestsPerMinute: 1000 });
    const call = async (ledger: DynamoDbLedger, tokens: number) => {
      const r = await ledger.reserve(t, {
        requestId: `r${Math.random()}`,
        model: 'm',
        estimate: { tokens, costNanoUsd: tokens },
        nowMs: w.now(),
      });
      await ledger.settle(r, { inputTokens: tokens, outputTokens: 0, costNanoUsd: tokens });
    };
    await call(w.poolLedger, 100);
    await w.start();
    await copyTenantData(w.move, id);
    // WHEN the pool, still serving it (copied, switch pending: served here), uses the rest of its month
    for (let i = 0; i < 9; i++) await call(w.poolLedger, 100);
    await expect(call(w.poolLedger, 100)).rejects.toMatchObject({ code: 'quota_exceeded' });
    await switchPlanes(w.move, id);
    // THEN the silo, served from the switch on (no call of the pool's in the drain window at all),
    // must not admit another month on the ledger the copy took before the pool spent it
    let admittedBySilo = 0;
    for (let i = 0; i < 9; i++) {
      try {
        await call(w.siloLedger, 100);
        admittedBySilo += 100;
      } catch {
        break;
      }
    }
    w.advance(120_000);
    await catchUpTenantData(w.move, id);
    const usage = await w.siloLedger.usage(t, { from: '2026-11-01', to: '2026-11-30' });
    const billed = usage.reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0);
    expect({ admittedBySilo, billed }).toEqual({ admittedBySilo: 0, billed: 1_000 });
  });

  it('carries a key revoked during the copy to the silo even when the copy is rerun after its second write failed', async () => {
    const id = 'rerun-co';
    const w = await moving(id);
    const leaked = await createApiKey(w.move, id);
    await w.start();
    // the operator revokes a leaked key and suspends the tenant while the copy runs (legal while copying)
    const realList = w.move.source.registry.listPrompts;
    let once = true;
    (w.move.source.registry as { listPrompts: typeof realList }).listPrompts = async (tenantId) => {
      if (once) {
        once = false;
        await revokeApiKey(w.move, id, leaked.key_id);
        await updateTenant(w.move, id, { status: 'suspended' });
      }
      return realList(tenantId);
    };
    // the copy's second write of record and keys (after the advance to 'copied') fails once: a throttle, a timeout
    const realPut = w.move.target.registry.putApiKey;
    let puts = 0;
    (w.move.target.registry as { putApiKey: typeof realPut }).putApiKey = async (...args) => {
      if (++puts === 2) throw new Error('ThrottlingException');
      return realPut(...args);
    };
    await expect(copyTenantData(w.move, id)).rejects.toThrow('ThrottlingException');
    // the workflow retries the step (lambda/build retry): it finds 'copied' and returns at once
    await copyTenantData(w.move, id);
    expect((await w.move.target.registry.getApiKey(leaked.key_id))?.status).toBe('revoked');
    expect((await w.move.target.registry.getTenant(id))?.status).toBe('suspended');
  });

  it('lets a catch-up that failed after the switch be run again', async () => {
    const id = 'stuck-co';
    const w = await moving(id);
    await w.start();
    await copyTenantData(w.move, id);
    await switchPlanes(w.move, id);
    // the CatchUp build fails once (PLACEMENT_WORKFLOW has no buildRetry): the workflow's failure path records it
    await failPlacement(w.move, id, 'catch-up failed: ThrottlingException');
    const record = await w.move.registry.getTenant(id);
    expect(record?.placement).toMatchObject({ current: 'silo', status: 'catching_up' });
    // the pool's late writes are still unmerged and the silo still holds every base: asking again must resume
    const started: string[] = [];
    await requestSilo({ ...w.move, workflow: { start: async ({ tenantId }) => void started.push(tenantId) } }, id);
    expect(started).toEqual([id]);
    // the resumed workflow passes the steps the move took, and goes on from the catch-up
    await markDeploying(w.move, id);
    await startCopy(w.move, id, { siloUrl: 'https://silo.example' });
    await copyTenantData(w.move, id);
    expect((await switchPlanes(w.move, id)).placement).toMatchObject({ status: 'catching_up', current: 'silo' });
    w.advance(120_000);
    expect((await catchUpTenantData(w.move, id)).placement).toMatchObject({ status: 'cleaning' });
  });

  it('catches up a table of many pages: items the pool wrote and deleted after the copy, and none other', async () => {
    const id = 'paged-co';
    const w = await moving(id);
    const pk = `TENANT#${id}`;
    const put = (TableName: string, n: number, version = 1) =>
      db.send(new PutCommand({ TableName, Item: { pk, sk: `DOC#${String(n).padStart(4, '0')}`, version } }));
    for (let n = 0; n < 120; n++) await put('documents', n);
    await w.start();
    await copyTenantData(w.move, id);
    // after the copy, on cached decisions: 60 documents deleted, 60 written, 20 updated
    for (let n = 0; n < 60; n++) {
      await db.send(
        new DeleteCommand({ TableName: 'documents', Key: { pk, sk: `DOC#${String(n).padStart(4, '0')}` } }),
      );
    }
    for (let n = 120; n < 180; n++) await put('documents', n);
    for (let n = 100; n < 120; n++) await put('documents', n, 2);
    await switchPlanes(w.move, id);
    w.advance(120_000);
    const caughtUp = await catchUpTenantData(w.move, id);
    const silo = await w.move.target.partitions.read(id, 'documents');
    let all = silo.items;
    for (let cursor = silo.nextCursor; cursor; ) {
      const page = await w.move.target.partitions.read(id, 'documents', cursor);
      all = [...all, ...page.items];
      cursor = page.nextCursor;
    }
    const docs = all.filter((item) => String(item.sk).startsWith('DOC#'));
    expect(docs).toHaveLength(120);
    expect(docs.filter((item) => item.version === 2)).toHaveLength(20);
    expect(all.filter((item) => String(item.sk).startsWith('MOVED#'))).toEqual([]);
    expect(caughtUp.placement?.migrated.caught_up).toBe(140);
  });

  it('does not resurrect an item the silo deleted while the catch-up ran', async () => {
    const id = 'race-co';
    const w = await moving(id);
    const key = { pk: `TENANT#${id}`, sk: 'SESSION#s1' };
    await db.send(new PutCommand({ TableName: 'documents', Item: { ...key, version: 1 } }));
    await w.start();
    await copyTenantData(w.move, id);
    // a call the pool took on a cached decision writes the session once more (version 2)
    await db.send(new PutCommand({ TableName: 'documents', Item: { ...key, version: 2 } }));
    await switchPlanes(w.move, id);
    w.advance(120_000);
    // the silo serves the tenant meanwhile: it deletes the session after the catch-up read the table, before it wrote
    const partitions = w.move.target.partitions;
    const apply = partitions.apply.bind(partitions);
    (partitions as { apply: typeof apply }).apply = async (tenantId, table, writes) => {
      if (table === 'documents' && writes.some((write) => write.kind === 'put')) {
        await db.send(new DeleteCommand({ TableName: 'sdocuments', Key: key }));
      }
      return apply(tenantId, table, writes);
    };
    await catchUpTenantData(w.move, id);
    expect((await db.send(new GetCommand({ TableName: 'sdocuments', Key: key }))).Item).toBeUndefined();
  });

  it('still waits out the drain when the move is resumed after the switch step failed past its advance', async () => {
    const id = 'drain-co';
    const w = await moving(id);
    await w.start();
    await copyTenantData(w.move, id);
    const switched = await switchPlanes(w.move, id);
    const drainEnd = switched.placement?.drainUntil;
    expect(drainEnd).toBeDefined();
    // the SwitchToSilo build fails after its advance (carrySafeChanges throttled, the build killed):
    // the workflow's failure path records it
    await failPlacement(w.move, id, 'switch failed: ThrottlingException');
    // the operator asks again at once (request_silo is legal in 'moved'); the resumed workflow reruns the switch
    await requestSilo(w.move, id);
    const rerun = await switchPlanes(w.move, id);
    // the workflow's WaitForDrain waits until what the switch step exports
    expect(drainUntil(rerun, w.now)).toBe(drainEnd);
  });

  it('refuses the catch-up before the drain ends when the switch step failed past its advance', async () => {
    const id = 'drain-co2';
    const w = await moving(id);
    await w.start();
    await copyTenantData(w.move, id);
    await switchPlanes(w.move, id);
    await failPlacement(w.move, id, 'switch failed: ThrottlingException');
    await requestSilo(w.move, id);
    await switchPlanes(w.move, id);
    // 1 s after the switch: the pool's calls in flight may still settle in the pool for another 59 s
    w.advance(1_000);
    await expect(catchUpTenantData(w.move, id)).rejects.toMatchObject({ code: 'conflict' });
  });
});
