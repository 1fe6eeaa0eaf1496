import { routingPolicySchema } from '../../contract/routing';
import { piiPolicySchema } from '../../contract/safety';
import { TENANT_PARTITION_PREFIX } from '../../contract/tables';
import {
  MAX_PROJECTS_WITH_LIMITS,
  projectSchema,
  scopeLimitsSchema,
  TENANT_ID_PATTERN,
  tenantLimitsSchema,
  tierSchema,
} from '../../contract/tenancy';
import * as z from '../../contract/zod';
import { PlatformError } from './errors';
import { parseJson } from './json';

/** Tenant ids are validated once, at onboarding; every resource name derived from one goes through `tenantKey`. */

export const tenantIdSchema = z
  .string()
  .check(z.regex(TENANT_ID_PATTERN, `tenant id must match ${TENANT_ID_PATTERN.source}`));

/** What an operator may set: the lifecycle states `offboarding` and `offboarded` only the offboarding workflow sets. */
export const tenantStatusSchema = z.enum(['active', 'suspended']);
export const lifecycleStatusSchema = z.enum(['active', 'suspended', 'offboarding', 'offboarded']);

/** Index names that may hold the tenant's chunks: every placement it ever had, so deletes reach them all. */
export const placementsSchema = z.array(z.string().check(z.minLength(1))).check(z.maxLength(8));

/** Progress of an offboarding, kept on the record so a crashed run resumes where it stopped. */
export const offboardingSchema = z.object({
  requestedAt: z.string(),
  /** No credential cached before `requestedAt` can still be used, nor a call it started still write, after this. */
  drainUntil: z.string(),
  /** What each store has deleted so far; a store listed here is done. */
  deleted: z._default(z.record(z.string(), z.number().check(z.int(), z.nonnegative())), {}),
  /**
   * Whether a silo stack may exist for the tenant, decided when the offboarding began
   * (`siloMayExist`): its workflow decommissions it. Absent on offboardings begun before it was kept.
   */
  silo: z.optional(z.boolean()),
  completedAt: z.optional(z.string()),
});
export type Offboarding = z.infer<typeof offboardingSchema>;

/** Where the tenant is served: the shared pool, or a silo stack of its own. */
export const servingPlacementSchema = z.enum(['pool', 'silo']);

/** Steps of a move to a silo, in order; `failed` leaves the tenant served where it was. */
export const placementStatusSchema = z.enum([
  'requested',
  'deploying',
  'copying',
  'copied',
  'catching_up',
  'cleaning',
  'complete',
  'failed',
]);
export type PlacementStatus = z.infer<typeof placementStatusSchema>;

/** A tenant's projects' own limits, by project. */
export const projectLimitsSchema = z
  .record(projectSchema, scopeLimitsSchema)
  .check(
    z.refine(
      (projects) => Object.keys(projects).length <= MAX_PROJECTS_WITH_LIMITS,
      `at most ${MAX_PROJECTS_WITH_LIMITS} projects have limits of their own`,
    ),
  );

/** Model name to application inference profile ARN. */
export const inferenceProfilesSchema = z.record(
  z.string().check(z.maxLength(64)),
  z.string().check(z.startsWith('arn:'), z.maxLength(256)),
);

/** A tenant's move to its silo, kept on the record: every step reports here, and a rerun resumes from it. */
export const placementSchema = z.object({
  current: servingPlacementSchema,
  desired: servingPlacementSchema,
  status: placementStatusSchema,
  /** The silo's API base URL, once deployed. */
  siloUrl: z.optional(z.string()),
  /** Where the silo's stores are (its `PlaneResources` output, on AWS): what offboarding purges. */
  siloResources: z.optional(z.string()),
  /** The region the move deploys the silo in, when its operator chose one; absent: its configured region. */
  siloRegion: z.optional(z.string()),
  /** On the silo's record, once its tenant has returned to the pool: where the silo forwards its calls. */
  poolUrl: z.optional(z.string()),
  /** While `catching_up`: from this time no call the pool took for the tenant can still write. */
  drainUntil: z.optional(z.string()),
  /**
   * The tenant's inference profiles in the region it moves to, when its own are another region's:
   * made by the copy (the target plane calls them), recorded here at once so an offboarding deletes
   * them too; the record takes them once the move is done, its old ones deleted.
   */
  targetInferenceProfiles: z.optional(inferenceProfilesSchema),
  /** What the migration copied, by store. */
  migrated: z._default(z.record(z.string(), z.number().check(z.int(), z.nonnegative())), {}),
  /** Why the last attempt failed. */
  error: z.optional(z.string()),
  updatedAt: z.string(),
});
export type TenantPlacement = z.infer<typeof placementSchema>;

