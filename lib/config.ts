import * as z from 'zod';
import { type ModelCatalog, modelCatalogSchema } from '../contract/catalog';
import type { JwtSettings, RetrievalSettings } from '../contract/environment';
import { LONGEST_HANDLER_TIMEOUT_SECONDS } from '../contract/lambda';
import { INGEST_QUEUE } from '../contract/queue';
import type { RoutingPolicy } from '../contract/routing';
import { type GuardrailPolicy, PII_ENTITIES, type PiiPolicy } from '../contract/safety';
import { VECTOR_STORES, type VectorStore } from '../contract/search';
import { TENANT_ID_PATTERN, type TenantLimits, type Tier, tenantLimitsSchema, tierSchema } from '../contract/tenancy';
import type { VectorSearchSizing } from './constructs/vector-search';

export interface PlatformConfig {
  /** Default limits of each tier; a tenant may override them at onboarding. */
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  /** What each tier's text is cleaned of before a shared model sees it. */
  readonly piiRedaction: Readonly<Record<Tier, PiiPolicy>>;
  /** Each tier's routes by requested model (retries, fallbacks); a tenant's own (`route set`) come first. */
  readonly routing: Readonly<Record<Tier, RoutingPolicy>>;
  /** What an answer from a tenant's response cache costs it, in nano-USD. */
  readonly cacheHitNanoUsd: number;
  /** Each tier's Bedrock guardrail: prompt attacks, denied topics, sensitive information. */
  readonly guardrails: Readonly<Record<Tier, GuardrailPolicy>>;
  readonly models: ModelCatalog;
  /** Absent: the platform accepts tenant API keys only. */
  readonly jwt?: JwtSettings;
  /** How long API Gateway caches an authorizer decision; also how long a revoked key may still work. */
  readonly authorizerCacheTtlSeconds: number;
  /** Largest request body a route accepts, in bytes. */
  readonly maxRequestBodyBytes: number;
  /** How long audit records are kept before DynamoDB TTL removes them. */
  readonly auditRetentionDays: number;
  /** How long each tier's stored Responses API responses are kept (DynamoDB TTL). */
  readonly storedResponseDays: Readonly<Record<Tier, number>>;
  /**
   * After this long an unsettled call held by a record (its epoch's slot blocked by a move's copy not
   * caught up) is released as abandoned; calls held in epoch slots follow the ledger's fixed epoch
   * (`HOLD_EPOCH_MS`, 360 s). Must exceed the longest handler's Lambda timeout (a streamed chat's,
   * 300 s), or a slow call's settle would find its reservation gone and bill nothing.
   */
  readonly reservationTtlSeconds: number;
  /** Embedding model, chunking and size limit of documents. */
  readonly retrieval: RetrievalSettings;
  /** Size of the OpenSearch domain. */
  readonly search: VectorSearchSizing;
  /** How long the functions' log groups keep their logs, in days (a CloudWatch Logs retention). */
  readonly logRetentionDays: number;
  /** The GPU endpoint for tenants' LoRA adapters; absent (the default): no endpoint, no GPU. */
  readonly adapters?: AdapterEndpointConfig;
  /**
   * Lambda tenant isolation (context `lambdaTenantIsolation=true`): the model-calling functions get
   * an execution environment per tenant, invoked with the authorizer's tenant id, so no two tenants
   * ever share a warm one. Costs a cold start per tenant and function; off by default.
   */
  readonly lambdaTenantIsolation: boolean;
  /**
   * The usage console as a static site, S3 behind a CloudFront distribution that also fronts the API
   * (context `usageConsole=true`), on a domain of yours so viewers get TLS 1.2 at least
   * (`consoleDomain`, `consoleCertificateArn`: an ACM certificate in us-east-1; CloudFront's own
   * domain takes TLS 1.0); off by default: locally it is always at `/console/`.
   */
  readonly usageConsole?: UsageConsoleConfig;
  /**
   * Each tenant's own Bedrock application inference profiles, tagged with its id, as the model ids
   * of its calls (context `tenantInferenceProfiles=true`): its Bedrock cost on AWS's own bill.
   */
  readonly tenantInferenceProfiles: boolean;
  /**
   * Tenant sessions may still read (not delete) the basic tier's shared OpenSearch index of earlier
   * versions (context `legacySharedIndex=true`): set while upgrading, until `npm run tenant -- reindex
   * --all` has moved every tenant out of it; off, every grant of a tenant session names its tenant.
   */
  readonly legacySharedIndex: boolean;
}

