import type { ModelCatalog } from '../../contract/catalog';
import { type FallbackCondition, type Route, type RoutingPolicy, targetWeight } from '../../contract/routing';
import { type ChatTarget, resolveChatTarget } from './adapters';
import { PlatformError } from './errors';
import type { MeteredCall, TokenUsage } from './metering';
import type { TenantContext } from './tenant';

/** A route's target as a call tries it: how it is served, and the name the route gives it (`nova-lite@us`). */
export interface RouteTarget extends ChatTarget {
  readonly name: string;
}

/** One attempt of a call: the target it tried, and how it ended (`ok`, a fallback condition, or the error's code). */
export interface Attempt {
  readonly target: string;
  readonly outcome: string;
}

/** The attempts as the `x-attempts` header and the audit record list them: `nova-lite=throttled, nova-micro=ok`. */
export function attemptsText(attempts: readonly Attempt[]): string[] {
  return attempts.map((attempt) => `${attempt.target}=${attempt.outcome}`);
}

/**
 * The route for the requested model: the tenant's own, else its tier's; with neither, the model
 * alone, tried once. A cross-region profile (`<model>@<geo>`) is a route's target only: where a
 * tenant's data is processed is chosen in its routes, never by a request naming one.
 */
export function routeFor(
  tenantRoutes: RoutingPolicy | undefined,
  tierRoutes: RoutingPolicy | undefined,
  requested: string,
): Route {
  const own = (routes: RoutingPolicy | undefined) =>
    routes && Object.hasOwn(routes, requested) ? routes[requested] : undefined;
  const route = own(tenantRoutes) ?? own(tierRoutes);
  if (route) return route;
  if (requested.includes('@')) throw new PlatformError('unknown_model', `chat model '${requested}' does not exist`);
  return { targets: [{ model: requested }], on: [], retries: 0 };
}

/**
 * The route's targets the tenant can be served by, in the order a call tries them: the first picked
 * by weight (from the request id, so a retried request starts where it started), then the others
 * in the route's order. A target that does not resolve now (an adapter not in service, a model no
 * longer in the catalog) is left out; none left is the first one's error (an unknown model).
 */
export async function routeTargets(
  deps: Parameters<typeof resolveChatTarget>[0] & { readonly catalog: ModelCatalog },
  tenant: TenantContext,
  route: Route,
  requestId: string,
): Promise<RouteTarget[]> {
  const resolved = await Promise.allSettled(route.targets.map((target) => resolveTarget(deps, tenant, target.model)));
  const first = pickByWeight(route, requestId);
  const order = [first, ...route.targets.keys()].filter((index, position) => position === 0 || index !== first);
  const targets = order.flatMap((index) => {
    const outcome = resolved[index];
    return outcome.status === 'fulfilled' ? [outcome.value] : [];
  });
  if (targets.length === 0) throw (resolved[0] as PromiseRejectedResult).reason;
  return targets;
}

/** `<model>@<geo>`: the catalog's Bedrock model through the geography's cross-region inference profile. */
async function resolveTarget(
  deps: Parameters<typeof resolveChatTarget>[0],
  tenant: TenantContext,
  name: string,
): Promise<RouteTarget> {
  const [model, geo] = name.split('@');
  const target = await resolveChatTarget(deps, tenant, model);
  if (!geo) return { ...target, name };
  if (!('bedrockModelId' in target.model)) {
    throw new PlatformError('unknown_model', `chat model '${name}': only Bedrock models have cross-region profiles`);
  }
  return { ...target, name, modelId: `${geo}.${target.model.bedrockModelId}` };
}

/** The index of the target a request's first attempt goes to, in proportion to the targets' weights. */
function pickByWeight(route: Route, requestId: string): number {
  const weights = route.targets.map(targetWeight);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let point = hash(requestId) % total;
  for (const [index, weight] of weights.entries()) {
    if (point < weight) return index;
    point -= weight;
  }
  return 0;
}

/** Which fallback condition a failed attempt meets, if any. */
export function fallbackCondition(error: unknown): FallbackCondition | undefined {
  switch (error instanceof PlatformError ? error.upstream : undefined) {
    case 'throttled':
      return 'throttled';
    case 'unavailable':
    case 'failed':
      return '5xx';
    case 'timeout':
      return 'timeout';
    case 'context_length':
      return 'context_length';
    default:
      return undefined;
  }
}

