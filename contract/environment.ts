import type { AdapterEndpointSettings } from './adapters';
import { type ModelCatalog, modelCatalogSchema } from './catalog';
import { type RoutingPolicy, routingPolicySchema } from './routing';
import { type PiiPolicy, piiPolicySchema } from './safety';
import { VECTOR_STORES, type VectorStore } from './search';
import { type TenantLimits, type Tier, tenantLimitsSchema, tierSchema } from './tenancy';
import * as z from './zod';

/**
 * The contract between the CDK app and the Lambda runtime: the CDK writes the environment with
 * `lambdaEnvironment`, the composition root reads it back with `settingsFromEnv`.
 */

/** Identity provider whose JWTs the authorizer accepts, beside tenant API keys. */
export interface JwtSettings {
  readonly issuer: string;
  /** Expected `aud` (or Cognito `client_id`). */
  readonly audience: string;
  readonly jwksUri: string;
  /** The claim holding the tenant id, e.g. `custom:tenant_id`. */
  readonly tenantClaim: string;
  /** The claim naming the caller's project, if it has one, e.g. `custom:project`. */
  readonly projectClaim: string;
}

/** Embedding model, chunking and size limit of documents. */
export interface RetrievalSettings {
  /** Public name of the embedding model that documents and queries are embedded with. */
  readonly embeddingModel: string;
  readonly chunkTokens: number;
  readonly chunkOverlapTokens: number;
  readonly maxDocumentBytes: number;
  /** Documents of more chunks are indexed off the request path, through the ingest queue, this many chunks a job. */
  readonly syncMaxChunks: number;
  /** Where each tier's chunks live. */
  readonly vectorStores: Readonly<Record<Tier, VectorStore>>;
}

/** A deployed guardrail version: what `Converse` and `ApplyGuardrail` name. */
export interface GuardrailRef {
  readonly id: string;
  readonly version: string;
}
const guardrailRefSchema = z.object({
  id: z.string().check(z.minLength(1)),
  version: z.string().check(z.minLength(1)),
});

/** Everything a handler needs, resolved once per runtime. */
export interface PlatformSettings {
  readonly region: string;
  readonly tenantTableName: string;
  readonly ledgerTableName: string;
  readonly auditTableName: string;
  /** How long audit records are kept. */
  readonly auditRetentionDays: number;
  /** How long each tier's stored responses are kept. */
  readonly storedResponseDays: Readonly<Record<Tier, number>>;
  /** After this long an unsettled reservation counts as abandoned (its call crashed) and is released. */
  readonly reservationTtlSeconds: number;
  /** The role whose sessions, tagged with `tenantId`, can reach only that tenant's data. */
  readonly tenantAccessRoleArn: string;
  readonly documentTableName: string;
  /** SQS queue of ingest jobs for large documents. */
  readonly ingestQueueUrl: string;
  /** The OpenSearch domain endpoint (https://...). */
  readonly opensearchEndpoint: string;
  /** The plane's S3 Vectors bucket: an index `t-<tenantId>` in it for each tenant of an `s3vectors` tier. */
  readonly vectorBucketName: string;
  /** The plane's files bucket: each tenant's uploaded files under its own prefix `<tenantId>/`. */
  readonly filesBucketName: string;
  readonly retrieval: RetrievalSettings;
  readonly catalog: ModelCatalog;
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  /** What each tier's text is cleaned of before it reaches a shared model. */
  readonly piiRedaction: Readonly<Record<Tier, PiiPolicy>>;
  /** Each tier's routes (retries, fallbacks) by requested model; a tenant's own come first. */
  readonly routing: Readonly<Record<Tier, RoutingPolicy>>;
  /** What an answer from a tenant's response cache costs it, in nano-USD (no model tokens). */
  readonly cacheHitNanoUsd: number;
  /** Each tier's deployed guardrail version; absent: none. */
  readonly guardrails?: Readonly<Record<Tier, GuardrailRef>>;
  readonly maxRequestBodyBytes: number;
  /** How long offboarding waits before deleting: the authorizer cache TTL plus the longest handler or worker run. */
  readonly offboardingDrainSeconds: number;
  /** How long the authorizer's decisions are cached: a return waits this long for the pool's cached forwards to go. */
  readonly authorizerCacheTtlSeconds: number;
  /** The offboarding state machine, which the admin function starts. */
  readonly offboardingStateMachineArn: string;
  /** Absent: API keys only. */
  readonly jwt?: JwtSettings;
  /** A silo plane's one tenant: it serves no other. Absent: the pool. */
  readonly siloTenantId?: string;
  /** The regions besides its own a pool may place a silo in (`silo.<id>.region` values): the pipeline may deploy there. */
  readonly siloRegions?: readonly string[];
  /** The GPU endpoint for LoRA adapters; absent: none configured. */
  readonly adapterEndpoint?: AdapterEndpointSettings;
  /** The state machine that follows a new adapter to `InService` or `Failed`. */
  readonly adapterWorkflowStateMachineArn?: string;
  /**
   * Each tenant's own Bedrock application inference profiles (named `<prefix>-<tenant>-<model>`,
   * tagged with its id), used as the model id of its calls: its cost on AWS's own bill. Absent: off.
   */
  readonly tenantInferenceProfiles?: { readonly namePrefix: string };
  /** The service role Bedrock's batch inference jobs run with: it reads and writes the files bucket. Absent: none. */
  readonly batchInferenceRoleArn?: string;
}

