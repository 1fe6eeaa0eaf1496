import type { Route, RoutingPolicy } from '../../contract/routing';
import { upstreamError } from '../../lambdas/adapters/bedrock-errors';
import { type ResolvedModel, resolveModel } from '../../lambdas/core/catalog';
import { completeChat, streamChat } from '../../lambdas/core/chat';
import { PlatformError } from '../../lambdas/core/errors';
import { admitModelCall, limitScopes, type TokenUsage } from '../../lambdas/core/metering';
import type { ModelProvider, Reservation } from '../../lambdas/core/ports';
import { type Attempt, type RouteTarget, routeTargets, tryRoute } from '../../lambdas/core/routing';
import { onboardTenant } from '../../lambdas/core/tenants';
import { DEFAULT_MODELS, DEFAULT_TIERS, platformConfig } from '../../lib/config';
import { contextOf, inMemoryPorts } from '../support/fakes';
import { tenantContext } from '../support/tenant';

const chatModel = (name: string) => resolveModel(DEFAULT_MODELS, name, 'chat') as ResolvedModel<'chat'>;
const micro = chatModel('nova-micro');
const lite = chatModel('nova-lite');
const provider = {} as ModelProvider;
const target = (model: ResolvedModel<'chat'>): RouteTarget => ({
  name: model.name,
  model,
  provider,
  modelId: model.name,
});
const estimate = { inputTokens: 100, outputTokens: 50 };
const plans = [
  { target: target(micro), estimate },
  { target: target(lite), estimate },
];
const route = (on: Route['on']): Route => ({
  targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }],
  on,
  retries: 0,
});
const tenant = tenantContext('route-co');
const noMetrics = { reservationOverage: () => undefined, settled: () => undefined };

/** A routed call's run: the reservation, what each attempt got, the attempts listed, and what was settled. */
async function routed(on: Route['on'], answer: (model: string) => Promise<TokenUsage & { finishReason?: string }>) {
  const { ports, settled } = inMemoryPorts();
  const reservations: Reservation[] = [];
  const ledger = {
    ...ports.ledger,
    reserve: async (...args: Parameters<typeof ports.ledger.reserve>) => {
      const reservation = await ports.ledger.reserve(...args);
      reservations.push(reservation);
      return reservation;
    },
  };
  const deps = { ledger, metrics: noMetrics };
  const meter = await admitModelCall(deps, tenant, {
    requestId: 'r1',
    model: micro,
    targets: [micro, lite],
    estimate,
    nowMs: 0,
  });
  const attempts: Attempt[] = [];
  const served = await tryRoute(
    { sleep: async () => undefined },
    route(on),
    plans,
    { requestId: 'r1' },
    meter,
    attempts,
    (plan) => answer(plan.target.model.name),
    (result) => (result.finishReason === 'content_filter' ? result : undefined),
  );
  await meter.finished(served.result, served.plan.target.model);
  return { reservation: reservations[0], served: served.plan.target.name, attempts, settled };
}

