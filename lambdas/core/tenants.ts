import { z } from 'zod';
import type { TenantRegistry } from '../ports';
import { issueApiKey } from './api-key';
import { PlatformError } from './errors';
import { type TenantLimits, tenantLimitsSchema } from './limits';
import { type TenantRecord, type Tier, tenantIdSchema, tierSchema } from './tenant';

export const onboardRequestSchema = z
  .object({
    id: tenantIdSchema,
    tier: tierSchema.default('basic'),
    /** Overrides of the tier's default limits. */
    limits: tenantLimitsSchema.partial().strict().optional(),
  })
  .strict();
export type OnboardRequest = z.infer<typeof onboardRequestSchema>;

export interface TenantAdminDeps {
  readonly registry: TenantRegistry;
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  readonly now: () => number;
}

/** The admin API's view of a tenant. */
export function tenantView(record: TenantRecord) {
  return {
    id: record.tenantId,
    tier: record.tier,
    status: record.status,
    limits: record.limits,
    created_at: record.createdAt,
  };
}

export async function onboardTenant(deps: TenantAdminDeps, request: OnboardRequest): Promise<TenantRecord> {
  const record: TenantRecord = {
    tenantId: request.id,
    tier: request.tier,
    status: 'active',
    limits: { ...deps.tiers[request.tier], ...request.limits },
    createdAt: new Date(deps.now()).toISOString(),
  };
  await deps.registry.createTenant(record);
  return record;
}

export async function getTenant(deps: Pick<TenantAdminDeps, 'registry'>, tenantId: string): Promise<TenantRecord> {
  const record = tenantIdSchema.safeParse(tenantId).success ? await deps.registry.getTenant(tenantId) : undefined;
  if (!record) throw new PlatformError('not_found', 'no such tenant');
  return record;
}

/** Issues an API key for the tenant; the returned `api_key` is the only time the secret is shown. */
export async function createApiKey(deps: TenantAdminDeps, tenantId: string) {
  const tenant = await getTenant(deps, tenantId);
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