const json = <T extends z.ZodMiniType>(schema: T) =>
  z.pipe(
    z.pipe(
      z.string(),
      z.transform((text, payload) => {
        try {
          return JSON.parse(text);
        } catch {
          payload.issues.push({ code: 'custom', message: 'not JSON', input: text });
          return z.NEVER;
        }
      }),
    ),
    schema,
  );

const lambdaEnvSchema = z.object({
  AWS_REGION: z.string().check(z.minLength(1)),
  TENANT_TABLE_NAME: z.string().check(z.minLength(1)),
  LEDGER_TABLE_NAME: z.string().check(z.minLength(1)),
  AUDIT_TABLE_NAME: z.string().check(z.minLength(1)),
  AUDIT_RETENTION_DAYS: z.coerce.number().check(z.int(), z.positive()),
  STORED_RESPONSE_DAYS: json(z.record(tierSchema, z.number().check(z.int(), z.gte(1), z.lte(3650)))),
  RESERVATION_TTL_SECONDS: z.coerce.number().check(z.int(), z.positive()),
  TENANT_ACCESS_ROLE_ARN: z.string().check(z.startsWith('arn:')),
  DOCUMENT_TABLE_NAME: z.string().check(z.minLength(1)),
  INGEST_QUEUE_URL: z.string().check(z.url()),
  OPENSEARCH_ENDPOINT: z.string().check(z.url()),
  VECTOR_BUCKET_NAME: z.string().check(z.minLength(3)),
  FILES_BUCKET_NAME: z.string().check(z.minLength(3)),
  RETRIEVAL: json(
    z.object({
      embeddingModel: z.string(),
      chunkTokens: z.number().check(z.int(), z.positive()),
      chunkOverlapTokens: z.number().check(z.int(), z.nonnegative()),
      maxDocumentBytes: z.number().check(z.int(), z.positive()),
      syncMaxChunks: z.number().check(z.int(), z.positive()),
      vectorStores: z.record(tierSchema, z.enum(VECTOR_STORES)),
    }),
  ),
  MODEL_CATALOG: json(modelCatalogSchema),
  TIER_LIMITS: json(
    z.object({ basic: tenantLimitsSchema, standard: tenantLimitsSchema, enterprise: tenantLimitsSchema }),
  ),
  PII_REDACTION: json(z.object({ basic: piiPolicySchema, standard: piiPolicySchema, enterprise: piiPolicySchema })),
  ROUTING: json(
    z.object({ basic: routingPolicySchema, standard: routingPolicySchema, enterprise: routingPolicySchema }),
  ),
  CACHE_HIT_NANO_USD: z.coerce.number().check(z.int(), z.nonnegative()),
  GUARDRAILS: z.optional(
    json(z.object({ basic: guardrailRefSchema, standard: guardrailRefSchema, enterprise: guardrailRefSchema })),
  ),
  MAX_REQUEST_BODY_BYTES: z.coerce.number().check(z.int(), z.positive()),
  OFFBOARDING_DRAIN_SECONDS: z.coerce.number().check(z.int(), z.positive()),
  AUTHORIZER_CACHE_TTL_SECONDS: z.coerce.number().check(z.int(), z.gte(0)),
  OFFBOARDING_STATE_MACHINE_ARN: z.string().check(z.startsWith('arn:')),
  JWT_ISSUER: z.optional(z.string()),
  JWT_AUDIENCE: z.optional(z.string()),
  JWKS_URI: z.optional(z.string()),
  JWT_TENANT_CLAIM: z._default(z.string(), 'custom:tenant_id'),
  JWT_PROJECT_CLAIM: z._default(z.string(), 'custom:project'),
  SILO_TENANT_ID: z.optional(z.string().check(z.minLength(1))),
  SILO_REGIONS: z.optional(json(z.array(z.string().check(z.minLength(1))))),
  ADAPTER_ENDPOINT: z.optional(
    json(
      z.object({
        endpointName: z.string().check(z.minLength(1)),
        baseComponents: z.record(z.string(), z.string().check(z.minLength(1))),
        artifactBuckets: z._default(z.array(z.string().check(z.minLength(1))), []),
      }),
    ),
  ),
  ADAPTER_WORKFLOW_STATE_MACHINE_ARN: z.optional(z.string().check(z.startsWith('arn:'))),
  INFERENCE_PROFILE_PREFIX: z.optional(z.string().check(z.regex(/^[0-9a-zA-Z][0-9a-zA-Z_-]{0,19}$/))),
  BATCH_INFERENCE_ROLE_ARN: z.optional(z.string().check(z.startsWith('arn:'))),
});

