import { bedrockModels, type ModelCatalog } from '../../contract/catalog';
import { type RoutingPolicy, routingPolicySchema } from '../../contract/routing';
import { piiPolicySchema } from '../../contract/safety';
import {
  projectSchema,
  scopeLimitsSchema,
  type TenantLimits,
  type Tier,
  tenantLimitsSchema,
  tierSchema,
} from '../../contract/tenancy';
import * as z from '../../contract/zod';
import { isKeyId, issueApiKey } from './api-key';
import { PlatformError } from './errors';
import { assertLegal, changeTenant, readTenant, writeIfCurrent } from './lifecycle';
import type { InferenceProfiles, TenantRegistry, VectorIndex } from './ports';
import { type VectorStores, withCurrentPlacement } from './retrieval';
import {
  MAX_CACHE_TTL_SECONDS,
  projectLimitsSchema,
  servingPlacementSchema,
  sessionScopeSchema,
  type TenantRecord,
  tenantIdSchema,
  tenantStatusSchema,
  tenantView,
} from './tenant';

export const onboardRequestSchema = z
  .strictObject({
    id: tenantIdSchema,
    tier: z._default(tierSchema, 'basic'),
    /** Overrides of the tier's default limits. */
    limits: z.optional(z.strictObject(z.partial(tenantLimitsSchema).shape)),
    audit_prompts: z._default(z.boolean(), false),
    /** How long deterministic answers (temperature 0) are cached for the tenant; 0: never. */
    cache_ttl_seconds: z.optional(z.number().check(z.int(), z.gte(0), z.lte(MAX_CACHE_TTL_SECONDS))),
    /** `principal`: each user or API key of the tenant keeps its own sessions. */
    session_scope: z.optional(sessionScopeSchema),
    /** The tenant's own PII redaction instead of its tier's. */
    pii_redaction: z.optional(piiPolicySchema),
    /** `silo`: the tenant gets a stack of its own (enterprise tier); it is served from the pool until that is ready. */
    placement: z._default(servingPlacementSchema, 'pool'),
  })
  .check(
    z.refine((request) => request.placement === 'pool' || request.tier === 'enterprise', {
      message: 'placement silo is for the enterprise tier',
      path: ['placement'],
    }),
  );
export type OnboardRequest = z.infer<typeof onboardRequestSchema>;

export const updateRequestSchema = z
  .strictObject({
    /** A new tier resets the limits to its defaults, then applies `limits`. */
    tier: z.optional(tierSchema),
    limits: z.optional(z.strictObject(z.partial(tenantLimitsSchema).shape)),
    status: z.optional(tenantStatusSchema),
    audit_prompts: z.optional(z.boolean()),
    cache_ttl_seconds: z.optional(z.number().check(z.int(), z.gte(0), z.lte(MAX_CACHE_TTL_SECONDS))),
    session_scope: z.optional(sessionScopeSchema),
    /** `null` goes back to the tier's redaction. */
    pii_redaction: z.optional(z.nullable(piiPolicySchema)),
    /** Each end user's own limits, in place of those before; `null`: none apart. */
    user_limits: z.optional(z.nullable(scopeLimitsSchema)),
    /** Projects' own limits by project, in place of those before; `null`: none. */
    project_limits: z.optional(z.nullable(projectLimitsSchema)),
    /** Applied only while the tenant is still at this version (as read with GET); otherwise 409. */
    version: z.optional(z.number().check(z.int(), z.nonnegative())),
  })
  .check(
    z.refine(
      ({ version: _, ...changes }) => Object.keys(changes).length > 0,
      'name at least one of tier, limits, status, audit_prompts, cache_ttl_seconds, session_scope, pii_redaction, user_limits, project_limits',
    ),
  );
export type UpdateRequest = z.infer<typeof updateRequestSchema>;

export interface TenantAdminDeps {
  readonly registry: TenantRegistry;
  readonly vectors: VectorIndex;
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  /** Where each tier's chunks live: a tenant's placement follows its tier. */
  readonly vectorStores: VectorStores;
  readonly now: () => number;
  /** A silo plane's one tenant (it onboards no other); absent in the pool. */
  readonly siloTenantId?: string;
  /** Given: each new tenant gets its own inference profile of each Bedrock model of `catalog`. */
  readonly inferenceProfiles?: InferenceProfiles;
  readonly catalog?: ModelCatalog;
}

