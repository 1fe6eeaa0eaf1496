import * as z from 'zod';
import { bedrockModels, type ModelCatalog } from '../../contract/catalog';
import { piiPolicySchema } from '../../contract/safety';
import { type TenantLimits, type Tier, tenantLimitsSchema, tierSchema } from '../../contract/tenancy';
import { issueApiKey } from './api-key';
import { PlatformError } from './errors';
import type { InferenceProfiles, TenantRegistry, VectorIndex } from './ports';
import { withCurrentPlacement } from './retrieval';
import {
  MAX_CACHE_TTL_SECONDS,
  servingPlacementSchema,
  sessionScopeSchema,
  type TenantRecord,
  tenantIdSchema,
  tenantStatusSchema,
} from './tenant';

export const onboardRequestSchema = z
  .object({
    id: tenantIdSchema,
    tier: tierSchema.default('basic'),
    /** Overrides of the tier's default limits. */
    limits: tenantLimitsSchema.partial().strict().optional(),
    audit_prompts: z.boolean().default(false),
    /** How long deterministic answers (temperature 0) are cached for the tenant; 0: never. */
    cache_ttl_seconds: z.number().int().min(0).max(MAX_CACHE_TTL_SECONDS).optional(),
    /** `principal`: each user or API key of the tenant keeps its own sessions. */
    session_scope: sessionScopeSchema.optional(),
    /** The tenant's own PII redaction instead of its tier's. */
    pii_redaction: piiPolicySchema.optional(),
    /** `silo`: the tenant gets a stack of its own (enterprise tier); it is served from the pool until that is ready. */
    placement: servingPlacementSchema.default('pool'),
  })
  .strict()
  .refine((request) => request.placement === 'pool' || request.tier === 'enterprise', {
    message: 'placement silo is for the enterprise tier',
    path: ['placement'],
  });
export type OnboardRequest = z.infer<typeof onboardRequestSchema>;

export const updateRequestSchema = z
  .object({
    /** A new tier resets the limits to its defaults, then applies `limits`. */
    tier: tierSchema.optional(),
    limits: tenantLimitsSchema.partial().strict().optional(),
    status: tenantStatusSchema.optional(),
    audit_prompts: z.boolean().optional(),
    cache_ttl_seconds: z.number().int().min(0).max(MAX_CACHE_TTL_SECONDS).optional(),
    session_scope: sessionScopeSchema.optional(),
    /** `null` goes back to the tier's redaction. */
    pii_redaction: piiPolicySchema.nullable().optional(),
  })
  .strict()
  .refine(
    (changes) => Object.keys(changes).length > 0,
    'name at least one of tier, limits, status, audit_prompts, cache_ttl_seconds, session_scope, pii_redaction',
  );
export type UpdateRequest = z.infer<typeof updateRequestSchema>;

export interface TenantAdminDeps {
  readonly registry: TenantRegistry;
  readonly vectors: VectorIndex;
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  readonly now: () => number;
  /** A silo plane's one tenant (it onboards no other); absent in the pool. */
  readonly siloTenantId?: string;
  /** Given: each new tenant gets its own inference profile of each Bedrock model of `catalog`. */
  readonly inferenceProfiles?: InferenceProfiles;
  readonly catalog?: ModelCatalog;
}

