import * as z from './zod';

/**
 * Why an attempt at a model may move on to the route's next target: the provider throttled it,
 * failed or was unavailable (`5xx`), did not answer within the route's attempt timeout, found the
 * request too long for the model's context, or stopped its answer with its own content filter.
 */
export const FALLBACK_CONDITIONS = ['throttled', '5xx', 'timeout', 'context_length', 'content_filter'] as const;
export type FallbackCondition = (typeof FALLBACK_CONDITIONS)[number];

/** The geographies of Bedrock's system-defined cross-region inference profiles (`us.<model id>`...). */
export const CROSS_REGION_GEOS = ['us', 'eu', 'apac', 'global'] as const;

/**
 * A route's target: a catalog model (`nova-lite`), a catalog model through a cross-region inference
 * profile (`nova-lite@us`), or one of the tenant's adapters (`ft:<base>:<adapter>`).
 */
export const ROUTE_TARGET_PATTERN = new RegExp(
  `^(ft:[a-z0-9][a-z0-9.-]*:[a-z0-9-]+|[a-z0-9][a-z0-9.-]*(@(${CROSS_REGION_GEOS.join('|')}))?)$`,
);

/** What a route is named by: the `model` a request asks for (a catalog model, an adapter, or a name of the tenant's own). */
export const ROUTE_NAME_PATTERN = /^[a-z0-9][a-z0-9.:-]{0,63}$/;

/** Most targets a route tries, and most routes a policy holds: a policy travels in the authorizer's context. */
export const MAX_ROUTE_TARGETS = 4;
export const MAX_ROUTES = 8;

const routeTargetSchema = z.strictObject({
  model: z
    .string()
    .check(
      z.maxLength(128),
      z.regex(ROUTE_TARGET_PATTERN, 'a target is <model>, <model>@<geo> or ft:<base>:<adapter>'),
    ),
  /** Share of first attempts this target takes (load balancing); absent: 1 for the first target, 0 for the others. */
  weight: z.optional(z.number().check(z.int(), z.gte(0), z.lte(100))),
});

/** A target's share of first attempts: its weight, else 1 for the route's first target and 0 for the others. */
export function targetWeight(target: { readonly weight?: number }, index: number): number {
  return target.weight ?? (index === 0 ? 1 : 0);
}

/**
 * How calls for one requested model are served: the first attempt goes to a target picked by weight;
 * while an attempt's failure is one of `on`, it is retried up to `retries` times (with backoff) when
 * throttled or a 5xx, then the call moves on through the other targets in order.
 */
export const routeSchema = z
  .strictObject({
    targets: z.array(routeTargetSchema).check(z.minLength(1), z.maxLength(MAX_ROUTE_TARGETS)),
    on: z._default(z.array(z.enum(FALLBACK_CONDITIONS)).check(z.maxLength(FALLBACK_CONDITIONS.length)), [
      'throttled',
      '5xx',
      'timeout',
    ]),
    retries: z._default(z.number().check(z.int(), z.gte(0), z.lte(3)), 0),
    /** How long one attempt may run before `timeout` moves on; absent: the whole call's time. */
    attempt_timeout_ms: z.optional(z.number().check(z.int(), z.gte(1_000), z.lte(600_000))),
  })
  .check(
    z.refine((route) => route.targets.some((target, index) => targetWeight(target, index) > 0), {
      message: 'at least one target must have a weight above 0',
      path: ['targets'],
    }),
  );
export type Route = z.infer<typeof routeSchema>;

/** Routes by requested model name: a tenant's own (on its record), or a tier's (in the platform config). */
export const routingPolicySchema = z
  .record(
    z.string().check(z.regex(ROUTE_NAME_PATTERN, `a route is named like a model: ${ROUTE_NAME_PATTERN.source}`)),
    routeSchema,
  )
  .check(z.refine((routes) => Object.keys(routes).length <= MAX_ROUTES, `a policy holds at most ${MAX_ROUTES} routes`));
export type RoutingPolicy = z.infer<typeof routingPolicySchema>;
