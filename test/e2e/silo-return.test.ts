import { PLACEMENT_EVENTS } from '../../contract/events';
import { create as createPlacementSteps } from '../../lambdas/handlers/placement';
import { offboardingDrainSeconds, platformConfig } from '../../lib/config';
import { lambdaContext } from '../../local/lambda-context';
import type { LocalPlatform } from '../../local/platform';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/**
 * A silo tenant's return to the pool (a downgrade), in local mode: the return's workflow copies the
 * tenant from its silo plane into the pool while the silo serves it, switches (the pool serves it,
 * the silo forwards its calls there), waits out the silo's cached decisions and calls in flight,
 * catches the pool up, and decommissions the silo. The clock is manual: the suite steps past drains.
 */
const CACHE_TTL_SECONDS = 60;
const config = { ...platformConfig(), authorizerCacheTtlSeconds: CACHE_TTL_SECONDS };
const DRAIN_MS = offboardingDrainSeconds(config) * 1000;
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'ping' }], max_tokens: 8 };

describe('return from a silo to the pool', () => {
  const clock = new ManualClock();
  let pool: Awaited<ReturnType<typeof startTestPlatform>>;
  const admin = (method: string, path: string, body?: unknown) =>
    call(pool, method, path, { credential: pool.operatorToken, body });
  const atSiloAdmin = (silo: LocalPlatform, method: string, path: string, body?: unknown) =>
    call(silo, method, path, { credential: silo.operatorToken, body });

  beforeAll(async () => {
    pool = await startTestPlatform(config, { now: clock.now });
  });
  afterAll(() => pool.close());

  /** Onboards an enterprise tenant and promotes it to its silo, through the drain. */
  async function siloTenant(tenantId: string) {
    const { apiKey } = await onboard(pool, tenantId, { tier: 'enterprise' });
    expect((await admin('POST', `/admin/tenants/${tenantId}/promote`)).status).toBe(202);
    await pool.placement.runDue();
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();
    expect((await admin('GET', `/admin/tenants/${tenantId}`)).body.placement_status).toBe('complete');
    return { apiKey, silo: pool.silos.get(tenantId) as LocalPlatform };
  }

  it("brings a silo tenant's data, keys and settings back to the pool, serving it all along, and decommissions the silo", async () => {
    const { apiKey, silo } = await siloTenant('back-co');
    // managed at its silo: a key issued and one revoked there, its limits changed, data written there
    const issued = (await atSiloAdmin(silo, 'POST', '/admin/tenants/back-co/api-keys')).body;
    const revoked = (await atSiloAdmin(silo, 'POST', '/admin/tenants/back-co/api-keys')).body;
    expect((await atSiloAdmin(silo, 'DELETE', `/admin/tenants/back-co/api-keys/${revoked.key_id}`)).status).toBe(200);
    const limits = { ...config.tiers.enterprise, requestsPerMinute: 777 };
    expect((await atSiloAdmin(silo, 'PATCH', '/admin/tenants/back-co', { limits })).status).toBe(200);
    const uploaded = await call(silo, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'charter', text: 'The cooperative meets on Mondays.' },
    });
    expect(uploaded.status).toBe(201);
    expect((await call(silo, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    const totalsBefore = (await call(silo, 'GET', '/v1/usage', { credential: apiKey })).body.totals;

    // WHEN its operator asks the pool for its return
    const asked = await admin('POST', '/admin/tenants/back-co/demote');
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ placement: 'silo', placement_status: 'requested', moving_to: 'pool' });
    // still managed at its silo until the switch; promoting it meanwhile is refused
    expect((await admin('PATCH', '/admin/tenants/back-co', { limits })).status).toBe(409);
    expect((await admin('POST', '/admin/tenants/back-co/promote')).status).toBe(409);
    await pool.placement.runDue();

    // THEN it is switched: the pool serves it with what the silo managed
    const switched = (await admin('GET', '/admin/tenants/back-co')).body;
    expect(switched).toMatchObject({ placement: 'pool', placement_status: 'catching_up', limits });
    expect(pool.placement.returnHistory('back-co')).toEqual([
      'MarkReturning',
      'CopyData',
      'AdoptKeys',
      'SwitchToPool',
      'AdoptSwitchedKeys',
      'WaitForPoolCache',
    ]);
    const poolCalls = () => pool.bedrock.requests.length;
    const siloCalls = () => silo.bedrock.requests.length;
    const [poolBefore, siloBefore] = [poolCalls(), siloCalls()];
    // the key issued at the silo works at the pool, the one revoked there does not
    const atPool = await call(pool, 'POST', '/v1/chat/completions', { credential: issued.api_key, body: chat });
    expect(atPool.status).toBe(200);
    expect((await call(pool, 'GET', '/v1/usage', { credential: revoked.api_key })).status).toBe(401);
    // a client still calling the silo's URL is served by the silo until the pool's cached decisions
    // to forward there are gone (a late write the catch-up brings to the pool)
    const late = await call(silo, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(late.status).toBe(200);
    expect([poolCalls() - poolBefore, siloCalls() - siloBefore]).toEqual([1, 1]);
    expect((await admin('PATCH', '/admin/tenants/back-co', { limits })).status).toBe(409);
    // then the silo is flipped: it forwards the tenant's calls to the pool (once its own cache has let
    // go of its decision) and takes no more changes; the pool takes only the safe direction until done
    clock.advance(CACHE_TTL_SECONDS * 1000 + 1000);
    await pool.placement.runDue();
    expect(pool.placement.returnHistory('back-co').slice(6)).toEqual(['FlipSilo', 'AdoptLastKeys', 'WaitForDrain']);
    const direct = await call(silo, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(direct.status).toBe(200);
    expect([poolCalls() - poolBefore, siloCalls() - siloBefore]).toEqual([2, 1]);
    expect((await atSiloAdmin(silo, 'PATCH', '/admin/tenants/back-co', { limits })).status).toBe(409);
    expect((await admin('PATCH', '/admin/tenants/back-co', { limits })).status).toBe(409);

    // once the silo's calls can no longer write: caught up, the silo decommissioned
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();
    const returned = (await admin('GET', '/admin/tenants/back-co')).body;
    expect(returned).toMatchObject({ placement: 'pool', placement_status: 'complete', limits });
    expect(returned.silo_url).toBeUndefined();
    expect(returned.moving_to).toBeUndefined();
    expect(pool.silos.has('back-co')).toBe(false);
    expect(pool.eventBridge.events.map((event) => event.detailType)).toContain(PLACEMENT_EVENTS.returned);
    // the month adds up across both planes, and its data is the pool's
    const totalsAfter = (await call(pool, 'GET', '/v1/usage', { credential: apiKey })).body.totals;
    // the three chats since (one at the pool, the silo's late one, one forwarded from the silo), each once
    expect(totalsAfter.requests).toBe(totalsBefore.requests + 3);
    const outputTokens = [atPool, late, direct].reduce((sum, answer) => sum + answer.body.usage.completion_tokens, 0);
    expect(totalsAfter.output_tokens).toBe(totalsBefore.output_tokens + outputTokens);
    expect((await call(pool, 'GET', '/v1/documents/charter', { credential: apiKey })).body).toMatchObject({
      id: 'charter',
      status: 'indexed',
    });
    const found = await call(pool, 'POST', '/v1/retrieve', {
      credential: apiKey,
      body: { query: 'when does the cooperative meet', top_k: 3 },
    });
    expect(found.body.data[0]).toMatchObject({ document_id: 'charter' });
    // a pool tenant again: managed here, and it may be promoted again
    expect((await admin('PATCH', '/admin/tenants/back-co', { limits: config.tiers.enterprise })).status).toBe(200);
  });
  it('ends a return that an offboarding meets after its switch: both planes purged, the silo destroyed, the id a tombstone', async () => {
    const { apiKey, silo } = await siloTenant('gone-co');
    expect(
      (
        await call(silo, 'POST', '/v1/documents', {
          credential: apiKey,
          body: { id: 'memo', text: 'Close the books.' },
        })
      ).status,
    ).toBe(201);
    await admin('POST', '/admin/tenants/gone-co/demote');
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/gone-co')).body).toMatchObject({ placement_status: 'catching_up' });
    // WHEN it is offboarded mid-return (legal: the pool manages it from the switch)
    const tombstone = await offboardCompletely(pool, clock, 'gone-co');
    await pool.placement.runDue();
    // THEN its return ends, failed, and nothing of it is left on either plane
    expect(tombstone).toMatchObject({ status: 'offboarded' });
    expect(tombstone.offboarding.deleted).toMatchObject({ documents: 1, silo_documents: 1 });
    expect(pool.silos.has('gone-co')).toBe(false);
    expect(pool.placement.returnHistory('gone-co')).toContain('ReturnFailed');
    // a step of the return run late (its retry) adopts no key of the offboarded tenant
    await expect(
      createPlacementSteps(pool.deps)({ step: 'adopt_keys', tenantId: 'gone-co' }, lambdaContext()),
    ).rejects.toThrow(/not at this step of a move \(offboarded\)/);
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(401);
  });

  it('has the silo serve the calls the pool still forwards on a cached decision after the switch: none bounced, none refused', async () => {
    const { apiKey, silo } = await siloTenant('loop-co');
    // a client calls the silo's URL and, a little later, the pool's: each authorizer caches its decision,
    // the pool's (forward to the silo) outliving the silo's (serve it)
    expect((await call(silo, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(200);
    clock.advance((CACHE_TTL_SECONDS - 10) * 1000);
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(200);
    expect((await admin('POST', '/admin/tenants/loop-co/demote')).status).toBe(202);
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/loop-co')).body.placement_status).toBe('catching_up');
    // the silo's cached decision is gone, the pool's not yet: the pool forwards to the silo, which is
    // not flipped until the pool's cache has let go, so it serves the call
    clock.advance(20_000);
    await pool.placement.runDue();
    expect(pool.placement.returnHistory('loop-co').at(-1)).toBe('WaitForPoolCache');
    const siloCalls = silo.bedrock.requests.length;
    const forwarded = await call(pool, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(forwarded.status).toBe(200);
    expect(silo.bedrock.requests.length).toBe(siloCalls + 1);
    // once the pool's cached decision is gone, the silo is flipped and the pool serves it
    clock.advance(CACHE_TTL_SECONDS * 1000);
    await pool.placement.runDue();
    expect((await call(pool, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(200);
    clock.advance(DRAIN_MS + 1000);
    await pool.placement.runDue();
    expect((await admin('GET', '/admin/tenants/loop-co')).body.placement_status).toBe('complete');
  });
});
