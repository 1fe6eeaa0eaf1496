import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { z } from 'zod';
import { BedrockModelProvider } from './adapters/bedrock-model-provider';
import { DynamoDbLedger } from './adapters/dynamodb-ledger';
import { DynamoDbTenantRegistry } from './adapters/dynamodb-tenant-registry';
import { type JwtSettings, JwtTokenVerifier } from './adapters/jwt-token-verifier';
import { type ModelCatalog, modelCatalogSchema } from './core/catalog';
import { type TenantLimits, tenantLimitsSchema } from './core/limits';
import type { Tier } from './core/tenant';
import type { Ledger, ModelProvider, TenantRegistry, TokenVerifier } from './ports';

/** Everything a handler needs, resolved once per runtime. */
export interface PlatformSettings {
  readonly region: string;
  readonly tenantTableName: string;
  readonly ledgerTableName: string;
  readonly catalog: ModelCatalog;
  readonly tiers: Readonly<Record<Tier, TenantLimits>>;
  readonly maxRequestBodyBytes: number;
  /** Absent: API keys only. */
  readonly jwt?: JwtSettings;
  /** Local mode: the same adapters, pointed at local servers that speak each AWS protocol. */
  readonly local?: {
    readonly dynamodbEndpoint: string;
    readonly bedrockRuntimeEndpoint: string;
    readonly credentials: { accessKeyId: string; secretAccessKey: string };
  };
}

export interface PlatformDeps {
  readonly settings: PlatformSettings;
  readonly registry: TenantRegistry;
  readonly ledger: Ledger;
  readonly models: ModelProvider;
  readonly tokens?: TokenVerifier;
  readonly now: () => number;
}

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const lambdaEnvSchema = z.object({
  AWS_REGION: z.string().min(1),
  TENANT_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  MODEL_CATALOG: json(modelCatalogSchema),
  TIER_LIMITS: json(
    z.object({ basic: tenantLimitsSchema, standard: tenantLimitsSchema, enterprise: tenantLimitsSchema }),
  ),
  MAX_REQUEST_BODY_BYTES: z.coerce.number().int().positive(),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
  JWKS_URI: z.string().optional(),
  JWT_TENANT_CLAIM: z.string().default('custom:tenant_id'),
});

/** The Lambda composition root reads its environment here, once, and nowhere else. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): PlatformSettings {
  const e = lambdaEnvSchema.parse(env);
  return {
    region: e.AWS_REGION,
    tenantTableName: e.TENANT_TABLE_NAME,
    ledgerTableName: e.LEDGER_TABLE_NAME,
    catalog: e.MODEL_CATALOG,
    tiers: e.TIER_LIMITS,
    maxRequestBodyBytes: e.MAX_REQUEST_BODY_BYTES,
    jwt:
      e.JWT_ISSUER && e.JWT_AUDIENCE && e.JWKS_URI
        ? { issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE, jwksUri: e.JWKS_URI, tenantClaim: e.JWT_TENANT_CLAIM }
        : undefined,
  };
}

export function buildDeps(settings: PlatformSettings): PlatformDeps {
  const local = settings.local;
  const dynamodb = new DynamoDBClient({
    region: settings.region,
    ...(local && { endpoint: local.dynamodbEndpoint, credentials: local.credentials }),
  });
  const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const bedrock = new BedrockRuntimeClient({
    region: settings.region,
    // The SDK speaks HTTP/2 to Bedrock; the local Bedrock server speaks HTTP/1.1.
    ...(local && {
      endpoint: local.bedrockRuntimeEndpoint,
      credentials: local.credentials,
      requestHandler: new NodeHttpHandler(),
    }),
  });
  return {
    settings,
    registry: new DynamoDbTenantRegistry(documents, settings.tenantTableName),
    ledger: new DynamoDbLedger(documents, settings.ledgerTableName),
    models: new BedrockModelProvider(bedrock),
    tokens: settings.jwt && new JwtTokenVerifier(settings.jwt),
    now: Date.now,
  };
}

/**
 * A Lambda entry point: deps are built on the first invocation and kept for the container's life.
 * Lazy, so local mode can import handler modules without a Lambda environment.
 */
export function lambdaHandler<E, R>(create: (deps: PlatformDeps) => (event: E, context: never) => Promise<R>) {
  let handler: ((event: E, context: never) => Promise<R>) | undefined;
  return (event: E, context: never): Promise<R> => {
    handler ??= create(buildDeps(settingsFromEnv(process.env)));
    return handler(event, context);
  };
}
