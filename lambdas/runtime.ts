import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockModelProvider } from './adapters/bedrock-model-provider';
import { DynamoDbLedger } from './adapters/dynamodb-ledger';
import { DynamoDbTenantRegistry } from './adapters/dynamodb-tenant-registry';
import { JwtTokenVerifier } from './adapters/jwt-token-verifier';
import type { Ledger, ModelProvider, TenantRegistry, TokenVerifier } from './ports';
import { type PlatformSettings, settingsFromEnv } from './runtime-env';

export type { PlatformSettings };

export interface PlatformDeps {
  readonly settings: PlatformSettings;
  readonly registry: TenantRegistry;
  readonly ledger: Ledger;
  readonly models: ModelProvider;
  readonly tokens?: TokenVerifier;
  readonly now: () => number;
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
