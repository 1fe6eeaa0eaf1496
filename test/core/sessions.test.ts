import { recordTurn, SESSION_BOUNDS, withTurn } from '../../lambdas/core/sessions';
import { inMemoryPorts } from '../support/fakes';
import { tenantContext } from '../support/tenant';

const user = (content: string) => ({ role: 'user' as const, content });

describe('session memory', () => {
  it('drops the oldest messages past the message bound, and past the token bound, never the new turn', () => {
    const history = Array.from({ length: SESSION_BOUNDS.maxMessages }, (_, i) => user(`m${i}`));
    expect(withTurn(history, [user('new')]).map((m) => m.content)).toEqual([
      ...history.slice(1).map((m) => m.content),
      'new',
    ]);
    const long = user('word '.repeat(SESSION_BOUNDS.maxTokens));
    expect(withTurn([user('old')], [long])).toEqual([long]);
  });

  it('keeps both of two turns recorded at once: the later write retries on the newer history', async () => {
    const { sessions } = inMemoryPorts().ports;
    const deps = { sessions, now: () => Date.UTC(2026, 10, 25) };
    const tenant = tenantContext('busy-co');
    await Promise.all([recordTurn(deps, tenant, 's', [user('a')]), recordTurn(deps, tenant, 's', [user('b')])]);
    const stored = await sessions.get(tenant, 's', deps.now());
    expect(stored?.messages.map((m) => m.content).sort()).toEqual(['a', 'b']);
    expect(stored?.version).toBe(2);
  });
});