/** The wait before a target's `retry`th retry: full jitter under 200 ms, doubled each retry (at most 2 s), from the request id. */
export function retryDelayMs(retry: number, requestId: string): number {
  return hash(`${requestId}#${retry}`) % Math.min(2_000, 100 * 2 ** (retry + 1));
}

/** What trying a route needs: how to wait between retries (injectable, so tests never wait). */
export interface RouteDeps {
  readonly sleep?: (ms: number) => Promise<void>;
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Tries a routed call's targets until one answers, inside the call's one reservation: an attempt
 * that fails with one of the route's conditions is retried when throttled or a 5xx (up to the
 * route's `retries`, with backoff), then the call moves on to the next target. Each
 * attempt that may have run is billed with the call (`meter`), at its own model's price. Returns
 * the answer and the target that gave it (the caller ends the meter with its usage); when no
 * target answers, ends the meter and throws the last failure. The call's own deadline ends it
 * wherever it is: no fallback then.
 */
export async function tryRoute<P extends { readonly target: RouteTarget; readonly estimate: TokenUsage }, R>(
  deps: RouteDeps,
  route: Route,
  plans: readonly P[],
  call: { readonly requestId: string; readonly signal?: AbortSignal },
  meter: MeteredCall,
  attempts: Attempt[],
  attempt: (plan: P, signal: AbortSignal | undefined) => Promise<R>,
  /** What an answer the model's own content filter stopped used, so the route may move on; undefined for an answer to keep. */
  filtered?: (result: R) => TokenUsage | undefined,
): Promise<{ readonly plan: P; readonly result: R }> {
  for (const [index, plan] of plans.entries()) {
    const last = index === plans.length - 1;
    const movesOn = (condition: FallbackCondition | undefined) =>
      !last && condition !== undefined && route.on.includes(condition);
    for (let retry = 0; ; retry++) {
      // The call's deadline passed before this attempt (waiting to retry, say): it never runs, never billed.
      if (call.signal?.aborted) {
        await meter.endedBeforeAttempt();
        throw new PlatformError('upstream_timeout', 'the model did not answer in time', { upstream: 'timeout' });
      }
      const timed = attemptSignal(route, call.signal, last);
      try {
        const result = await attempt(plan, timed.signal).finally(timed.answered);
        const stopped = movesOn('content_filter') ? filtered?.(result) : undefined;
        if (!stopped) {
          attempts.push({ target: plan.target.name, outcome: 'ok' });
          return { plan, result };
        }
        attempts.push({ target: plan.target.name, outcome: 'content_filter' });
        meter.attemptAnswered(stopped, plan.target.model);
        break;
      } catch (error) {
        // The call's own deadline: nothing more can be tried.
        const condition = call.signal?.aborted ? undefined : fallbackCondition(error);
        attempts.push({ target: plan.target.name, outcome: condition ?? errorCode(error) });
        const retried =
          (condition === 'throttled' || condition === '5xx') && route.on.includes(condition) && retry < route.retries;
        if (!retried && !movesOn(condition)) {
          await meter.failed(error, plan.target.model, plan.estimate);
          throw error;
        }
        meter.attemptFailed(error, plan.target.model, plan.estimate);
        if (!retried) break;
        await (deps.sleep ?? wait)(retryDelayMs(retry, call.requestId));
      }
    }
  }
  // Only a last target stopped by its content filter gets here, and it is kept: unreachable.
  throw new Error('a route ran out of targets');
}

/**
 * An attempt's signal: the call's, and the route's attempt timeout when a timeout moves on (not for
 * the last target). The timeout bounds the attempt until it answers: a stream's first event stops it,
 * so the rest of the stream has the call's time.
 */
function attemptSignal(
  route: Route,
  signal: AbortSignal | undefined,
  last: boolean,
): { readonly signal: AbortSignal | undefined; readonly answered: () => void } {
  if (last || route.attempt_timeout_ms === undefined || !route.on.includes('timeout')) {
    return { signal, answered: () => undefined };
  }
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new DOMException('the attempt timed out', 'TimeoutError')),
    route.attempt_timeout_ms,
  );
  return {
    signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
    answered: () => clearTimeout(timer),
  };
}

function errorCode(error: unknown): string {
  return error instanceof PlatformError ? error.code : 'error';
}

/** FNV-1a: a stable spread of request ids over weights and jitter. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