/**
 * Settings fixed at synth and large (the catalog, tiers, PII policies, retrieval): compiled into
 * each bundle as `BUNDLED_ENVIRONMENT` (esbuild `define`) instead of Lambda's environment, which
 * holds 4 KB in all. The environment still wins where it has them (workflows run from source).
 */
export const BUNDLED_ENVIRONMENT_KEYS = [
  'RETRIEVAL',
  'MODEL_CATALOG',
  'TIER_LIMITS',
  'PII_REDACTION',
  'ROUTING',
] as const;

/** Replaced by the bundler with the JSON of the bundled variables; undeclared when running from source. */
declare const BUNDLED_ENVIRONMENT: string | undefined;

function bundledEnvironment(): Record<string, string> {
  return typeof BUNDLED_ENVIRONMENT === 'string' ? JSON.parse(BUNDLED_ENVIRONMENT) : {};
}

/** The Lambda composition root reads its environment here, once, and nowhere else. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): PlatformSettings {
  const e = lambdaEnvSchema.parse({ ...bundledEnvironment(), ...env });
  return {
    region: e.AWS_REGION,
    tenantTableName: e.TENANT_TABLE_NAME,
    ledgerTableName: e.LEDGER_TABLE_NAME,
    auditTableName: e.AUDIT_TABLE_NAME,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    storedResponseDays: e.STORED_RESPONSE_DAYS,
    reservationTtlSeconds: e.RESERVATION_TTL_SECONDS,
    tenantAccessRoleArn: e.TENANT_ACCESS_ROLE_ARN,
    documentTableName: e.DOCUMENT_TABLE_NAME,
    ingestQueueUrl: e.INGEST_QUEUE_URL,
    opensearchEndpoint: e.OPENSEARCH_ENDPOINT,
    vectorBucketName: e.VECTOR_BUCKET_NAME,
    filesBucketName: e.FILES_BUCKET_NAME,
    retrieval: e.RETRIEVAL,
    catalog: e.MODEL_CATALOG,
    tiers: e.TIER_LIMITS,
    piiRedaction: e.PII_REDACTION,
    routing: e.ROUTING,
    cacheHitNanoUsd: e.CACHE_HIT_NANO_USD,
    guardrails: e.GUARDRAILS,
    maxRequestBodyBytes: e.MAX_REQUEST_BODY_BYTES,
    offboardingDrainSeconds: e.OFFBOARDING_DRAIN_SECONDS,
    authorizerCacheTtlSeconds: e.AUTHORIZER_CACHE_TTL_SECONDS,
    offboardingStateMachineArn: e.OFFBOARDING_STATE_MACHINE_ARN,
    jwt:
      e.JWT_ISSUER && e.JWT_AUDIENCE && e.JWKS_URI
        ? {
            issuer: e.JWT_ISSUER,
            audience: e.JWT_AUDIENCE,
            jwksUri: e.JWKS_URI,
            tenantClaim: e.JWT_TENANT_CLAIM,
            projectClaim: e.JWT_PROJECT_CLAIM,
          }
        : undefined,
    siloTenantId: e.SILO_TENANT_ID,
    siloRegions: e.SILO_REGIONS,
    adapterEndpoint: e.ADAPTER_ENDPOINT,
    adapterWorkflowStateMachineArn: e.ADAPTER_WORKFLOW_STATE_MACHINE_ARN,
    tenantInferenceProfiles: e.INFERENCE_PROFILE_PREFIX ? { namePrefix: e.INFERENCE_PROFILE_PREFIX } : undefined,
    batchInferenceRoleArn: e.BATCH_INFERENCE_ROLE_ARN,
  };
}

/** The environment that `settingsFromEnv` reads, for the CDK app to give each function. */
export function lambdaEnvironment(settings: Omit<PlatformSettings, 'region'>): Record<string, string> {
  return {
    TENANT_TABLE_NAME: settings.tenantTableName,
    LEDGER_TABLE_NAME: settings.ledgerTableName,
    AUDIT_TABLE_NAME: settings.auditTableName,
    AUDIT_RETENTION_DAYS: String(settings.auditRetentionDays),
    STORED_RESPONSE_DAYS: JSON.stringify(settings.storedResponseDays),
    RESERVATION_TTL_SECONDS: String(settings.reservationTtlSeconds),
    TENANT_ACCESS_ROLE_ARN: settings.tenantAccessRoleArn,
    DOCUMENT_TABLE_NAME: settings.documentTableName,
    INGEST_QUEUE_URL: settings.ingestQueueUrl,
    OPENSEARCH_ENDPOINT: settings.opensearchEndpoint,
    VECTOR_BUCKET_NAME: settings.vectorBucketName,
    FILES_BUCKET_NAME: settings.filesBucketName,
    RETRIEVAL: JSON.stringify(settings.retrieval),
    MODEL_CATALOG: JSON.stringify(settings.catalog),
    TIER_LIMITS: JSON.stringify(settings.tiers),
    PII_REDACTION: JSON.stringify(settings.piiRedaction),
    ROUTING: JSON.stringify(settings.routing),
    CACHE_HIT_NANO_USD: String(settings.cacheHitNanoUsd),
    ...(settings.guardrails && { GUARDRAILS: JSON.stringify(settings.guardrails) }),
    MAX_REQUEST_BODY_BYTES: String(settings.maxRequestBodyBytes),
    OFFBOARDING_DRAIN_SECONDS: String(settings.offboardingDrainSeconds),
    AUTHORIZER_CACHE_TTL_SECONDS: String(settings.authorizerCacheTtlSeconds),
    OFFBOARDING_STATE_MACHINE_ARN: settings.offboardingStateMachineArn,
    ...(settings.jwt && {
      JWT_ISSUER: settings.jwt.issuer,
      JWT_AUDIENCE: settings.jwt.audience,
      JWKS_URI: settings.jwt.jwksUri,
      JWT_TENANT_CLAIM: settings.jwt.tenantClaim,
      JWT_PROJECT_CLAIM: settings.jwt.projectClaim,
    }),
    ...(settings.siloTenantId && { SILO_TENANT_ID: settings.siloTenantId }),
    ...(settings.siloRegions?.length && { SILO_REGIONS: JSON.stringify(settings.siloRegions) }),
    ...(settings.adapterEndpoint && { ADAPTER_ENDPOINT: JSON.stringify(settings.adapterEndpoint) }),
    ...(settings.adapterWorkflowStateMachineArn && {
      ADAPTER_WORKFLOW_STATE_MACHINE_ARN: settings.adapterWorkflowStateMachineArn,
    }),
    ...(settings.tenantInferenceProfiles && {
      INFERENCE_PROFILE_PREFIX: settings.tenantInferenceProfiles.namePrefix,
    }),
    ...(settings.batchInferenceRoleArn && { BATCH_INFERENCE_ROLE_ARN: settings.batchInferenceRoleArn }),
  };
}