/** Whose a session is: the tenant's (any of its callers may continue it) or each principal's own. */
export const sessionScopeSchema = z.enum(['tenant', 'principal']);

/** The longest a tenant's answers may be cached: a week. */
export const MAX_CACHE_TTL_SECONDS = 7 * 24 * 3600;

export const tenantRecordSchema = z.object({
  tenantId: tenantIdSchema,
  /** Raised by every write of the record, each conditional on the version it read (0: written before versions). */
  version: z._default(z.number().check(z.int(), z.nonnegative()), 0),
  tier: tierSchema,
  status: lifecycleStatusSchema,
  limits: tenantLimitsSchema,
  /** Whether audit records keep the prompt text (off unless the tenant asks). */
  auditPrompts: z._default(z.boolean(), false),
  /** How long deterministic answers are cached for the tenant; absent or 0: no cache. */
  cacheTtlSeconds: z.optional(z.number().check(z.int(), z.gte(0), z.lte(MAX_CACHE_TTL_SECONDS))),
  /** `principal`: each user or key of the tenant has its own sessions; absent: the tenant's are shared. */
  sessionScope: z.optional(sessionScopeSchema),
  /** The tenant's own PII redaction, instead of its tier's. */
  piiRedaction: z.optional(piiPolicySchema),
  /** The tenant's own Bedrock inference profiles by model name: its calls' model ids, for AWS's bill. */
  inferenceProfiles: z.optional(inferenceProfilesSchema),
  /** The tenant's own routes (fallbacks, retries, weights) by requested model, before its tier's; as the admin API set them. */
  routing: z.optional(routingPolicySchema),
  /** Each of its end users' own limits (the request's `user`, a JWT's subject); absent: none apart. */
  userLimits: z.optional(scopeLimitsSchema),
  /** Its projects' own limits, by project; a project without is held by the tenant's limits alone. */
  projectLimits: z.optional(projectLimitsSchema),
  placements: z._default(placementsSchema, []),
  createdAt: z.string(),
  offboarding: z.optional(offboardingSchema),
  /** Absent: served from the pool, never asked to move. */
  placement: z.optional(placementSchema),
});
export type TenantRecord = z.infer<typeof tenantRecordSchema>;

/** The admin API's view of a tenant. */
export function tenantView(record: TenantRecord) {
  return {
    id: record.tenantId,
    version: record.version,
    tier: record.tier,
    status: record.status,
    limits: record.limits,
    audit_prompts: record.auditPrompts,
    cache_ttl_seconds: record.cacheTtlSeconds ?? 0,
    session_scope: record.sessionScope ?? 'tenant',
    ...(record.piiRedaction && { pii_redaction: record.piiRedaction }),
    ...(record.inferenceProfiles && { inference_profiles: record.inferenceProfiles }),
    ...(record.userLimits && { user_limits: record.userLimits }),
    ...(record.projectLimits && { project_limits: record.projectLimits }),
    placements: record.placements,
    created_at: record.createdAt,
    placement: record.placement?.current ?? 'pool',
    ...(record.placement && {
      placement_status: record.placement.status,
      // Where an unfinished move goes: `silo`, or `pool` (a return).
      ...(record.placement.status !== 'complete' && { moving_to: record.placement.desired }),
      ...(record.placement.siloUrl && { silo_url: record.placement.siloUrl }),
      ...(record.placement.siloRegion && { silo_region: record.placement.siloRegion }),
      ...(Object.keys(record.placement.migrated).length > 0 && { migrated: record.placement.migrated }),
      ...(record.placement.error && { placement_error: record.placement.error }),
    }),
    ...(record.offboarding && {
      offboarding: {
        requested_at: record.offboarding.requestedAt,
        drain_until: record.offboarding.drainUntil,
        deleted: record.offboarding.deleted,
        ...(record.offboarding.completedAt && { completed_at: record.offboarding.completedAt }),
      },
    }),
  };
}

/**
 * Whether this plane serves the tenant now. A silo serves its one tenant until a return to the
 * pool switches it back; the pool serves a tenant but while it is switched to its silo (its calls
 * are forwarded, one way or the other, from the switch on).
 */
export function servedHere(record: TenantRecord, siloTenantId: string | undefined): boolean {
  if (siloTenantId !== undefined) return record.tenantId === siloTenantId && record.placement?.current !== 'pool';
  return record.placement?.current !== 'silo';
}