/** The admin API's view of a tenant. */
export function tenantView(record: TenantRecord) {
  return {
    id: record.tenantId,
    tier: record.tier,
    status: record.status,
    limits: record.limits,
    audit_prompts: record.auditPrompts,
    cache_ttl_seconds: record.cacheTtlSeconds ?? 0,
    session_scope: record.sessionScope ?? 'tenant',
    ...(record.piiRedaction && { pii_redaction: record.piiRedaction }),
    ...(record.inferenceProfiles && { inference_profiles: record.inferenceProfiles }),
    placements: record.placements,
    created_at: record.createdAt,
    placement: record.placement?.current ?? 'pool',
    ...(record.placement && {
      placement_status: record.placement.status,
      ...(record.placement.siloUrl && { silo_url: record.placement.siloUrl }),
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

export async function onboardTenant(
  deps: Pick<
    TenantAdminDeps,
    'registry' | 'vectors' | 'tiers' | 'now' | 'siloTenantId' | 'inferenceProfiles' | 'catalog'
  >,
  request: Omit<OnboardRequest, 'placement'>,
): Promise<TenantRecord> {
  if (deps.siloTenantId !== undefined) {
    throw new PlatformError('conflict', `this stack serves tenant '${deps.siloTenantId}' only: onboard at the pool`);
  }
  const record: TenantRecord = {
    tenantId: request.id,
    tier: request.tier,
    status: 'active',
    limits: tenantLimitsSchema.parse({ ...deps.tiers[request.tier], ...request.limits }),
    auditPrompts: request.audit_prompts,
    cacheTtlSeconds: request.cache_ttl_seconds,
    sessionScope: request.session_scope,
    piiRedaction: request.pii_redaction,
    placements: withCurrentPlacement({ tenantId: request.id, tier: request.tier, placements: [] }),
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
  await deps.registry.createTenant(onboarded);
  await deps.vectors.ensureTenantIndex(onboarded);
  return onboarded;
}

export async function getTenant(deps: Pick<TenantAdminDeps, 'registry'>, tenantId: string): Promise<TenantRecord> {
  const record = tenantIdSchema.safeParse(tenantId).success ? await deps.registry.getTenant(tenantId) : undefined;
  if (!record) throw new PlatformError('not_found', 'no such tenant');
  return record;
}

/** Changes tier, limits, status (suspend / resume) or audit settings; takes effect within the authorizer cache TTL. */
export async function updateTenant(
  deps: Pick<TenantAdminDeps, 'registry' | 'vectors' | 'tiers' | 'siloTenantId'>,
  tenantId: string,
  changes: UpdateRequest,
) {
  const current = await getTenant(deps, tenantId);
  assertNotLeaving(current);
  assertManagedHere(current, deps.siloTenantId);
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
  };
  // A tier change moves where new chunks go; chunks written before stay where they were, and the
  // record keeps listing that placement, so search, delete and offboarding still reach them.
  const updated = { ...changed, placements: withCurrentPlacement(changed) };
  if (updated.tier !== current.tier) await deps.vectors.ensureTenantIndex(updated);
  await deps.registry.updateTenant(updated);
  return updated;
}

/** Issues an API key for the tenant; the returned `api_key` is the only time the secret is shown. */
export async function createApiKey(deps: Pick<TenantAdminDeps, 'registry' | 'now' | 'siloTenantId'>, tenantId: string) {
  const tenant = await getTenant(deps, tenantId);
  assertNotLeaving(tenant);
  assertManagedHere(tenant, deps.siloTenantId);
  const issued = issueApiKey();
  const createdAt = new Date(deps.now()).toISOString();
  await deps.registry.putApiKey({
    keyId: issued.keyId,
    tenantId: tenant.tenantId,
    secretHash: issued.secretHash,
    status: 'active',
    createdAt,
  });
  return { key_id: issued.keyId, tenant_id: tenant.tenantId, api_key: issued.apiKey, created_at: createdAt };
}

export async function revokeApiKey(
  deps: Pick<TenantAdminDeps, 'registry' | 'siloTenantId'>,
  tenantId: string,
  keyId: string,
) {
  assertManagedHere(await getTenant(deps, tenantId), deps.siloTenantId);
  await deps.registry.revokeApiKey(tenantId, keyId);
  return { key_id: keyId, tenant_id: tenantId, status: 'revoked' };
}

/** A tenant being offboarded, or gone, takes no more changes: only the workflow moves it on. */
export function assertNotLeaving(tenant: TenantRecord): void {
  if (tenant.status === 'offboarding' || tenant.status === 'offboarded') {
    throw new PlatformError('conflict', `tenant '${tenant.tenantId}' is ${tenant.status}`);
  }
}

/**
 * Changes to a tenant go where it is served: in the pool, a tenant moving to its silo takes none
 * (they would not be copied), and one served by its silo is managed there.
 */
export function assertManagedHere(tenant: TenantRecord, siloTenantId: string | undefined): void {
  const placement = tenant.placement;
  if (siloTenantId !== undefined || !placement) return;
  if (placement.current === 'silo') {
    throw new PlatformError(
      'conflict',
      `tenant '${tenant.tenantId}' is managed at its own stack: ${placement.siloUrl}`,
    );
  }
  // While the silo deploys, changes still land here before the copy; from the freeze on they would not.
  if (placement.status === 'migrating' || placement.status === 'switching') {
    throw new PlatformError('conflict', `tenant '${tenant.tenantId}' is moving to its own stack (${placement.status})`);
  }
}