describe('a routed model call', () => {
  it('is reserved at its most expensive target', async () => {
    const { reservation } = await routed([], async () => ({ inputTokens: 1, outputTokens: 1 }));
    // nova-lite's price for the estimate, not nova-micro's (100 * 60 + 50 * 240 nano-dollars)
    expect(reservation.estimate).toEqual({ tokens: 150, costNanoUsd: 18_000 });
  });

  it('moves on when the request is too long for a model, and bills only the model that answered', async () => {
    const { served, attempts, settled } = await routed(['context_length'], async (model) => {
      if (model === 'nova-micro')
        throw upstreamError(named('ValidationException', 'Input is too long for requested model.'));
      return { inputTokens: 90, outputTokens: 10 };
    });
    expect(served).toBe('nova-lite');
    expect(attempts).toEqual([
      { target: 'nova-micro', outcome: 'context_length' },
      { target: 'nova-lite', outcome: 'ok' },
    ]);
    expect(settled).toEqual([
      {
        requestId: 'r1',
        inputTokens: 90,
        outputTokens: 10,
        costNanoUsd: 7_800,
        byModel: [{ model: 'nova-lite', inputTokens: 90, outputTokens: 10, costNanoUsd: 7_800 }],
      },
    ]);
  });

  it('moves on when the model’s own filter stopped its answer, billing both answers, each at its price, in one settle', async () => {
    const { served, attempts, settled } = await routed(['content_filter'], async (model) =>
      model === 'nova-micro'
        ? { inputTokens: 100, outputTokens: 5, finishReason: 'content_filter' }
        : { inputTokens: 100, outputTokens: 30, finishReason: 'stop' },
    );
    expect(served).toBe('nova-lite');
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['content_filter', 'ok']);
    // nova-micro: 100 * 35 + 5 * 140 = 4,200; nova-lite: 100 * 60 + 30 * 240 = 13,200
    expect(settled).toEqual([
      {
        requestId: 'r1',
        inputTokens: 200,
        outputTokens: 35,
        costNanoUsd: 17_400,
        byModel: [
          { model: 'nova-micro', inputTokens: 100, outputTokens: 5, costNanoUsd: 4_200 },
          { model: 'nova-lite', inputTokens: 100, outputTokens: 30, costNanoUsd: 13_200 },
        ],
      },
    ]);
  });

  it('keeps a filtered answer when the route does not move on at content_filter', async () => {
    const { served, settled } = await routed(['throttled'], async () => ({
      inputTokens: 100,
      outputTokens: 5,
      finishReason: 'content_filter',
    }));
    expect(served).toBe('nova-micro');
    expect(settled).toEqual([{ requestId: 'r1', inputTokens: 100, outputTokens: 5, costNanoUsd: 4_200 }]);
  });

  it('releases the reservation when every target refused before running', async () => {
    const { ports, events } = inMemoryPorts();
    const meter = await admitModelCall({ ledger: ports.ledger, metrics: noMetrics }, tenant, {
      requestId: 'r2',
      model: micro,
      targets: [micro, lite],
      estimate,
      nowMs: 0,
    });
    const throttled = upstreamError(named('ThrottlingException', 'slow down'));
    const attempts: Attempt[] = [];
    await expect(
      tryRoute({}, route(['throttled']), plans, { requestId: 'r2' }, meter, attempts, () => Promise.reject(throttled)),
    ).rejects.toBe(throttled);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['throttled', 'throttled']);
    expect(events).toEqual(['reserve r2 150', 'release r2']);
  });

  it('stops at the call’s deadline before a retry: the attempt that never ran is not billed', async () => {
    const { ports, events } = inMemoryPorts();
    const meter = await admitModelCall({ ledger: ports.ledger, metrics: noMetrics }, tenant, {
      requestId: 'r3',
      model: micro,
      targets: [micro, lite],
      estimate,
      nowMs: 0,
    });
    const deadline = new AbortController();
    const throttled = upstreamError(named('ThrottlingException', 'slow down'));
    const attempts: Attempt[] = [];
    const retrying = { ...route(['throttled']), retries: 2 };
    // The deadline passes while the route waits to retry.
    const sleep = async () => deadline.abort();
    await expect(
      tryRoute({ sleep }, retrying, plans, { requestId: 'r3', signal: deadline.signal }, meter, attempts, () =>
        Promise.reject(throttled),
      ),
    ).rejects.toMatchObject({ code: 'upstream_timeout' });
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['throttled']);
    expect(events).toEqual(['reserve r3 150', 'release r3']);
  });

  it('holds a JWT’s caller to its own subject’s limits whatever user it names; an API key’s caller to the user it names', () => {
    const userLimits = { requestsPerMinute: 1 };
    const jwt = { ...tenant, principal: { type: 'user' as const, id: 'sub-1' }, userLimits };
    expect(limitScopes(jwt, 'someone-else').map((scope) => scope.id)).toEqual(['sub-1']);
    const key = { ...tenant, principal: { type: 'api_key' as const, id: 'k1' }, userLimits };
    expect(limitScopes(key, 'alice').map((scope) => scope.id)).toEqual(['alice']);
    expect(limitScopes(key, undefined)).toEqual([]);
  });

  it('spreads first attempts by weight, the same for the same request id', async () => {
    const weighted = {
      targets: [
        { model: 'nova-micro', weight: 3 },
        { model: 'nova-lite', weight: 1 },
      ],
      on: [],
      retries: 0,
    };
    const deps = { catalog: DEFAULT_MODELS, models: provider };
    const firsts: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const [first, second] = await routeTargets(deps, tenant, weighted, `request-${i}`);
      // The other target follows as the fallback.
      expect(second.name).not.toBe(first.name);
      firsts.push(first.name);
    }
    const micros = firsts.filter((name) => name === 'nova-micro').length;
    expect(micros).toBeGreaterThan(700);
    expect(micros).toBeLessThan(800);
    const again = await routeTargets(deps, tenant, weighted, 'request-7');
    expect(again[0].name).toBe(firsts[7]);
  });

  it('reads why Bedrock did not answer', () => {
    expect(upstreamError(named('ThrottlingException', 'x')).upstream).toBe('throttled');
    expect(upstreamError(named('ServiceUnavailableException', 'x')).upstream).toBe('unavailable');
    expect(upstreamError(named('InternalServerException', 'x')).upstream).toBe('failed');
    expect(upstreamError(named('ValidationException', 'Malformed input request')).upstream).toBeUndefined();
    expect(upstreamError(named('ValidationException', 'prompt is too long: 210000 tokens')).upstream).toBe(
      'context_length',
    );
    expect(upstreamError(new PlatformError('invalid_request', 'ours')).upstream).toBeUndefined();
  });
});

function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