/** Where this plane passes the tenant's calls on, when another serves it: its silo (from the pool), the pool (from its silo). */
export function forwardUrl(record: TenantRecord, siloTenantId: string | undefined): string | undefined {
  const placement = record.placement;
  if (siloTenantId === undefined) return placement?.current === 'silo' ? placement.siloUrl : undefined;
  return placement?.current === 'pool' ? placement.poolUrl : undefined;
}

/** Who is calling on behalf of the tenant: a user of its identity provider or one of its API keys. */
export const principalSchema = z.object({
  type: z.enum(['user', 'api_key']),
  id: z.string().check(z.minLength(1)),
});

/** The caller's tenant as the authorizer established it; immutable once built. */
export const tenantContextSchema = z.object({
  tenantId: tenantIdSchema,
  tier: tierSchema,
  principal: principalSchema,
  limits: tenantLimitsSchema,
  auditPrompts: z.boolean(),
  /** How long deterministic answers are cached; absent or 0: no cache. */
  cacheTtlSeconds: z.optional(z.number().check(z.int(), z.gte(0), z.lte(MAX_CACHE_TTL_SECONDS))),
  sessionScope: z.optional(sessionScopeSchema),
  piiRedaction: z.optional(piiPolicySchema),
  /** The tenant's own Bedrock inference profiles by model name: its calls' model ids, for AWS's bill. */
  inferenceProfiles: z.optional(inferenceProfilesSchema),
  /** The tenant's own routes by requested model. */
  routing: z.optional(routingPolicySchema),
  /** The calling API key's own limits, if it has any. */
  keyLimits: z.optional(scopeLimitsSchema),
  /** Each end user's own limits, if the tenant sets any. */
  userLimits: z.optional(scopeLimitsSchema),
  /** The caller's project (its API key's, or its JWT's claim), and that project's own limits if it has any. */
  project: z.optional(projectSchema),
  projectLimits: z.optional(scopeLimitsSchema),
  placements: placementsSchema,
  /** When the credential stops being valid (epoch seconds): a cached decision must not outlive it. */
  expiresAt: z.optional(z.number().check(z.int(), z.positive())),
});
export type TenantContext = Readonly<z.infer<typeof tenantContextSchema>>;

/** The tenant as its record says now, acting as `principal` (a queued job's uploader, say). */
export function contextFor(record: TenantRecord, principal: TenantContext['principal']): TenantContext {
  return Object.freeze({
    tenantId: record.tenantId,
    tier: record.tier,
    principal,
    limits: record.limits,
    auditPrompts: record.auditPrompts,
    placements: record.placements,
    ...(record.inferenceProfiles && { inferenceProfiles: record.inferenceProfiles }),
    ...(record.routing && { routing: record.routing }),
    ...(record.userLimits && { userLimits: record.userLimits }),
  });
}

/** The tenant as the platform itself acts for it (a move, an operator's read): not one of its callers. */
export function actingFor(record: TenantRecord, actor: string): TenantContext {
  return contextFor(record, { type: 'user', id: actor });
}

/** Partition key of everything the platform stores for a tenant. */
export function tenantKey(tenantId: string): string {
  return `${TENANT_PARTITION_PREFIX}${tenantId}`;
}

/** Authorizer context values must be flat strings, numbers or booleans. */
export type AuthorizerContext = Record<string, string | number | boolean>;

export function toAuthorizerContext(context: TenantContext): AuthorizerContext {
  return {
    tenantId: context.tenantId,
    tier: context.tier,
    principalType: context.principal.type,
    principalId: context.principal.id,
    limits: JSON.stringify(context.limits),
    auditPrompts: context.auditPrompts,
    ...(context.cacheTtlSeconds && { cacheTtlSeconds: context.cacheTtlSeconds }),
    ...(context.sessionScope && { sessionScope: context.sessionScope }),
    ...(context.piiRedaction && { piiRedaction: JSON.stringify(context.piiRedaction) }),
    ...(context.inferenceProfiles && { inferenceProfiles: JSON.stringify(context.inferenceProfiles) }),
    ...(context.routing && { routing: JSON.stringify(context.routing) }),
    ...(context.keyLimits && { keyLimits: JSON.stringify(context.keyLimits) }),
    ...(context.userLimits && { userLimits: JSON.stringify(context.userLimits) }),
    ...(context.project && { project: context.project }),
    ...(context.projectLimits && { projectLimits: JSON.stringify(context.projectLimits) }),
    placements: context.placements.join(','),
    ...(context.expiresAt !== undefined && { expiresAt: context.expiresAt }),
  };
}

