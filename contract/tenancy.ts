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

/** Who a refusal (429) was for: the tenant as a whole, or one of its projects, API keys or end users. */
export const LIMIT_SCOPES = ['tenant', 'project', 'key', 'user'] as const;

/** A project of a tenant (its API keys', or a JWT claim's): a name of up to 64 characters. */
export const PROJECT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const projectSchema = z.string().check(z.regex(PROJECT_PATTERN, `a project is named ${PROJECT_PATTERN.source}`));

/** Most projects a tenant gives limits of their own. */
export const MAX_PROJECTS_WITH_LIMITS = 100;
export type LimitScope = (typeof LIMIT_SCOPES)[number];

/**
 * The tag of a tenant's own AWS resources (a silo stack's, its inference profiles): activated as a
 * cost allocation tag, it splits AWS's own bill by tenant.
 */
export const TENANT_COST_TAG = 'tenantId';