describe('a routed chat call', () => {
  const NOW = Date.UTC(2026, 10, 24, 12);

  async function routedWorld(models: ModelProvider, routing: RoutingPolicy) {
    const fake = inMemoryPorts();
    const deps = {
      ...fake.ports,
      models,
      catalog: DEFAULT_MODELS,
      retrieval: platformConfig().retrieval,
      tiers: DEFAULT_TIERS,
      vectorStores: platformConfig().retrieval.vectorStores,
      now: () => NOW,
      sleep: async () => undefined,
    };
    const record = await onboardTenant(deps, { id: 'routed-chat', tier: 'standard', limits: {}, audit_prompts: false });
    return { fake, deps, tenant: { ...contextOf(record), routing } };
  }

  it('lets a stream that began within the attempt timeout run past it', async () => {
    // GIVEN a route that moves on after 1 s, and a model that starts at once and ends 1.3 s later
    const slow: ModelProvider = {
      generate: async () => {
        throw new Error('not used');
      },
      async *stream(_tenant, request) {
        yield { type: 'text' as const, text: 'first ' };
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 1300);
          request.signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new PlatformError('upstream_timeout', 'aborted', { upstream: 'timeout' }));
          });
        });
        yield { type: 'text' as const, text: 'last' };
        yield { type: 'end' as const, finishReason: 'stop' as const, inputTokens: 10, outputTokens: 2 };
      },
    };
    const { deps, tenant } = await routedWorld(slow, {
      'nova-micro': {
        targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }],
        on: ['timeout'],
        retries: 0,
        attempt_timeout_ms: 1000,
      },
    });
    // WHEN it streams
    const chunks = [];
    for await (const chunk of streamChat(
      deps,
      tenant,
      { model: 'nova-micro', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 },
      { requestId: 's1' },
    )) {
      chunks.push(chunk);
    }
    // THEN the whole answer arrives: the attempt timeout ends an attempt's wait for its first event, not the stream
    expect(chunks.some((chunk) => 'failure' in chunk)).toBe(false);
    expect(chunks.map((chunk) => ('choices' in chunk ? (chunk.choices[0]?.delta.content ?? '') : '')).join('')).toBe(
      'first last',
    );
  });

  it('bills a format retry that failed after it may have run with the try before it, then moves on', async () => {
    // GIVEN nova-micro whose first answer breaks the format and whose second try fails with a 500, and nova-lite after it
    let microCalls = 0;
    const models: ModelProvider = {
      generate: async (_tenant, request) => {
        if (request.modelId !== 'amazon.nova-micro-v1:0') {
          return { text: '{"ok":true}', finishReason: 'stop', inputTokens: 20, outputTokens: 6 };
        }
        microCalls += 1;
        if (microCalls === 1) return { text: 'not json', finishReason: 'stop', inputTokens: 1000, outputTokens: 400 };
        throw upstreamError(named('InternalServerException', 'boom'));
      },
      stream: () => {
        throw new Error('not used');
      },
    };
    const { fake, deps, tenant } = await routedWorld(models, {
      'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-lite' }], on: ['5xx'], retries: 0 },
    });
    // WHEN it asks for JSON
    const answer = await completeChat(
      deps,
      tenant,
      {
        model: 'nova-micro',
        messages: [{ role: 'user', content: 'json please' }],
        max_tokens: 50,
        response_format: { type: 'json_object' },
      },
      { requestId: 'f2' },
    );
    // THEN nova-lite answers
    expect(answer.model).toBe('nova-lite');
    // AND nova-micro is billed its first try as it ran (1,400) and its second at its estimate (input and 50), nova-lite what it used
    const [settle] = fake.settled as { byModel?: { model: string; inputTokens: number; outputTokens: number }[] }[];
    const micro = settle.byModel?.find((part) => part.model === 'nova-micro');
    expect(micro?.outputTokens).toBe(400 + 50);
    expect(micro?.inputTokens).toBeGreaterThan(1000);
  });

  it('serves a cross-region profile only through a route: a request cannot name one itself', async () => {
    // GIVEN a tenant with no routes (its tier has none either)
    const seen: string[] = [];
    const models: ModelProvider = {
      generate: async (_tenant, request) => {
        seen.push(request.modelId);
        return { text: 'answer', finishReason: 'stop', inputTokens: 10, outputTokens: 2 };
      },
      stream: () => {
        throw new Error('not used');
      },
    };
    const { deps, tenant } = await routedWorld(models, {});
    // WHEN a caller asks for a model through a geography's profile, a real one or not
    for (const model of ['nova-micro@global', 'nova-micro@mars']) {
      await expect(
        completeChat(
          deps,
          { ...tenant, routing: undefined },
          { model, messages: [{ role: 'user', content: 'hi' }] },
          {
            requestId: `geo-${model}`,
          },
        ),
      ).rejects.toMatchObject({ code: 'unknown_model' });
    }
    // THEN no model ran: where the tenant's data is processed is the operator's choice, made in a route
    expect(seen).toEqual([]);
  });
});
