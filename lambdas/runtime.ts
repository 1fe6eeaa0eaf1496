import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type PlatformSettings, settingsFromEnv } from '../contract/environment';
import { BedrockEmbedder } from './adapters/bedrock-embedder';
import { BedrockModelProvider } from './adapters/bedrock-model-provider';
import { DynamoDbAuditLog } from './adapters/dynamodb-audit-log';
import { DynamoDbDocumentStore } from './adapters/dynamodb-document-store';
import { DynamoDbLedger, DynamoDbLedgerReports } from './adapters/dynamodb-ledger';
import { DynamoDbTenantRegistry } from './adapters/dynamodb-tenant-registry';
import { JwtTokenVerifier } from './adapters/jwt-token-verifier';
import { OpenSearchVectorIndex } from './adapters/opensearch-vector-index';
import { PowertoolsMeteringMetrics } from './adapters/powertools-metering-metrics';
import { SqsIngestQueue } from './adapters/sqs-ingest-queue';
import { StepFunctionsOffboardingWorkflow } from './adapters/step-functions-offboarding';
import { StsTenantCredentials } from './adapters/sts-tenant-credentials';
import { tenantScopedDynamoDb } from './adapters/tenant-scoped-dynamodb';
import { resolveModel } from './core/catalog';
import type {
  AuditLog,
  DocumentStore,
  Embedder,
  IngestQueue,
  Ledger,
  MeteringMetrics,
  ModelProvider,
  OffboardingWorkflow,
  TenantRegistry,
  TokenVerifier,
  UsageReports,
  VectorIndex,
} from './core/ports';

export type { PlatformSettings };

export interface PlatformDeps {
  readonly settings: PlatformSettings;
  /** Signs with the function's own role: the authorizer and admin routes need every tenant's record. */
  readonly registry: TenantRegistry;
  /** Tenant data: signs with the tenant's scoped credentials. */
  readonly ledger: Ledger;
  /** Tenant data: signs with the tenant's scoped credentials. */
  readonly audit: AuditLog;
  /** Metering's metrics (EMF lines on AWS). */
  readonly metrics: MeteringMetrics;
  /** Operator reports across tenants: the admin function's own credentials. */
  readonly reports: UsageReports;
  readonly models: ModelProvider;
  readonly embedder: Embedder;
  /** Tenant data: signs with the tenant's scoped credentials. */
  readonly vectors: VectorIndex;
  /** Tenant data: signs with the tenant's scoped credentials. */
  readonly documents: DocumentStore;
  readonly queue: IngestQueue;
  /** Starts the durable offboarding workflow (Step Functions). */
  readonly offboarding: OffboardingWorkflow;
  readonly tokens?: TokenVerifier;
  readonly now: () => number;
}

export function buildDeps(settings: PlatformSettings): PlatformDeps {
  const local = settings.local;
  // One connection pool for every DynamoDB client, the per-tenant ones included.
  const dynamodbConfig = {
    region: settings.region,
    // Bounded waits, so a stuck connection becomes a retry rather than a Lambda timeout.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 3000, throwOnRequestTimeout: true }),
    ...(local && { endpoint: local.dynamodbEndpoint }),
  };
  const ownDynamoDb = DynamoDBDocumentClient.from(
    new DynamoDBClient({ ...dynamodbConfig, ...(local && { credentials: local.credentials }) }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const sts = new STSClient({
    region: settings.region,
    ...(local && { endpoint: local.stsEndpoint, credentials: local.credentials }),
  });
  const tenantCredentials = new StsTenantCredentials(sts, settings.tenantAccessRoleArn);
  const tenantDynamoDb = tenantScopedDynamoDb(dynamodbConfig, tenantCredentials);
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
    registry: new DynamoDbTenantRegistry(ownDynamoDb, settings.tenantTableName),
    ledger: new DynamoDbLedger(tenantDynamoDb, settings.ledgerTableName, {
      reservationTtlMs: settings.reservationTtlSeconds * 1000,
    }),
    metrics: new PowertoolsMeteringMetrics(),
    reports: new DynamoDbLedgerReports(ownDynamoDb, settings.ledgerTableName),
    audit: new DynamoDbAuditLog(tenantDynamoDb, settings.auditTableName, settings.auditRetentionDays),
    models: new BedrockModelProvider(bedrock),
    embedder: new BedrockEmbedder(bedrock),
    vectors: new OpenSearchVectorIndex(
      settings.opensearchEndpoint,
      settings.region,
      tenantCredentials,
      resolveModel(settings.catalog, settings.retrieval.embeddingModel, 'embedding').dimensions,
    ),
    documents: new DynamoDbDocumentStore(tenantDynamoDb, settings.documentTableName),
    queue: new SqsIngestQueue(
      new SQSClient({
        region: settings.region,
        ...(local && { endpoint: local.sqsEndpoint, credentials: local.credentials }),
      }),
      settings.ingestQueueUrl,
    ),
    offboarding: new StepFunctionsOffboardingWorkflow(
      new SFNClient({ region: settings.region }),
      settings.offboardingStateMachineArn,
    ),
    tokens: settings.jwt && new JwtTokenVerifier(settings.jwt),
    now: Date.now,
  };
}

/** What the offboarding steps take: every store of tenant data and the drain before deleting. */
export function offboardingDeps(deps: PlatformDeps) {
  return { ...deps, drainMs: deps.settings.offboardingDrainSeconds * 1000 };
}

/** What the model-calling core functions take: the deps plus the catalog and retrieval settings. */
export function modelDeps(deps: PlatformDeps) {
  return { ...deps, catalog: deps.settings.catalog, retrieval: deps.settings.retrieval };
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