/** One base-model inference component: its slice of each instance's accelerators, and its copies. */
export interface BaseComponentConfig {
  readonly acceleratorDevices: number;
  /** Memory it needs on the instance, in MB. */
  readonly memoryMb: number;
  readonly minCopies: number;
  readonly maxCopies: number;
}

/** The SageMaker endpoint that serves the adapter base model and tenants' LoRA adapters. */
export interface AdapterEndpointConfig {
  /** GPU instance type, e.g. `ml.g5.2xlarge` (context `adapterInstanceType`). */
  readonly instanceType: string;
  readonly minInstances: number;
  readonly maxInstances: number;
  /** The LMI (DJL Serving with vLLM) container image (context `adapterImage`). */
  readonly image: string;
  /** What the base components load: a Hugging Face model id or an `s3://` prefix (context `adapterBaseModel`). */
  readonly baseModel: string;
  /** Public catalog name of the base model; adapters are `ft:<this>:<adapter>`. */
  readonly modelName: string;
  /**
   * Base components by key (a tier name, or `shared`), each with its accelerator share: a tier's
   * adapters run on its key's component, others on the first (context `adapterComponents`,
   * `key:devices` pairs, comma-separated). Their devices fit one instance together.
   */
  readonly baseComponents: Readonly<Record<string, BaseComponentConfig>>;
  /** S3 buckets tenants' adapter artifacts may come from (context `adapterArtifactBuckets`, comma-separated). */
  readonly artifactBuckets: readonly string[];
  /**
   * vLLM's tool-call parser for the base model (`hermes` for Qwen2.5, `llama3_json` for Llama 3.1;
   * context `adapterToolCallParser`, empty for none): set, the container parses tool calls and the
   * base model and its adapters take `tools`; unset, a request with tools is a 400 naming the model.
   */
  readonly toolCallParser?: string;
  /** The container's LoRA limits: adapters held in GPU memory, in CPU memory, and the largest rank. */
  readonly lora: { readonly maxGpuAdapters: number; readonly maxCpuAdapters: number; readonly maxRank: number };
}

/** Accelerators and memory of the GPU instance types the endpoint may use. */
export const GPU_INSTANCES: Readonly<Record<string, { readonly gpus: number; readonly gpuMemoryMb: number }>> = {
  'ml.g5.xlarge': { gpus: 1, gpuMemoryMb: 24_576 },
  'ml.g5.2xlarge': { gpus: 1, gpuMemoryMb: 24_576 },
  'ml.g5.4xlarge': { gpus: 1, gpuMemoryMb: 24_576 },
  'ml.g5.12xlarge': { gpus: 4, gpuMemoryMb: 98_304 },
  'ml.g5.48xlarge': { gpus: 8, gpuMemoryMb: 196_608 },
  'ml.g6.2xlarge': { gpus: 1, gpuMemoryMb: 24_576 },
  'ml.g6.12xlarge': { gpus: 4, gpuMemoryMb: 98_304 },
  'ml.g6e.2xlarge': { gpus: 1, gpuMemoryMb: 49_152 },
  'ml.p4d.24xlarge': { gpus: 8, gpuMemoryMb: 327_680 },
};

/** AWS's Large Model Inference container (DJL Serving 0.31 with vLLM) in us-east-1. */
export const DEFAULT_ADAPTER_IMAGE =
  '763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124';

const DEFAULT_ADAPTER_BASE_MODEL = 'Qwen/Qwen2.5-7B-Instruct';

/** The tool-call parser from context; the default base model's (Qwen2.5: `hermes`) when neither is given. */
function toolCallParser(context: (key: string) => unknown): { toolCallParser?: string } {
  const given = context('adapterToolCallParser');
  const parser =
    given === undefined ? (context('adapterBaseModel') === undefined ? 'hermes' : undefined) : String(given);
  return parser
    ? {
        toolCallParser: z
          .string()
          .regex(/^[a-z0-9_]{1,32}$/)
          .parse(parser),
      }
    : {};
}