/** Rebuilds and freezes the tenant context from what API Gateway passes on from the authorizer. */
export function fromAuthorizerContext(raw: Record<string, unknown> | null | undefined): TenantContext {
  const parsed = tenantContextSchema.safeParse({
    tenantId: raw?.tenantId,
    tier: raw?.tier,
    principal: { type: raw?.principalType, id: raw?.principalId },
    limits: typeof raw?.limits === 'string' ? parseJson(raw.limits) : undefined,
    // API Gateway passes authorizer context values on as strings.
    auditPrompts: raw?.auditPrompts === true || raw?.auditPrompts === 'true',
    cacheTtlSeconds: raw?.cacheTtlSeconds === undefined ? undefined : Number(raw.cacheTtlSeconds),
    sessionScope: raw?.sessionScope,
    piiRedaction: typeof raw?.piiRedaction === 'string' ? parseJson(raw.piiRedaction) : undefined,
    inferenceProfiles: typeof raw?.inferenceProfiles === 'string' ? parseJson(raw.inferenceProfiles) : undefined,
    routing: typeof raw?.routing === 'string' ? parseJson(raw.routing) : undefined,
    keyLimits: typeof raw?.keyLimits === 'string' ? parseJson(raw.keyLimits) : undefined,
    userLimits: typeof raw?.userLimits === 'string' ? parseJson(raw.userLimits) : undefined,
    project: raw?.project,
    projectLimits: typeof raw?.projectLimits === 'string' ? parseJson(raw.projectLimits) : undefined,
    placements: typeof raw?.placements === 'string' && raw.placements !== '' ? raw.placements.split(',') : [],
    expiresAt: raw?.expiresAt === undefined ? undefined : Number(raw.expiresAt),
  });
  // Only a misconfigured route reaches a handler without a valid context: never guess a tenant.
  if (!parsed.success) throw new PlatformError('unauthenticated', 'missing tenant context');
  return deepFreeze(parsed.data);
}

/** Freezes `value` and everything in it: a tenant context may be shared by requests (`tenantContexts`). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/**
 * The authorizer context values `fromAuthorizerContext` reads: what tells one rebuilt context from
 * another (every value `toAuthorizerContext` writes; a test holds them to it).
 */
export const AUTHORIZER_CONTEXT_FIELDS = [
  'tenantId',
  'tier',
  'principalType',
  'principalId',
  'limits',
  'auditPrompts',
  'cacheTtlSeconds',
  'sessionScope',
  'piiRedaction',
  'inferenceProfiles',
  'routing',
  'keyLimits',
  'userLimits',
  'project',
  'projectLimits',
  'placements',
  'expiresAt',
] as const;

/**
 * `fromAuthorizerContext`, remembered for the last `size` distinct authorizer outputs: a warm
 * function sees the same few callers again and again, and rebuilding one (three JSON values parsed,
 * the schema checked) was about 3% of a metered chat's CPU. Contexts are deeply frozen, so one
 * serves every request it matches; a context that fails to build is not remembered.
 */
export function tenantContexts(size = 256): (raw: Record<string, unknown> | null | undefined) => TenantContext {
  const built = new Map<string, TenantContext>();
  return (raw) => {
    // JSON, not a join: `5` and `'5'`, absent and `''`, stay apart as they may build differently.
    const key = JSON.stringify(AUTHORIZER_CONTEXT_FIELDS.map((field) => raw?.[field]));
    let context = built.get(key);
    if (!context) {
      context = fromAuthorizerContext(raw);
      if (built.size >= size) built.delete(built.keys().next().value as string);
      built.set(key, context);
    }
    return context;
  };
}

/**
 * API Gateway may serve a cached authorizer decision after the credential it was made for expired:
 * the decision carries the expiry, and an expired one is refused here (401), whatever the cache says.
 */
export function assertCredentialCurrent(context: TenantContext, nowMs: number): void {
  if (context.expiresAt !== undefined && nowMs >= context.expiresAt * 1000) {
    throw new PlatformError('unauthenticated', 'the credential has expired');
  }
}

/** Names a client might use to smuggle a tenant id past the authorizer. */
const TENANT_FIELD = /^(x-)?(tenant|tenant[-_]?id|tenantid|org(anization)?[-_]?id|account[-_]?id)$/i;

/** Throws when a request body, query string or header tries to name a tenant. */
export function assertNoTenantOverride(request: {
  body?: unknown;
  query?: Record<string, unknown> | null;
  headers?: Record<string, unknown> | null;
}): void {
  const named = [request.query, request.headers, isPlainObject(request.body) ? request.body : undefined].some(
    (fields) => fields && Object.keys(fields).some((name) => TENANT_FIELD.test(name)),
  );
  if (named) {
    throw new PlatformError(
      'tenant_override_forbidden',
      'the tenant is taken from your credential; remove the tenant field from the request',
    );
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
