import { parseModelFaults } from '../../local/model-faults';
import { call, onboard, startTestPlatform } from '../support/platform';

/** Faults on demand in local mode: a model throttles or fails, so refusals and fallbacks can be tried and seen. */
describe('local model faults', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;

  beforeAll(async () => {
    // GIVEN the platform started as with LOCAL_MODEL_FAULTS=nova-micro:throttle
    platform = await startTestPlatform(undefined, { modelFaults: { 'nova-micro': 'throttle' } });
    ({ apiKey } = await onboard(platform, 'faults-co'));
  });
  afterAll(() => platform.close());

  const chat = (model: string, stream = false) =>
    call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { model, stream, messages: [{ role: 'user', content: 'hello' }], max_tokens: 16 },
    });
  const setFault = (body: unknown, credential = platform.operatorToken) =>
    call(platform, 'PUT', '/local/model-faults', { credential, body });

  it('answers a throttled model as Bedrock throttling (503, retry shortly, nothing billed) and serves the others', async () => {
    const throttled = await chat('nova-micro');
    expect(throttled.status).toBe(503);
    expect(throttled.body.error.code).toBe('upstream_unavailable');
    expect((await chat('nova-micro', true)).status).toBe(503);
    expect((await chat('nova-lite')).status).toBe(200);
    const usage = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: apiKey })).body;
    expect(usage.data.map((row: { model: string }) => row.model)).toEqual(['nova-lite']);
  });

  it('changes a fault at runtime through the operator route, and only for the operator', async () => {
    expect((await setFault({ model: 'nova-lite', fault: 'error' }, apiKey)).status).toBe(403);
    expect((await setFault({ model: 'nova-lite', fault: 'explode' })).status).toBe(400);
    expect((await setFault({ model: 'gpt-9', fault: 'error' })).status).toBe(400);
    const set = await setFault({ model: 'nova-lite', fault: 'error' });
    expect(set.body).toEqual({ faults: { 'nova-micro': 'throttle', 'nova-lite': 'error' } });
    expect((await chat('nova-lite')).body.error.code).toBe('upstream_error');
    // a 500 from the provider may come after the model ran: billed at its reservation, as on AWS
    const usage = (await call(platform, 'GET', '/v1/usage?group_by=model', { credential: apiKey })).body;
    expect(usage.data).toMatchObject([{ model: 'nova-lite', requests: 2 }]);
    const cleared = await setFault({ model: 'nova-micro', fault: null });
    expect(cleared.body).toEqual({ faults: { 'nova-lite': 'error' } });
    expect((await chat('nova-micro')).status).toBe(200);
    expect((await call(platform, 'GET', '/local/model-faults', { credential: platform.operatorToken })).body).toEqual({
      faults: { 'nova-lite': 'error' },
    });
  });

  it('reads LOCAL_MODEL_FAULTS strictly, naming what is wrong', () => {
    const known = ['nova-micro', 'nova-lite'];
    expect(parseModelFaults('nova-micro:throttle, nova-lite:error', known)).toEqual({
      'nova-micro': 'throttle',
      'nova-lite': 'error',
    });
    expect(parseModelFaults('', known)).toEqual({});
    expect(() => parseModelFaults('nova-micro:explode', known)).toThrow("'nova-micro:explode' is not <model>:");
    expect(() => parseModelFaults('gpt-9:error', known)).toThrow("'gpt-9' is not a model of the catalog");
  });
});