export async function onboardTenant(
  deps: Pick<
    TenantAdminDeps,
    'registry' | 'vectors' | 'tiers' | 'vectorStores' | 'now' | 'siloTenantId' | 'inferenceProfiles' | 'catalog'
  >,
  request: Omit<OnboardRequest, 'placement'>,
): Promise<TenantRecord> {
  if (deps.siloTenantId !== undefined) {
    throw new PlatformError('conflict', `this stack serves tenant '${deps.siloTenantId}' only: onboard at the pool`);
  }
  const record: TenantRecord = {
    tenantId: request.id,
    version: 1,
    tier: request.tier,
    status: 'active',
    limits: tenantLimitsSchema.parse({ ...deps.tiers[request.tier], ...request.limits }),
    auditPrompts: request.audit_prompts,
    cacheTtlSeconds: request.cache_ttl_seconds,
    sessionScope: request.session_scope,
    piiRedaction: request.pii_redaction,
    placements: withCurrentPlacement({ tenantId: request.id, tier: request.tier, placements: [] }, deps.vectorStores),
    createdAt: new Date(deps.now()).toISOString(),
  };
  const previous = await deps.registry.getTenant(request.id);
  if (previous?.offboarding) {
    throw new PlatformError(
      'conflict',
      `tenant id '${request.id}' belonged to an offboarded tenant: ids are never reused`,
    );
  }
  if (previous) throw new PlatformError('conflict', `tenant '${request.id}' exists already`);
  // Before the record: a retried onboarding finds the profiles a failed one made (they are named by tenant).
  const inferenceProfiles =
    deps.inferenceProfiles && deps.catalog
      ? await deps.inferenceProfiles.createFor(request.id, bedrockModels(deps.catalog))
      : undefined;
  const onboarded = { ...record, ...(inferenceProfiles && { inferenceProfiles }) };
  // Fails with `conflict` when the id was taken between the read and this write.
  const created = await deps.registry.createTenant(onboarded);
  try {
    await deps.vectors.ensureTenantIndex(created);
  } catch (error) {
    // No tenant without its index: the record goes, and onboarding may be tried again.
    await deps.registry.discardNewTenant(created.tenantId);
    throw error;
  }
  return created;
}

export function getTenant(deps: Pick<TenantAdminDeps, 'registry'>, tenantId: string): Promise<TenantRecord> {
  return readTenant(deps.registry, tenantId);
}

/**
 * Changes tier, limits, status (suspend / resume) or audit settings, conditional on the version
 * read (and on `changes.version` when given); takes effect within the authorizer cache TTL.
 */
export async function updateTenant(
  deps: Pick<TenantAdminDeps, 'registry' | 'vectors' | 'tiers' | 'vectorStores' | 'siloTenantId'>,
  tenantId: string,
  changes: UpdateRequest,
) {
  const { version: _version, ...asked } = changes;
  const given = Object.entries(asked).filter(([, value]) => value !== undefined);
  const suspendsOnly = given.length === 1 && asked.status === 'suspended';
  return changeTenant(deps.registry, tenantId, async (current) => {
    assertLegal(current, suspendsOnly ? 'suspend' : 'configure', deps.siloTenantId);
    assertAtVersion(current, changes.version);
    const baseLimits = changes.tier ? deps.tiers[changes.tier] : current.limits;
    const changed: TenantRecord = {
      ...current,
      tier: changes.tier ?? current.tier,
      status: changes.status ?? current.status,
      limits: tenantLimitsSchema.parse({ ...baseLimits, ...changes.limits }),
      auditPrompts: changes.audit_prompts ?? current.auditPrompts,
      cacheTtlSeconds: changes.cache_ttl_seconds ?? current.cacheTtlSeconds,
      sessionScope: changes.session_scope ?? current.sessionScope,
      piiRedaction: changes.pii_redaction === null ? undefined : (changes.pii_redaction ?? current.piiRedaction),
      userLimits: changes.user_limits === null ? undefined : (changes.user_limits ?? current.userLimits),
      projectLimits: changes.project_limits === null ? undefined : (changes.project_limits ?? current.projectLimits),
    };
    // A tier change moves where new chunks go; chunks written before stay where they were, and the
    // record keeps listing that placement, so search, delete and offboarding still reach them.
    const updated = { ...changed, placements: withCurrentPlacement(changed, deps.vectorStores) };
    if (updated.tier !== current.tier) await deps.vectors.ensureTenantIndex(updated);
    return updated;
  });
}

/** A 409 with the tenant as it is, when the caller changes a version other than the current one. */
function assertAtVersion(current: TenantRecord, version: number | undefined): void {
  if (version !== undefined && version !== current.version) {
    throw new PlatformError(
      'conflict',
      `tenant '${current.tenantId}' is at version ${current.version}, not ${version}`,
      { current: tenantView(current) },
    );
  }
}

/** `PUT /admin/tenants/{id}/routing`: the tenant's routes, all of them (`{}` clears them), at `version` when given. */
export const routingRequestSchema = z.strictObject({
  routes: routingPolicySchema,
  version: z.optional(z.number().check(z.int(), z.nonnegative())),
});

/** The admin API's view of a tenant's routing: its own routes, and its tier's that apply where it has none. */
export function routingView(record: TenantRecord, tierRoutes: RoutingPolicy) {
  return {
    object: 'routing',
    tenant_id: record.tenantId,
    version: record.version,
    routes: record.routing ?? {},
    tier: record.tier,
    tier_routes: tierRoutes,
  };
}

/**
 * Replaces the tenant's routes, conditional on the record as read: every target must name a chat
 * model of the catalog (through a cross-region profile only if a Bedrock one), or an adapter of the
 * catalog's base model (which need not exist yet: a target not in service is passed over).
 */