/** The adapter endpoint from context, or none when `adapterInstanceType` is absent. */
export function adapterEndpointConfig(context: (key: string) => unknown): AdapterEndpointConfig | undefined {
  const instanceType = context('adapterInstanceType');
  if (instanceType === undefined) return undefined;
  const instance = z
    .enum(Object.keys(GPU_INSTANCES) as [string, ...string[]], {
      message: `adapterInstanceType is one of ${Object.keys(GPU_INSTANCES).join(', ')}`,
    })
    .parse(instanceType);
  const { gpus, gpuMemoryMb } = GPU_INSTANCES[instance];
  const shares = String(context('adapterComponents') ?? `shared:${gpus}`)
    .split(',')
    .map((pair) => pair.trim().split(':'))
    .map(
      ([key, devices]) =>
        [
          z
            .string()
            .regex(/^[a-z][a-z0-9]{0,15}$/)
            .parse(key),
          z.coerce.number().int().min(1).parse(devices),
        ] as const,
    );
  const used = shares.reduce((sum, [, devices]) => sum + devices, 0);
  if (used > gpus) throw new Error(`adapterComponents use ${used} accelerators; ${instance} has ${gpus}`);
  const baseComponents = Object.fromEntries(
    shares.map(([key, devices]) => [
      key,
      // Host memory for the model and its CPU-held adapters: the share of GPU memory it loads into.
      { acceleratorDevices: devices, memoryMb: Math.floor((gpuMemoryMb / gpus) * devices), minCopies: 1, maxCopies: 4 },
    ]),
  );
  return {
    instanceType: instance,
    minInstances: 1,
    maxInstances: z.coerce.number().int().min(1).max(20).default(2).parse(context('adapterMaxInstances')),
    image: String(context('adapterImage') ?? DEFAULT_ADAPTER_IMAGE),
    baseModel: String(context('adapterBaseModel') ?? DEFAULT_ADAPTER_BASE_MODEL),
    modelName: 'qwen2.5-7b',
    ...toolCallParser(context),
    baseComponents,
    artifactBuckets: String(context('adapterArtifactBuckets') ?? '')
      .split(',')
      .map((bucket) => bucket.trim())
      .filter((bucket) => bucket !== '')
      .map((bucket) =>
        z
          .string()
          .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')
          .parse(bucket),
      ),
    lora: { maxGpuAdapters: 8, maxCpuAdapters: 64, maxRank: 64 },
  };
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
 * longest handler (a streamed chat's) or worker timeout after that.
 */
export function offboardingDrainSeconds(config: Pick<PlatformConfig, 'authorizerCacheTtlSeconds'>): number {
  return (
    config.authorizerCacheTtlSeconds +
    Math.max(LONGEST_HANDLER_TIMEOUT_SECONDS, INGEST_QUEUE.workerTimeoutSeconds) +
    DRAIN_MARGIN_SECONDS
  );
}

/**
 * Every tier's text is cleaned of every entity before a shared model sees it, and answers keep the
 * placeholders: the safe default. An operator narrows it per tier (or adds patterns) here.
 */
export const DEFAULT_PII_REDACTION: Readonly<Record<Tier, PiiPolicy>> = {
  basic: { entities: [...PII_ENTITIES], patterns: [], restore: false },
  standard: { entities: [...PII_ENTITIES], patterns: [], restore: false },
  enterprise: { entities: [...PII_ENTITIES], patterns: [], restore: false },
};

/**
 * Every tier's guardrail refuses prompt attacks on the input, the denied topics both ways, and
 * card and social security numbers outright (redaction replaces them before, so this is the second
 * line). An operator edits the topics here; `cdk deploy` publishes a new guardrail version.
 */
const BASE_GUARDRAIL: GuardrailPolicy = {
  promptAttack: 'HIGH',
  deniedTopics: [
    {
      name: 'Investment advice',
      definition: 'Recommendations on which stocks, funds or other investments to buy or sell.',
      examples: ['which stocks should I buy', 'should I invest in', 'best fund to invest'],
    },
  ],
  blockedPii: ['US_SOCIAL_SECURITY_NUMBER', 'CREDIT_DEBIT_CARD_NUMBER'],
  blockedMessage: 'This request was blocked by the content policy.',
};
export const DEFAULT_GUARDRAILS: Readonly<Record<Tier, GuardrailPolicy>> = {
  basic: BASE_GUARDRAIL,
  standard: BASE_GUARDRAIL,
  enterprise: BASE_GUARDRAIL,
};

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

/**
 * Each tier's routes by requested model, before any a tenant sets (`route set`): none by default.
 * A call is already tried three times by its transport when throttled or failing (as the SDK
 * does); a fallback changes what answers and what it costs, and a cross-region profile where the
 * data is processed, so each is a choice made per deployment or per tenant. For example
 * `{ 'nova-micro': { targets: [{ model: 'nova-micro' }, { model: 'nova-micro@us' }], on: ['throttled'], retries: 0 } }`.
 */
export const DEFAULT_ROUTING: Readonly<Record<Tier, RoutingPolicy>> = { basic: {}, standard: {}, enterprise: {} };

/** Public model names, on-demand and batch prices (USD per million tokens, us-east-1 list prices). */
export const DEFAULT_MODELS: ModelCatalog = {
  'nova-micro': {
    kind: 'chat',
    bedrockModelId: 'amazon.nova-micro-v1:0',
    inputUsdPerMillionTokens: 0.035,
    outputUsdPerMillionTokens: 0.14,
    defaultMaxTokens: 512,
    maxOutputTokens: 5_000,
    // Nova: cache reads at a quarter of the input price, writes at the input price, from 1K tokens.
    promptCache: { minPrefixTokens: 1024, readUsdPerMillionTokens: 0.00875, writeUsdPerMillionTokens: 0.035 },
    // Bedrock batch inference: half the on-demand price.
    batchInputUsdPerMillionTokens: 0.0175,
    batchOutputUsdPerMillionTokens: 0.07,
  },
  'nova-lite': {
    kind: 'chat',
    bedrockModelId: 'amazon.nova-lite-v1:0',
    inputUsdPerMillionTokens: 0.06,
    outputUsdPerMillionTokens: 0.24,
    defaultMaxTokens: 512,
    maxOutputTokens: 5_000,
    promptCache: { minPrefixTokens: 1024, readUsdPerMillionTokens: 0.015, writeUsdPerMillionTokens: 0.06 },
    batchInputUsdPerMillionTokens: 0.03,
    batchOutputUsdPerMillionTokens: 0.12,
  },
  'titan-embed-text-v2': {
    kind: 'embedding',
    bedrockModelId: 'amazon.titan-embed-text-v2:0',
    inputUsdPerMillionTokens: 0.02,
    outputUsdPerMillionTokens: 0,
    dimensions: 1024,
    maxInputTokens: 8_192,
    maxInputChars: 50_000,
    batchInputUsdPerMillionTokens: 0.01,
  },
};

/** The catalog entry of the adapter base model: priced per token, as a share of the GPU instance's hour. */
function adapterBaseModelEntry(adapters: AdapterEndpointConfig): ModelCatalog {
  return {
    [adapters.modelName]: {
      kind: 'chat',
      adapterBaseModel: adapters.baseModel,
      inputUsdPerMillionTokens: 0.2,
      outputUsdPerMillionTokens: 0.6,
      defaultMaxTokens: 512,
      maxOutputTokens: 4_096,
      toolCalls: adapters.toolCallParser !== undefined,
    },
  };
}

const jwtIssuerSchema = z.object({
  issuer: z.string().url(),
  audience: z.string().min(1),
  jwksUri: z.string().url(),
  tenantClaim: z.string().min(1).default('custom:tenant_id'),
  projectClaim: z.string().min(1).default('custom:project'),
});

/**
 * Builds the platform config from CDK context (or any key/value source). Context keys:
 * `jwtIssuer`, `jwtAudience`, `jwksUri`, `jwtTenantClaim`, `jwtProjectClaim`, `authorizerCacheTtlSeconds`, `auditRetentionDays`,
 * `logRetentionDays`, `searchSizing` (`dev` or `production`), and the adapter endpoint's
 * `adapterInstanceType`, `adapterComponents`, `adapterMaxInstances`, `adapterImage`, `adapterBaseModel`,
 * `adapterArtifactBuckets`, `adapterToolCallParser`.
 */
/** An on/off context value: `true` or `false` (the default). */
function flag(value: unknown): boolean {
  return z.enum(['true', 'false']).parse(String(value ?? 'false')) === 'true';
}

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
          projectClaim: context('jwtProjectClaim'),
        });
  const ttl = context('authorizerCacheTtlSeconds');
  const retention = context('auditRetentionDays');
  const logRetention = context('logRetentionDays');
  const adapters = adapterEndpointConfig(context);
  return {
    tiers: z.record(z.enum(['basic', 'standard', 'enterprise']), tenantLimitsSchema).parse(DEFAULT_TIERS),
    piiRedaction: DEFAULT_PII_REDACTION,
    routing: DEFAULT_ROUTING,
    guardrails: DEFAULT_GUARDRAILS,
    // A hundredth of a cent: the DynamoDB read and the request, not a model call.
    cacheHitNanoUsd: 10_000,
    models: modelCatalogSchema.parse({ ...DEFAULT_MODELS, ...(adapters && adapterBaseModelEntry(adapters)) }),
    adapters,
    jwt,
    authorizerCacheTtlSeconds: ttl === undefined ? 60 : z.coerce.number().int().min(0).max(3600).parse(ttl),
    maxRequestBodyBytes: 1024 * 1024,
    auditRetentionDays: retention === undefined ? 90 : z.coerce.number().int().min(1).max(3650).parse(retention),
    // OpenAI keeps stored responses 30 days.
    storedResponseDays: { basic: 30, standard: 30, enterprise: 30 },
    reservationTtlSeconds: 360,
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
    lambdaTenantIsolation: flag(context('lambdaTenantIsolation')),
    usageConsole: usageConsoleConfig(context),
    tenantInferenceProfiles: flag(context('tenantInferenceProfiles')),
    legacySharedIndex: flag(context('legacySharedIndex')),
    retrieval: {
      embeddingModel: 'titan-embed-text-v2',
      chunkTokens: 200,
      chunkOverlapTokens: 40,
      maxDocumentBytes: 512 * 1024,
      syncMaxChunks: 32,
      vectorStores: vectorStores(context('vectorStores')),
    },
  };
}

