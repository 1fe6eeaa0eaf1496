import * as z from 'zod';
import { type ModelCatalog, modelCatalogSchema } from '../contract/catalog';
import type { JwtSettings, RetrievalSettings } from '../contract/environment';
import { HANDLER_TIMEOUT_SECONDS } from '../contract/lambda';
import { INGEST_QUEUE } from '../contract/queue';
import { TENANT_ID_PATTERN, type TenantLimits, type Tier, tenantLimitsSchema } from '../contract/tenancy';
import type { VectorSearchSizing } from './constructs/vector-search';

export interface PlatformConfig {
  /** Default limits of each tier; a tenant may override them at onboarding. */
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  readonly models: ModelCatalog;
  /** Absent: the platform accepts tenant API keys only. */
  readonly jwt?: JwtSettings;
  /** How long API Gateway caches an authorizer decision; also how long a revoked key may still work. */
  readonly authorizerCacheTtlSeconds: number;
  /** Largest request body a route accepts, in bytes. */
  readonly maxRequestBodyBytes: number;
  /** How long audit records are kept before DynamoDB TTL removes them. */
  readonly auditRetentionDays: number;
  /**
   * After this long an unsettled reservation is released as abandoned. Must exceed the handlers'
   * Lambda timeout (30 s), or a slow call's settle would find its reservation gone.
   */
  readonly reservationTtlSeconds: number;
  /** Embedding model, chunking and size limit of documents. */
  readonly retrieval: RetrievalSettings;
  /** Size of the OpenSearch domain. */
  readonly search: VectorSearchSizing;
  /** How long the functions' log groups keep their logs, in days (a CloudWatch Logs retention). */
  readonly logRetentionDays: number;
}

/**
 * OpenSearch domain sizes. `dev` (the default, so a first deploy stays small): one data node, no
 * dedicated masters, one zone. `production`: two data nodes over two zones and three dedicated masters.
 */
export const SEARCH_SIZINGS: Readonly<Record<'dev' | 'production', VectorSearchSizing>> = {
  dev: {
    dataNodes: 1,
    dataNodeInstanceType: 'r6g.large.search',
    masterNodes: 0,
    masterNodeInstanceType: 'm6g.large.search',
    volumeSizeGb: 20,
  },
  production: {
    dataNodes: 2,
    dataNodeInstanceType: 'r6g.large.search',
    masterNodes: 3,
    masterNodeInstanceType: 'm6g.large.search',
    volumeSizeGb: 100,
  },
};

/** The retentions CloudWatch Logs offers, in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** Slack for clock skew between API Gateway, Lambda and the workflow. */
const DRAIN_MARGIN_SECONDS = 30;

/**
 * How long offboarding waits before it deletes: a decision cached by the authorizer just before the
 * tenant left stays usable for the cache TTL, and a call it let in may run (and write) for the
 * longest handler or worker timeout after that.
 */
export function offboardingDrainSeconds(config: Pick<PlatformConfig, 'authorizerCacheTtlSeconds'>): number {
  return (
    config.authorizerCacheTtlSeconds +
    Math.max(HANDLER_TIMEOUT_SECONDS, INGEST_QUEUE.workerTimeoutSeconds) +
    DRAIN_MARGIN_SECONDS
  );
}

export const DEFAULT_TIERS: Record<Tier, TenantLimits> = {
  basic: { requestsPerMinute: 60, tokensPerMinute: 20_000, monthlyTokens: 1_000_000, monthlyBudgetUsd: 5 },
  standard: { requestsPerMinute: 600, tokensPerMinute: 200_000, monthlyTokens: 50_000_000, monthlyBudgetUsd: 200 },
  enterprise: {
    requestsPerMinute: 6_000,
    tokensPerMinute: 2_000_000,
    monthlyTokens: 1_000_000_000,
    monthlyBudgetUsd: 5_000,
  },
};

/** Public model names and on-demand prices (USD per million tokens, us-east-1 list prices). */
export const DEFAULT_MODELS: ModelCatalog = {
  'nova-micro': {
    kind: 'chat',
    bedrockModelId: 'amazon.nova-micro-v1:0',
    inputUsdPerMillionTokens: 0.035,
    outputUsdPerMillionTokens: 0.14,
    defaultMaxTokens: 512,
    maxOutputTokens: 5_000,
  },
  'nova-lite': {
    kind: 'chat',
    bedrockModelId: 'amazon.nova-lite-v1:0',
    inputUsdPerMillionTokens: 0.06,
    outputUsdPerMillionTokens: 0.24,
    defaultMaxTokens: 512,
    maxOutputTokens: 5_000,
  },
  'titan-embed-text-v2': {
    kind: 'embedding',
    bedrockModelId: 'amazon.titan-embed-text-v2:0',
    inputUsdPerMillionTokens: 0.02,
    outputUsdPerMillionTokens: 0,
    dimensions: 1024,
    maxInputTokens: 8_192,
    maxInputChars: 50_000,
  },
};

