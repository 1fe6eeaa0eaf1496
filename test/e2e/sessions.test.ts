import { SESSION_BOUNDS } from '../../lambdas/core/sessions';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/** Conversation memory over HTTP: kept per tenant, bounded, expiring, wiped on request and at offboarding. */
describe('sessions', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let acme: string;
  let globex: string;

  const say = (credential: string, content: string, extra: Record<string, unknown> = {}) =>
    call(platform, 'POST', '/v1/chat/completions', {
      credential,
      body: { model: 'nova-micro', messages: [{ role: 'user', content }], max_tokens: 32, ...extra },
    });
  /** The turns the model was sent on its last call, as `role: text`. */
  const modelSaw = () => {
    const body = platform.bedrock.requests.at(-1)?.body as {
      messages: { role: string; content: { text: string }[] }[];
    };
    return body.messages.map((message) => `${message.role}: ${message.content.map((c) => c.text).join(' | ')}`);
  };

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    ({ apiKey: acme } = await onboard(platform, 'acme-co'));
    ({ apiKey: globex } = await onboard(platform, 'globex-co'));
  });
  afterAll(() => platform.close());

  it('keeps a conversation across two turns, meters the history as input, and is gone after DELETE', async () => {
    const first = await say(acme, 'My name is Ana.', { session_id: 'chat-1' });
    expect(first.status).toBe(200);
    const second = await say(acme, 'What is my name?', { session_id: 'chat-1' });
    expect(second.status).toBe(200);
    // the second call carried the first turn, and was billed for it
    expect(modelSaw()).toEqual([
      'user: My name is Ana.',
      `assistant: ${first.body.choices[0].message.content}`,
      'user: What is my name?',
    ]);
    expect(second.body.usage.prompt_tokens).toBeGreaterThan(first.body.usage.prompt_tokens);

    const kept = await call(platform, 'GET', '/v1/sessions/chat-1', { credential: acme });
    expect(kept.status).toBe(200);
    expect(kept.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);

    expect((await call(platform, 'DELETE', '/v1/sessions/chat-1', { credential: acme })).status).toBe(200);
    expect((await call(platform, 'GET', '/v1/sessions/chat-1', { credential: acme })).status).toBe(404);
    await say(acme, 'Hello again.', { session_id: 'chat-1' });
    expect(modelSaw()).toEqual(['user: Hello again.']);
  });

  it("answers another tenant's session id as not found, and never lets it read or extend it", async () => {
    await say(acme, 'Secret plans.', { session_id: 'shared-name' });
    expect((await call(platform, 'GET', '/v1/sessions/shared-name', { credential: globex })).status).toBe(404);
    expect((await call(platform, 'DELETE', '/v1/sessions/shared-name', { credential: globex })).status).toBe(404);
    await say(globex, 'Hi.', { session_id: 'shared-name' });
    expect(modelSaw()).toEqual(['user: Hi.']);
    const acmes = await call(platform, 'GET', '/v1/sessions/shared-name', { credential: acme });
    expect(acmes.body.messages[0].content).toBe('Secret plans.');
    expect(acmes.body.messages).toHaveLength(2);
    expect((await call(platform, 'GET', '/v1/sessions/bad%20id', { credential: acme })).status).toBe(404);
    expect((await say(acme, 'x', { session_id: 'bad id' })).status).toBe(400);
  });

  it('drops the oldest turns past its bounds, and expires a day after its last turn', async () => {
    for (let turn = 0; turn < SESSION_BOUNDS.maxMessages / 2 + 3; turn++) {
      await say(acme, `Turn ${turn}.`, { session_id: 'long' });
    }
    const kept = (await call(platform, 'GET', '/v1/sessions/long', { credential: acme })).body.messages;
    expect(kept).toHaveLength(SESSION_BOUNDS.maxMessages);
    expect(kept[0].content).toBe('Turn 3.');

    clock.advance(SESSION_BOUNDS.ttlSeconds * 1000 + 1000);
    expect((await call(platform, 'GET', '/v1/sessions/long', { credential: acme })).status).toBe(404);
    await say(acme, 'Fresh start.', { session_id: 'long' });
    expect(modelSaw()).toEqual(['user: Fresh start.']);
  });

  it('keeps the turn of a streamed answer too', async () => {
    const streamed = await say(acme, 'Stream this.', { session_id: 'streamed', stream: true });
    expect(streamed.status).toBe(200);
    const kept = (await call(platform, 'GET', '/v1/sessions/streamed', { credential: acme })).body.messages;
    expect(kept.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    expect(kept[1].content.length).toBeGreaterThan(0);
  });

  it("keeps each principal's sessions apart where the tenant asks, even under the same id", async () => {
    const { apiKey: alice } = await onboard(platform, 'apart-co', { session_scope: 'principal' });
    const bob = (
      await call(platform, 'POST', '/admin/tenants/apart-co/api-keys', { credential: platform.operatorToken })
    ).body.api_key;
    await say(alice, 'Alice speaking.', { session_id: 'desk' });
    expect((await call(platform, 'GET', '/v1/sessions/desk', { credential: bob })).status).toBe(404);
    await say(bob, 'Bob speaking.', { session_id: 'desk' });
    expect(modelSaw()).toEqual(['user: Bob speaking.']);
    const alices = await call(platform, 'GET', '/v1/sessions/desk', { credential: alice });
    expect(alices.body).toMatchObject({ id: 'desk', messages: [{ content: 'Alice speaking.' }, expect.anything()] });
    expect(
      (await call(platform, 'GET', '/admin/tenants/apart-co', { credential: platform.operatorToken })).body,
    ).toMatchObject({ session_scope: 'principal' });
  });

  it("keeps the session of a principal with a 1,100-character JWT subject (its key hashed within DynamoDB's bound)", async () => {
    await onboard(platform, 'long-sub-co', { session_scope: 'principal' });
    // Valid for long: this suite's clock has moved days ahead.
    const token = await platform.issuer.mint({
      tenantId: 'long-sub-co',
      userId: `user-${'x'.repeat(1100)}`,
      expiresInSeconds: 30 * 86_400,
    });
    const said = await say(token, 'Remember the long one.', { session_id: 'desk' });
    expect(said.status).toBe(200);
    const session = await call(platform, 'GET', '/v1/sessions/desk', { credential: token });
    expect(session.status).toBe(200);
    expect(session.body.messages[0]).toEqual({ role: 'user', content: 'Remember the long one.' });
    expect((await call(platform, 'DELETE', '/v1/sessions/desk', { credential: token })).status).toBe(200);
  });

  it('is deleted at offboarding, counted', async () => {
    const tombstone = await offboardCompletely(platform, clock, 'globex-co');
    expect(tombstone.offboarding.deleted.sessions).toBe(1);
  });
});