/**
 * Where each tier's chunks live (context `vectorStores`, e.g. `enterprise:opensearch`): S3 Vectors
 * for every tier not named, an index of the tenant's own either way.
 */
function vectorStores(value: unknown): Record<Tier, VectorStore> {
  const stores: Record<Tier, VectorStore> = { basic: 's3vectors', standard: 's3vectors', enterprise: 's3vectors' };
  for (const entry of String(value ?? '')
    .split(',')
    .filter((part) => part.trim() !== '')) {
    const [tier, store] = entry.split(':').map((part) => part.trim());
    stores[tierSchema.parse(tier)] = z.enum(VECTOR_STORES).parse(store);
  }
  return stores;
}

/** Where the usage console is served: CloudFront on your domain, with your certificate. */
export interface UsageConsoleConfig {
  readonly domainName: string;
  /** An ACM certificate for `domainName`, in us-east-1 (CloudFront's certificates live there). */
  readonly certificateArn: string;
}

/** The console's domain and certificate, required once `usageConsole=true`. */
function usageConsoleConfig(context: (key: string) => unknown): UsageConsoleConfig | undefined {
  if (!flag(context('usageConsole'))) return undefined;
  const required = (key: string) =>
    z.string({
      error: `usageConsole=true needs ${key}: CloudFront keeps TLS 1.2 as a minimum only on a domain of yours`,
    });
  return {
    domainName: required('consoleDomain')
      .regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/, 'consoleDomain is a domain name')
      .parse(context('consoleDomain')),
    certificateArn: required('consoleCertificateArn')
      .regex(
        /^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[\w-]+$/,
        'consoleCertificateArn is an ACM certificate in us-east-1',
      )
      .parse(context('consoleCertificateArn')),
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
/** `silo.<tenantId>.region`: an AWS region name (it goes into ARNs the placement builds may assume). */
export const siloRegionSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a silo region is an AWS region name');

export function siloTenants(context: (key: string) => unknown = () => undefined): SiloTenant[] {
  const listed = String(context('siloTenants') ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  return listed.map((tenantId) => ({
    tenantId: tenantIdPattern.parse(tenantId),
    region: siloRegionSchema.optional().parse(context(`silo.${tenantId}.region`)),
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
