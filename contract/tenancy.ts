import * as z from './zod';

/** Tenant ids: validated once, at onboarding, and wherever infrastructure is named after one. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,40}$/;

/** Tiers are configuration, not code paths: each has default limits in the platform config. */
export const tierSchema = z.enum(['basic', 'standard', 'enterprise']);
export type Tier = z.infer<typeof tierSchema>;

/** What a tenant may use: requests and tokens per minute, tokens and dollars per month. */
export const tenantLimitsSchema = z.object({
  requestsPerMinute: z.number().check(z.int(), z.positive()),
  tokensPerMinute: z.number().check(z.int(), z.positive()),
  monthlyTokens: z.number().check(z.int(), z.positive()),
  // Bounded so the budget in nano-dollars stays an exact integer (below 2^53).
  monthlyBudgetUsd: z.number().check(z.positive(), z.lte(1_000_000)),
});

export type TenantLimits = z.infer<typeof tenantLimitsSchema>;

/** A scope's own limits below its tenant's (an API key's, each end user's): any of the tenant's four, the rest its tenant's. */
export const scopeLimitsSchema = z.strictObject(z.partial(tenantLimitsSchema).shape);
export type ScopeLimits = z.infer<typeof scopeLimitsSchema>;

/** Who a refusal (429) was for: the tenant as a whole, or one of its API keys or end users. */
export const LIMIT_SCOPES = ['tenant', 'key', 'user'] as const;
export type LimitScope = (typeof LIMIT_SCOPES)[number];

/**
 * The tag of a tenant's own AWS resources (a silo stack's, its inference profiles): activated as a
 * cost allocation tag, it splits AWS's own bill by tenant.
 */
export const TENANT_COST_TAG = 'tenantId';