const jwtIssuerSchema = z.object({
  issuer: z.string().url(),
  audience: z.string().min(1),
  jwksUri: z.string().url(),
  tenantClaim: z.string().min(1).default('custom:tenant_id'),
});

/**
 * Builds the platform config from CDK context (or any key/value source). Context keys:
 * `jwtIssuer`, `jwtAudience`, `jwksUri`, `jwtTenantClaim`, `authorizerCacheTtlSeconds`, `auditRetentionDays`,
 * `logRetentionDays`, `searchSizing` (`dev` or `production`).
 */
export function platformConfig(context: (key: string) => unknown = () => undefined): PlatformConfig {
  const issuer = context('jwtIssuer');
  const jwt =
    issuer === undefined
      ? undefined
      : jwtIssuerSchema.parse({
          issuer,
          audience: context('jwtAudience'),
          jwksUri: context('jwksUri') ?? `${String(issuer).replace(/\/$/, '')}/.well-known/jwks.json`,
          tenantClaim: context('jwtTenantClaim'),
        });
  const ttl = context('authorizerCacheTtlSeconds');
  const retention = context('auditRetentionDays');
  const logRetention = context('logRetentionDays');
  return {
    tiers: z.record(z.enum(['basic', 'standard', 'enterprise']), tenantLimitsSchema).parse(DEFAULT_TIERS),
    models: modelCatalogSchema.parse(DEFAULT_MODELS),
    jwt,
    authorizerCacheTtlSeconds: ttl === undefined ? 60 : z.coerce.number().int().min(0).max(3600).parse(ttl),
    maxRequestBodyBytes: 1024 * 1024,
    auditRetentionDays: retention === undefined ? 90 : z.coerce.number().int().min(1).max(3650).parse(retention),
    reservationTtlSeconds: 300,
    search: SEARCH_SIZINGS[z.enum(['dev', 'production']).default('dev').parse(context('searchSizing'))],
    logRetentionDays:
      logRetention === undefined
        ? 30
        : z.coerce
            .number()
            .refine(
              (days) => LOG_RETENTION_DAYS.includes(days),
              `logRetentionDays is one of ${LOG_RETENTION_DAYS.join(', ')}`,
            )
            .parse(logRetention),
    retrieval: {
      embeddingModel: 'titan-embed-text-v2',
      chunkTokens: 200,
      chunkOverlapTokens: 40,
      maxDocumentBytes: 512 * 1024,
      syncMaxChunks: 32,
    },
  };
}

/** A tenant on a stack of its own, and that stack's sizes. */
export interface SiloTenant {
  readonly tenantId: string;
  readonly search: VectorSearchSizing;
  /** Where the tenant's data lives (data residency); absent: the pool's region. */
  readonly region?: string;
  /**
   * Set by the offboarding pipeline once the tenant's data is purged: the stack's tables, search
   * domain and key go when the stack is destroyed, instead of being retained.
   */
  readonly decommission: boolean;
  /** Concurrency reserved for each of its tenant-route functions; absent: the account's unreserved pool. */
  readonly concurrency?: number;
}

/**
 * The silo tenants of context `siloTenants` (comma-separated tenant ids), each sized by
 * `silo.<tenantId>.searchSizing` (`dev` or `production`; default: the pool's `searchSizing`) and
 * placed in `silo.<tenantId>.region` (default: the pool's region), with `silo.<tenantId>.concurrency`
 * reserved for each of its tenant-route functions (default: none reserved); `silo.<tenantId>.decommission=true`
 * only for the pipeline's last deploy before it destroys the stack.
 */
export function siloTenants(context: (key: string) => unknown = () => undefined): SiloTenant[] {
  const listed = String(context('siloTenants') ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  return listed.map((tenantId) => ({
    tenantId: tenantIdPattern.parse(tenantId),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a silo region is an AWS region name')
      .optional()
      .parse(context(`silo.${tenantId}.region`)),
    concurrency: z.coerce
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .parse(context(`silo.${tenantId}.concurrency`)),
    decommission:
      z
        .enum(['true', 'false'])
        .default('false')
        .parse(context(`silo.${tenantId}.decommission`)) === 'true',
    search:
      SEARCH_SIZINGS[
        z
          .enum(['dev', 'production'])
          .parse(context(`silo.${tenantId}.searchSizing`) ?? context('searchSizing') ?? 'dev')
      ],
  }));
}

const tenantIdPattern = z.string().regex(TENANT_ID_PATTERN, `silo tenant ids match ${TENANT_ID_PATTERN.source}`);
