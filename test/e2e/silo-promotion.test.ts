import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import OpenAI, { toFile } from 'openai';
import type { TenantLimits } from '../../contract/tenancy';
import { create as createIngestWorker } from '../../lambdas/handlers/ingest-worker';
import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import { lambdaContext } from '../../local/lambda-context';
import { type LocalPlatform, startLocalPlatform } from '../../local/platform';
import { ledgerState } from '../support/ledger';
import { call, localDynamoDb, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { fillerText } from '../support/text';

/**
 * A pool tenant promoted to a silo of its own, in local mode: the placement runner deploys a second
 * local plane, copies the tenant's data while the pool serves it, switches (the pool forwards from
 * then on), waits out cached decisions and calls in flight, catches the silo up with what they wrote,
 * and deletes the pool's copy. The clock is manual: the suite steps past the drain.
 */
const CACHE_TTL_SECONDS = 60;
const config = { ...platformConfig(), authorizerCacheTtlSeconds: CACHE_TTL_SECONDS };
const DRAIN_MS = offboardingDrainSeconds(config) * 1000;
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'ping' }], max_tokens: 8 };

describe('promotion from the pool to a silo', () => {
  const clock = new ManualClock();
  const deployFaults = new Set<string>();
  /** What happens while a tenant's silo deploy runs, its plane up (the deploy build not done yet). */
  const whileDeploying = new Map<string, () => Promise<void>>();
  let pool: Awaited<ReturnType<typeof startTestPlatform>>;
  const admin = (method: string, path: string, body?: unknown) =>
    call(pool, method, path, { credential: pool.operatorToken, body });

  beforeAll(async () => {
    pool = await startTestPlatform(config, {
      now: clock.now,
      siloDeployFault: (tenantId) => (deployFaults.has(tenantId) ? 'CREATE_FAILED: stack rolled back' : undefined),
      siloDeployed: async (tenantId) => whileDeploying.get(tenantId)?.(),
    });
  });
  afterAll(() => pool.close());

  /** Nothing of the tenant's data is left in the pool's stores (its record as the pool holds it). */
  const expectNoDataInPool = async (record: { id: string; placements: string[]; limits: TenantLimits }) => {
    const tenant = {
      tenantId: record.id,
      tier: 'enterprise' as const,
      limits: record.limits,
      placements: record.placements,
      auditPrompts: false,
      principal: { type: 'api_key' as const, id: 'test' },
    };
    expect((await pool.deps.documents.list(tenant, { limit: 10 })).records).toEqual([]);
    expect((await pool.deps.audit.list(tenant, { limit: 10 })).entries).toEqual([]);
    expect(await pool.deps.ledger.usage(tenant, { from: '2000-01-01', to: '2100-12-31' })).toEqual([]);
    expect((await pool.deps.vectors.exportChunks(tenant)).chunks).toEqual([]);
    expect((await pool.deps.files.list(tenant, { limit: 10 })).files).toEqual([]);
  };
  /** A batch file uploaded with the stock SDK through `platform`. */
  const uploadThrough = async (platform: LocalPlatform, apiKey: string, name: string) => {
    const client = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
    const line = { custom_id: name, method: 'POST', url: '/v1/chat/completions', body: chat };
    return client.files.create({
      file: await toFile(Buffer.from(JSON.stringify(line)), `${name}.jsonl`),
      purpose: 'batch',
    });
  };

  it("moves a tenant's documents, chunks, usage, audit and keys to its silo, and nothing stays in the pool", async () => {
    const { apiKey } = await onboard(pool, 'bank-co', { tier: 'enterprise' });
    const userToken = await pool.issuer.mint({ tenantId: 'bank-co', userId: 'alice' });
    const ingested = await call(pool, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'policy', text: 'The vault opens at nine. Tellers count twice.' },
    });
    expect(ingested.status).toBe(201);
    expect((await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    const usageBefore = (await call(pool, 'GET', '/v1/usage', { credential: apiKey })).body.data;
    const auditBefore = (await call(pool, 'GET', '/v1/audit', { credential: apiKey })).body.data;
    // an enterprise tenant's two ledger shards: which ones its calls used depends on their ids
    const ledgerItems = (await ledgerState(localDynamoDb(pool).scoped('bank-co'), 'bank-co')).items.length;
    expect(usageBefore.map((row: { model: string }) => row.model).sort()).toEqual([
      'nova-micro',
      'titan-embed-text-v2',
    ]);

    const earlyFile = await uploadThrough(pool, apiKey, 'early');
    const leaked = (await admin('POST', '/admin/tenants/bank-co/api-keys')).body;
    const template = { messages: [{ role: 'system', content: 'You answer for the bank.' }] };
    expect((await admin('PUT', '/admin/tenants/bank-co/prompts/teller', template)).status).toBe(200);
    const promoted = await admin('POST', '/admin/tenants/bank-co/promote');
    expect(promoted.status).toBe(202);
    expect(promoted.body).toMatchObject({ placement: 'pool', placement_status: 'requested' });
    // asking again before it runs asks again: still requested (its start, which may have failed, made again)
    const again = (await admin('POST', '/admin/tenants/bank-co/promote')).body;
    expect(again).toMatchObject({ placement_status: 'requested' });

    const totalsBefore = (await call(pool, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
    await pool.placement.runDue();
    // copied while the pool served the tenant, then switched: the pool forwards its calls to the silo
    const switched = (await admin('GET', '/admin/tenants/bank-co')).body;
    expect(switched).toMatchObject({ placement: 'silo', placement_status: 'catching_up' });
    const silo = pool.silos.get('bank-co') as LocalPlatform;
    expect(switched.silo_url).toBe(silo.url);
    // managed at the silo from the switch on
    expect((await admin('PATCH', '/admin/tenants/bank-co', { limits: { requestsPerMinute: 5 } })).status).toBe(409);
    // a credential the pool's authorizer has not cached goes on to the silo, which serves it
    expect((await call(pool, 'GET', '/v1/usage', { credential: userToken })).status).toBe(200);
    // a decision the pool cached before the switch is still served by the pool, which writes there
    // until the drain ends: a chat and an upload that the catch-up carries to the silo, billed once
    const late = await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(late.status).toBe(200);
    const lateUpload = await call(pool, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'late', text: 'The safe closes at five.' },
    });
    expect(lateUpload.status).toBe(201);
    const lateFile = await uploadThrough(pool, apiKey, 'late');
    // ...while the silo, serving since the switch, takes files of its own, which the catch-up keeps
    const siloFile = await uploadThrough(pool.silos.get('bank-co') as LocalPlatform, apiKey, 'at-silo');

    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/bank-co')).body.placement_status).toBe('catching_up');
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();

    const moved = (await admin('GET', '/admin/tenants/bank-co')).body;
    expect(moved).toMatchObject({
      placement: 'silo',
      placement_status: 'complete',
      silo_url: silo.url,
      // the audit listing and the usage read before the move are audited too, after they answered, and the file's upload
      migrated: {
        api_keys: 2,
        budget_alert_marks: 0,
        documents: 1,
        chunks: 1,
        ledger_items: ledgerItems,
        audit_records: auditBefore.length + 3,
        prompts: 1,
        files: 1,
        caught_up: expect.any(Number),
      },
    });
    // the file uploaded before the copy, the one the pool took during the drain, and the silo's own
    const siloFiles = new OpenAI({ baseURL: `${silo.url}/v1`, apiKey, maxRetries: 0 }).files;
    expect((await siloFiles.list()).data.map((file) => file.id).sort()).toEqual(
      [earlyFile.id, lateFile.id, siloFile.id].sort(),
    );
    expect(await (await siloFiles.content(lateFile.id)).text()).toContain('"custom_id":"late"');
    expect(moved.migrated.caught_up).toBeGreaterThan(0);
    // the month adds up across both planes: every call once, the late ones the pool took included
    const totalsAfter = (await call(silo, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
    expect(totalsAfter.requests).toBe(totalsBefore.requests + 2);
    expect(totalsAfter.output_tokens).toBe(totalsBefore.output_tokens + late.body.usage.completion_tokens);
    const lateFound = await call(silo, 'POST', '/v1/retrieve', {
      credential: apiKey,
      body: { query: 'when does the safe close', top_k: 3 },
    });
    expect(lateFound.body.data[0]).toMatchObject({ document_id: 'late' });
    // nothing of the copy's bookkeeping stays in the silo
    expect(
      (await ledgerState(localDynamoDb(silo).scoped('bank-co'), 'bank-co')).items.map((i) => i.sk),
    ).not.toContainEqual(expect.stringMatching(/^MOVED#/));

    // the silo serves the same key and the same IdP's tokens, with the tenant's data
    const atSilo = (path: string, credential = apiKey) => call(silo, 'GET', path, { credential });
    expect((await atSilo('/v1/usage')).body.data.map((row: { model: string }) => row.model).sort()).toEqual(
      usageBefore.map((row: { model: string }) => row.model).sort(),
    );
    expect((await atSilo('/v1/documents/policy')).body).toMatchObject({ id: 'policy', status: 'indexed' });
    expect((await atSilo('/v1/prompts')).body.data).toEqual([expect.objectContaining({ id: 'teller', version: 1 })]);
    expect(await pool.deps.registry.listPrompts('bank-co')).toEqual([]);
    const found = await call(silo, 'POST', '/v1/retrieve', {
      credential: userToken,
      body: { query: 'when does the vault open', top_k: 3 },
    });
    expect(found.body.data[0]).toMatchObject({ document_id: 'policy', text: expect.stringContaining('vault') });
    expect((await atSilo('/v1/audit')).body.data).toEqual(expect.arrayContaining(auditBefore));
    expect((await call(silo, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);

    // the pool forwards the tenant's calls to its silo, which answers them (its clients change
    // nothing), and holds nothing of its data
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    const forwarded = await call(pool, 'GET', '/v1/documents/policy?include=text&include=metadata', {
      credential: apiKey,
    });
    expect(forwarded.status).toBe(200);
    expect(forwarded.body).toMatchObject({ id: 'policy', status: 'indexed' });
    const siloAudit = (await atSilo('/v1/audit')).body.data as { route: string; status: number }[];
    expect(siloAudit).toContainEqual(expect.objectContaining({ route: 'GET /v1/documents/{id}', status: 200 }));
    const streamedChat = await fetch(`${pool.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    expect(streamedChat.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await streamedChat.text()).toMatch(/data: \[DONE\]/);
    // the silo decides: a key revoked there is refused through the pool too
    const key = (await call(silo, 'POST', '/admin/tenants/bank-co/api-keys', { credential: silo.operatorToken })).body;
    expect((await call(silo, 'GET', '/v1/usage', { credential: key.api_key })).status).toBe(200);
    expect(
      (await call(silo, 'DELETE', `/admin/tenants/bank-co/api-keys/${key.key_id}`, { credential: silo.operatorToken }))
        .status,
    ).toBe(200);
    expect((await call(pool, 'GET', '/v1/usage', { credential: userToken })).status).toBe(200);
    expect(
      (
        await call(silo, 'DELETE', `/admin/tenants/bank-co/api-keys/${leaked.key_id}`, {
          credential: silo.operatorToken,
        })
      ).status,
    ).toBe(200);
    expect((await call(pool, 'GET', '/v1/usage', { credential: leaked.api_key })).status).toBe(401);
    await expectNoDataInPool(moved);
    // the silo serves its tenant only: another tenant's key names no one there
    const other = await onboard(pool, 'other-co');
    expect((await call(silo, 'GET', '/v1/usage', { credential: other.apiKey })).status).toBe(401);
    expect(
      (await call(silo, 'POST', '/admin/tenants', { credential: silo.operatorToken, body: { id: 'new-co' } })).status,
    ).toBe(409);
  });

  it('a failed deploy leaves the tenant served from the pool, with the reason on its record', async () => {
    deployFaults.add('broken-co');
    const { apiKey } = await onboard(pool, 'broken-co', { tier: 'enterprise', placement: 'silo' });
    await pool.placement.runDue();
    const failed = (await admin('GET', '/admin/tenants/broken-co')).body;
    expect(failed).toMatchObject({
      placement: 'pool',
      placement_status: 'failed',
      placement_error: 'deploy failed: CREATE_FAILED: stack rolled back',
    });
    expect(pool.silos.has('broken-co')).toBe(false);
    expect((await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);

    // once the cause is fixed, asking again moves it
    deployFaults.delete('broken-co');
    expect((await admin('POST', '/admin/tenants/broken-co/promote')).body.placement_status).toBe('requested');
    await pool.placement.runDue();
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/broken-co')).body).toMatchObject({
      placement: 'silo',
      placement_status: 'complete',
    });
  });

  it('refuses a silo below the enterprise tier', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'small-co', placement: 'silo' })).status).toBe(400);
    await onboard(pool, 'small-co', { tier: 'standard' });
    expect((await admin('POST', '/admin/tenants/small-co/promote')).body.error.code).toBe('conflict');
  });

  it('silos come back with the pool after a restart, on the same URL, with their data', async () => {
    const dataDir = pool.dataDir;
    const restartClock = new ManualClock();
    const first = await startLocalPlatform({ dataDir: `${dataDir}/persisted`, port: 0, config, now: restartClock.now });
    const { apiKey } = await onboard(first, 'durable-co', { tier: 'enterprise' });
    await call(first, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'memo', text: 'Kept across restarts.' },
    });
    await call(first, 'POST', '/admin/tenants/durable-co/promote', { credential: first.operatorToken });
    await first.placement.runDue();
    restartClock.advance(DRAIN_MS + 1000);
    await first.placement.runDue();
    const siloUrl = first.silos.get('durable-co')?.url;
    await first.close();

    const second = await startLocalPlatform({
      dataDir: `${dataDir}/persisted`,
      port: 0,
      config,
      now: restartClock.now,
    });
    try {
      expect(second.silos.get('durable-co')?.url).toBe(siloUrl);
      const memo = await call(second.silos.get('durable-co') as LocalPlatform, 'GET', '/v1/documents/memo', {
        credential: apiKey,
      });
      expect(memo.body).toMatchObject({ id: 'memo', status: 'indexed' });
    } finally {
      await second.close();
    }
  });

  it('ingest jobs still queued in the pool are done by the silo, once, and the pool leaves them alone', async () => {
    const jobClock = new ManualClock();
    const quiet = await startTestPlatform(config, { now: jobClock.now, ingestWorker: false });
    try {
      const { apiKey } = await onboard(quiet, 'queue-bank', { tier: 'enterprise' });
      const big = await call(quiet, 'POST', '/v1/documents', {
        credential: apiKey,
        body: { id: 'ledger-book', text: fillerText(80 * 160 + 40, 'kestrel') },
      });
      expect(big.body).toMatchObject({ status: 'queued' });
      const chunks = big.body.chunks;
      const poolJobs = quiet.sqs.requests.map((request) => String(request.MessageBody));
      expect(poolJobs).toHaveLength(3);

      await call(quiet, 'POST', '/admin/tenants/queue-bank/promote', { credential: quiet.operatorToken });
      await quiet.placement.runDue();
      // a pool worker taking a job of a switched tenant leaves it for the silo
      const poolWorker = createIngestWorker(quiet.deps);
      const deliver = (worker: typeof poolWorker, bodies: string[]) =>
        worker({ Records: bodies.map((body, i) => ({ messageId: String(i), body })) } as SQSEvent, lambdaContext());
      expect(await deliver(poolWorker, poolJobs)).toEqual({ batchItemFailures: [] });
      jobClock.advance(DRAIN_MS + 1000);
      await quiet.placement.runDue();
      expect(
        (await call(quiet, 'GET', '/admin/tenants/queue-bank', { credential: quiet.operatorToken })).body,
      ).toMatchObject({ placement_status: 'complete', migrated: { queued_jobs: 3, chunks: 0 } });

      const silo = quiet.silos.get('queue-bank') as LocalPlatform;
      const siloJobs = silo.sqs.requests.map((request) => String(request.MessageBody));
      expect(siloJobs.map((body) => JSON.parse(body).batch).sort()).toEqual([0, 1, 2]);
      const siloWorker = createIngestWorker(silo.deps);
      await deliver(siloWorker, siloJobs);
      await deliver(siloWorker, siloJobs); // redelivered: done once
      const indexed = await call(silo, 'GET', '/v1/documents/ledger-book', { credential: apiKey });
      expect(indexed.body).toMatchObject({ status: 'indexed', chunks, indexed_chunks: chunks });
      const usage = (await call(silo, 'GET', '/v1/usage', { credential: apiKey })).body.data;
      // each job's reservation, copied with the ledger, settled in the silo once (redelivery adds nothing)
      expect(usage).toEqual([expect.objectContaining({ model: 'titan-embed-text-v2', requests: 3 })]);
      // what the pool's queue still holds finds nothing there to do
      expect(await deliver(poolWorker, poolJobs)).toEqual({ batchItemFailures: [] });
      expect(quiet.opensearch.requests.filter((r) => r.path.includes('_bulk')).length).toBe(0);
    } finally {
      await quiet.close();
    }
  });

  it('a batch running at the promotion goes on at the silo: the lines run in the pool kept, each billed once', async () => {
    const batchClock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
    const quiet = await startTestPlatform(config, { now: batchClock.now, ingestWorker: false });
    try {
      const { apiKey } = await onboard(quiet, 'batch-bank', { tier: 'enterprise', limits: { requestsPerMinute: 10 } });
      const lines = Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({ custom_id: `q-${i}`, method: 'POST', url: '/v1/chat/completions', body: chat }),
      );
      const pooled = new OpenAI({ baseURL: `${quiet.url}/v1`, apiKey, maxRetries: 0 });
      const input = await pooled.files.create({
        file: await toFile(Buffer.from(lines.join('\n')), 'q.jsonl'),
        purpose: 'batch',
      });
      const batch = await pooled.batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      // Each plane's worker takes the steps its queue got that are due by the clock (delivered by hand).
      const seen = new Map<LocalPlatform, number>();
      const waiting = new Map<LocalPlatform, { body: string; dueAt: number }[]>();
      const deliverQueued = async (plane: LocalPlatform) => {
        const sent = plane.sqs.requests.slice(seen.get(plane) ?? 0).map((r) => ({
          body: String(r.MessageBody),
          dueAt: batchClock.now() + Number(r.DelaySeconds ?? 0) * 1000,
        }));
        seen.set(plane, plane.sqs.requests.length);
        const queued = [...(waiting.get(plane) ?? []), ...sent];
        const due = queued.filter((message) => message.dueAt <= batchClock.now());
        waiting.set(
          plane,
          queued.filter((message) => !due.includes(message)),
        );
        const worker = createIngestWorker(plane.deps);
        for (const { body } of due) {
          await worker({ Records: [{ messageId: 'm', body }] } as SQSEvent, lambdaContext(undefined, 120_000));
        }
        return due.length;
      };
      // Half of 10 requests a minute: 5 lines in the pool, then its runner waits for the next minute.
      while ((await deliverQueued(quiet)) > 0);
      expect((await pooled.batches.retrieve(batch.id)).request_counts).toMatchObject({ completed: 5 });

      await call(quiet, 'POST', '/admin/tenants/batch-bank/promote', { credential: quiet.operatorToken });
      await quiet.placement.runDue();
      batchClock.advance(DRAIN_MS + 1000);
      await quiet.placement.runDue();
      expect(
        (await call(quiet, 'GET', '/admin/tenants/batch-bank', { credential: quiet.operatorToken })).body,
      ).toMatchObject({ placement_status: 'complete', migrated: { queued_jobs: 1 } });
      // What the pool's queue still holds (its runner's wait for the next minute) finds the tenant gone.
      expect(await deliverQueued(quiet)).toBe(1);
      expect((await pooled.batches.retrieve(batch.id)).request_counts).toMatchObject({ completed: 5 });

      const silo = quiet.silos.get('batch-bank') as LocalPlatform;
      const atSilo = new OpenAI({ baseURL: `${silo.url}/v1`, apiKey, maxRetries: 0 });
      for (let minute = 0; minute < 4 && (await atSilo.batches.retrieve(batch.id)).status !== 'completed'; minute++) {
        while ((await deliverQueued(silo)) > 0);
        batchClock.advance(61_000);
      }
      const done = await atSilo.batches.retrieve(batch.id);
      expect(done).toMatchObject({ status: 'completed', request_counts: { total: 12, completed: 12, failed: 0 } });
      const output = (await (await atSilo.files.content(done.output_file_id as string)).text()).trim().split('\n');
      expect(output.map((row) => JSON.parse(row).custom_id).sort()).toEqual(lines.map((_, i) => `q-${i}`).sort());
      // Settled once, at the silo, with the pool's lines: the reservation and the usage so far came with the data.
      const usage = (await call(silo, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
      expect(usage.requests).toBe(12);
    } finally {
      await quiet.close();
    }
  });

  it('offboarding a silo tenant purges its silo, destroys the silo plane, and leaves the pool a tombstone', async () => {
    const { apiKey } = await onboard(pool, 'exit-bank', { tier: 'enterprise', placement: 'silo' });
    await call(pool, 'POST', '/v1/documents', { credential: apiKey, body: { id: 'note', text: 'Leaving soon.' } });
    await pool.placement.runDue();
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();
    const silo = pool.silos.get('exit-bank') as LocalPlatform;
    expect((await call(silo, 'GET', '/v1/documents/note', { credential: apiKey })).status).toBe(200);
    const siloDir = join(pool.dataDir, 'silos', 'exit-bank');
    expect(existsSync(siloDir)).toBe(true);

    // served by its silo through the pool, until its offboarding, which the pool runs, starts
    expect((await call(pool, 'GET', '/v1/documents/note', { credential: apiKey })).status).toBe(200);
    expect((await admin('DELETE', '/admin/tenants/exit-bank')).status).toBe(202);
    // its offboarding's first step suspends it at its silo: refused there too, its own URL included,
    // long before the drain ends and the decommission purges it
    await pool.offboarding.runDue();
    expect(pool.offboarding.history('exit-bank')).toEqual(['HasSilo', 'SuspendAtSilo', 'WaitForDrain']);
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    expect((await call(pool, 'GET', '/v1/documents/note', { credential: apiKey })).status).toBe(403);
    const direct = await call(silo, 'GET', '/v1/documents/note', { credential: apiKey });
    expect([direct.status, direct.body.error.message]).toEqual([
      403,
      expect.stringMatching(/tenant 'exit-bank' is suspended$/),
    ]);
    const tombstone = await offboardCompletely(pool, clock, 'exit-bank');
    // the upload (made in the pool, copied), the read at the silo and the one forwarded there: all audited, all
    // purged in the silo; the pool, cleaned after the move, held only the key hashes that sent callers on
    expect(tombstone).toMatchObject({
      status: 'offboarded',
      offboarding: {
        deleted: {
          silo_documents: 1,
          silo_chunks: 1,
          silo_audit_records: 3,
          silo_ledger_items: 2,
          silo_api_keys: 1,
          documents: 0,
          chunks: 0,
          audit_records: 0,
          ledger_items: 0,
          api_keys: 1,
        },
      },
    });
    expect(pool.silos.has('exit-bank')).toBe(false);
    expect(existsSync(siloDir)).toBe(false);
    await expect(fetch(`${silo.url}/v1/usage`)).rejects.toThrow();
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(401);
  });

  it('offboarding in the middle of a move, once switched, ends the move and purges both planes', async () => {
    const { apiKey } = await onboard(pool, 'busy-bank', { tier: 'enterprise', placement: 'silo' });
    await call(pool, 'POST', '/v1/documents', { credential: apiKey, body: { id: 'memo', text: 'Closing soon.' } });
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/busy-bank')).body.placement_status).toBe('catching_up');
    const siloDir = join(pool.dataDir, 'silos', 'busy-bank');
    expect(existsSync(siloDir)).toBe(true);
    expect((await admin('DELETE', '/admin/tenants/busy-bank')).status).toBe(202);
    clock.advance(DRAIN_MS + 1000);
    // the catch-up finds the tenant leaving: the move goes no further
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/busy-bank')).body.placement_error).toMatch(/offboarding/);
    const tombstone = await offboardCompletely(pool, clock, 'busy-bank');
    expect(tombstone).toMatchObject({ status: 'offboarded', offboarding: { deleted: { documents: 1, chunks: 1 } } });
    expect(pool.silos.has('busy-bank')).toBe(false);
    expect(existsSync(siloDir)).toBe(false);
    expect(await pool.deps.registry.listApiKeys('busy-bank')).toEqual([]);
    // the pool's copy, not cleaned yet when the move ended, is purged too
    await expectNoDataInPool(tombstone);
  });
  /** Runs the moves as often as a Lambda step is tried (the first try, then the Retry's). */
  const runPlacementOut = async () => {
    for (let run = 0; run <= 4; run++) await pool.placement.runDue();
  };

  it('offboarding a tenant whose move is only requested ends the move before its silo is deployed', async () => {
    const { apiKey } = await onboard(pool, 'early-bank', { tier: 'enterprise' });
    await call(pool, 'POST', '/v1/documents', { credential: apiKey, body: { id: 'memo', text: 'Never moved.' } });
    expect((await admin('POST', '/admin/tenants/early-bank/promote')).body.placement_status).toBe('requested');
    const leaving = await admin('DELETE', '/admin/tenants/early-bank');
    expect(leaving.status).toBe(202);
    expect(leaving.body).toMatchObject({ status: 'offboarding', placement_status: 'requested' });
    // the move's next step finds the tenant leaving: it goes no further (its tries, then the
    // failure path, as the state machine's Retry and Catch), and no silo is left
    await runPlacementOut();
    expect((await admin('GET', '/admin/tenants/early-bank')).body).toMatchObject({
      placement: 'pool',
      placement_status: 'failed',
      placement_error: expect.stringMatching(/offboarding/),
    });
    const tombstone = await offboardCompletely(pool, clock, 'early-bank');
    expect(tombstone).toMatchObject({ status: 'offboarded', offboarding: { deleted: { documents: 1, chunks: 1 } } });
    expect(pool.silos.has('early-bank')).toBe(false);
    expect(existsSync(join(pool.dataDir, 'silos', 'early-bank'))).toBe(false);
    await expectNoDataInPool(tombstone);
    expect(await pool.deps.registry.listApiKeys('early-bank')).toEqual([]);
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(401);
  });

  it('offboarding while its silo deploys ends the move, destroys the silo plane and purges both planes', async () => {
    const { apiKey } = await onboard(pool, 'late-bank', { tier: 'enterprise' });
    await call(pool, 'POST', '/v1/documents', { credential: apiKey, body: { id: 'memo', text: 'Leaving mid-move.' } });
    let leaving: Awaited<ReturnType<typeof admin>> | undefined;
    whileDeploying.set('late-bank', async () => {
      leaving = await admin('DELETE', '/admin/tenants/late-bank');
    });
    expect((await admin('POST', '/admin/tenants/late-bank/promote')).status).toBe(202);
    await runPlacementOut();
    // asked while the deploy ran: the silo plane up, the move `deploying`
    expect(leaving?.status).toBe(202);
    expect(leaving?.body).toMatchObject({ status: 'offboarding', placement_status: 'deploying' });
    const silo = pool.silos.get('late-bank') as LocalPlatform;
    const siloDir = join(pool.dataDir, 'silos', 'late-bank');
    expect(existsSync(siloDir)).toBe(true);
    // the step after the deploy finds the tenant leaving: the copy never starts
    expect((await admin('GET', '/admin/tenants/late-bank')).body).toMatchObject({
      placement: 'pool',
      placement_status: 'failed',
      placement_error: expect.stringMatching(/offboarding/),
    });
    expect(pool.placement.history('late-bank')).not.toContain('CopyData');

    const tombstone = await offboardCompletely(pool, clock, 'late-bank');
    expect(pool.offboarding.history('late-bank')).toContain('DecommissionSilo');
    expect(tombstone).toMatchObject({
      status: 'offboarded',
      offboarding: { deleted: { documents: 1, chunks: 1 } },
    });
    // the copy never reached the silo: nothing of the tenant's to purge there, the plane destroyed
    expect(Object.keys(tombstone.offboarding.deleted).filter((store) => store.startsWith('silo_'))).toEqual([]);
    expect(pool.silos.has('late-bank')).toBe(false);
    expect(existsSync(siloDir)).toBe(false);
    await expect(fetch(`${silo.url}/v1/usage`)).rejects.toThrow();
    await expectNoDataInPool(tombstone);
    expect(await pool.deps.registry.listApiKeys('late-bank')).toEqual([]);
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(401);
  });
});