export async function setRouting(
  deps: Pick<TenantAdminDeps, 'registry' | 'siloTenantId'> & { readonly catalog: ModelCatalog },
  tenantId: string,
  request: z.infer<typeof routingRequestSchema>,
): Promise<TenantRecord> {
  // The routes travel in every call's authorizer context: kept small.
  const size = JSON.stringify(request.routes).length;
  if (size > MAX_ROUTING_CHARS) {
    throw new PlatformError('invalid_request', `routes take ${size} characters as JSON: at most ${MAX_ROUTING_CHARS}`);
  }
  for (const [name, route] of Object.entries(request.routes)) {
    for (const target of route.targets) {
      const problem = targetProblem(deps.catalog, target.model);
      if (problem) throw new PlatformError('invalid_request', `routes.${name}: target '${target.model}' ${problem}`);
    }
  }
  const routes = Object.keys(request.routes).length > 0 ? request.routes : undefined;
  return changeTenant(deps.registry, tenantId, (current) => {
    assertLegal(current, 'configure', deps.siloTenantId);
    assertAtVersion(current, request.version);
    return { ...current, routing: routes };
  });
}

/** The most a tenant's routes may take as JSON: with its limits and the rest, an authorizer context stays well under API Gateway's. */
const MAX_ROUTING_CHARS = 2048;

/** Why a route target cannot serve, if it cannot. */
function targetProblem(catalog: ModelCatalog, target: string): string | undefined {
  const adapter = /^ft:([^:]+):/.exec(target);
  const [name, geo] = (adapter ? adapter[1] : target).split('@');
  const entry = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
  if (entry?.kind !== 'chat') return 'is not a chat model of the catalog';
  if (adapter && !('adapterBaseModel' in entry)) return `names no adapter base model: '${name}' is not one`;
  if (geo && !('bedrockModelId' in entry)) return 'has no cross-region profile: only Bedrock models do';
  return undefined;
}

/** Issues an API key for the tenant while it is as read; the returned `api_key` is the only time the secret is shown. */
/** `POST /admin/tenants/{id}/api-keys`: the key's own limits below its tenant's, if any (absent: the tenant's alone). */
export const apiKeyRequestSchema = z.strictObject({
  limits: z.optional(scopeLimitsSchema),
  /** The project the key's calls count toward. */
  project: z.optional(projectSchema),
});

/** `PATCH /admin/tenants/{id}/api-keys/{keyId}`: the key's project from its next call on (`null`: none). */
export const apiKeyChangeSchema = z.strictObject({ project: z.nullable(projectSchema) });

export async function createApiKey(
  deps: Pick<TenantAdminDeps, 'registry' | 'now' | 'siloTenantId'>,
  tenantId: string,
  request: z.infer<typeof apiKeyRequestSchema> = {},
) {
  const tenant = await getTenant(deps, tenantId);
  assertLegal(tenant, 'issue_key', deps.siloTenantId);
  const issued = issueApiKey();
  const createdAt = new Date(deps.now()).toISOString();
  const limits = request.limits && Object.keys(request.limits).length > 0 ? request.limits : undefined;
  const key = {
    keyId: issued.keyId,
    tenantId,
    secretHash: issued.secretHash,
    status: 'active',
    createdAt,
    ...(limits && { limits }),
    ...(request.project && { project: request.project }),
  } as const;
  await writeIfCurrent(deps.registry, tenant, () => deps.registry.putApiKey(key, tenant));
  return {
    key_id: issued.keyId,
    tenant_id: tenantId,
    api_key: issued.apiKey,
    created_at: createdAt,
    ...(limits && { limits }),
    ...(request.project && { project: request.project }),
  };
}

/**
 * Moves an active key of the tenant to another project (or none), while the tenant is as read:
 * calls admitted from then on count toward the new one; what the key used before stays with the old.
 */
export async function changeApiKey(
  deps: Pick<TenantAdminDeps, 'registry' | 'siloTenantId'>,
  tenantId: string,
  keyId: string,
  change: z.infer<typeof apiKeyChangeSchema>,
) {
  if (!isKeyId(keyId)) throw new PlatformError('not_found', 'no such active API key');
  const tenant = await getTenant(deps, tenantId);
  assertLegal(tenant, 'configure', deps.siloTenantId);
  const project = change.project ?? undefined;
  await writeIfCurrent(deps.registry, tenant, () => deps.registry.setApiKeyProject(keyId, project, tenant));
  return { key_id: keyId, tenant_id: tenantId, project: change.project };
}

export async function revokeApiKey(
  deps: Pick<TenantAdminDeps, 'registry' | 'siloTenantId'>,
  tenantId: string,
  keyId: string,
) {
  const tenant = await getTenant(deps, tenantId);
  assertLegal(tenant, 'revoke_key', deps.siloTenantId);
  if (!isKeyId(keyId)) throw new PlatformError('not_found', 'no such API key');
  await writeIfCurrent(deps.registry, tenant, () => deps.registry.revokeApiKey(keyId, tenant));
  return { key_id: keyId, tenant_id: tenantId, status: 'revoked' };
}
