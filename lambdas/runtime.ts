import type { Writable } from 'node:stream';
import type { BedrockClientConfig } from '@aws-sdk/client-bedrock';
import type { BedrockRuntimeClientConfig } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3VectorsClientConfig } from '@aws-sdk/client-s3vectors';
import type { SageMakerClientConfig } from '@aws-sdk/client-sagemaker';
import type { SageMakerRuntimeClientConfig } from '@aws-sdk/client-sagemaker-runtime';
import type { SFNClientConfig } from '@aws-sdk/client-sfn';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { STSClient, type STSClientConfig } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import { type PlatformSettings, settingsFromEnv } from '../contract/environment';
import { DynamoDbAuditLog } from './adapters/dynamodb-audit-log';
import { DynamoDbBatchStore } from './adapters/dynamodb-batch-store';
import { DynamoDbBudgetAlertMarks } from './adapters/dynamodb-budget-alert-marks';
import { DynamoDbDocumentStore } from './adapters/dynamodb-document-store';
import { DynamoDbLedger, DynamoDbLedgerReports } from './adapters/dynamodb-ledger';
import {
  DynamoDbTenantAdapters,
  DynamoDbTenantKeys,
  DynamoDbTenantPrompts,
} from './adapters/dynamodb-registry-records';
import { DynamoDbResponseCache } from './adapters/dynamodb-response-cache';
import { DynamoDbResponseStore } from './adapters/dynamodb-response-store';
import { DynamoDbSessionStore } from './adapters/dynamodb-session-store';
import { DynamoDbTenantPartitions } from './adapters/dynamodb-tenant-partitions';
import { DynamoDbTenantRegistry } from './adapters/dynamodb-tenant-registry';
import { PowertoolsMetrics } from './adapters/powertools-metrics';
import { StsTenantCredentials } from './adapters/sts-tenant-credentials';
import { tenantScopedDynamoDb } from './adapters/tenant-scoped-dynamodb';
import type {
  AdapterHost,
  AdapterWorkflow,
  AuditLog,
  BatchInference,
  BatchStore,
  BudgetAlertMarks,
  BudgetEvents,
  ContentGuardrail,
  DocumentStore,
  Embedder,
  FileStore,
  InferenceProfiles,
  IngestQueue,
  Ledger,
  ModelProvider,
  OffboardingWorkflow,
  PlacementWorkflow,
  PlatformMetrics,
  ResponseCache,
  ResponseStore,
  SessionStore,
  TenantAdapters,
  TenantKeys,
  TenantPartitions,
  TenantPrompts,
  TenantRegistry,
  TokenVerifier,
  UsageReports,
  VectorIndex,
} from './core/ports';
import { streamedBody, writeStreamed } from './streamed-response';

export type { PlatformSettings };

/**
 * How each AWS service is reached: on AWS, the function's region and role; in local mode, the
 * local servers' endpoints and credentials. The adapters are the same either way.
 */
export interface ServiceConfigs {
  readonly dynamodb: DynamoDBClientConfig;
  readonly sts: STSClientConfig;
  readonly bedrock: BedrockRuntimeClientConfig;
  /** Bedrock's control plane: tenants' inference profiles, batch inference jobs. */
  readonly bedrockControl: BedrockClientConfig;
  readonly sqs: SQSClientConfig;
  readonly sfn: SFNClientConfig;
  readonly events: EventBridgeClientConfig;
  readonly sagemaker: SageMakerClientConfig;
  readonly sagemakerRuntime: SageMakerRuntimeClientConfig;
  /** S3 Vectors, signed with tenant sessions: the vector store adapter sets the credentials. */
  readonly s3vectors: S3VectorsClientConfig;
  /** S3 (the files bucket), signed with tenant sessions: the file store adapter sets the credentials. */
  readonly s3: S3ClientConfig;
}

/** What every adapter is built from: the settings of the environment contract and the service configs. */
export interface Wiring {
  readonly settings: PlatformSettings;
  readonly services: ServiceConfigs;
}

/**
 * Each port's adapter, built once per wiring on first use. A handler's entry calls only the
 * builders of the ports it uses, and the bundler leaves the others out: each builder is a pure
 * top-level call, annotated for it. It cannot leave out an SDK package a bundled module imports
 * (the runtime provides them, so they stay outside the bundle and are loaded with it): the
 * builders of a service only some handlers call live in a module of their own
 * (`runtime-<service>.ts`), which only those handlers import. Here: DynamoDB and STS, which
 * nearly every handler uses.
 */
export function built<T>(build: (wiring: Wiring) => T): (wiring: Wiring) => T {
  const cache = new WeakMap<Wiring, T>();
  return (wiring) => {
    if (!cache.has(wiring)) cache.set(wiring, build(wiring));
    return cache.get(wiring) as T;
  };
}

// Bounded waits, so a stuck connection becomes a retry rather than a Lambda timeout; one pool for
// every DynamoDB client, the per-tenant ones included.
const dynamodbConfig = /* @__PURE__ */ built(
  (wiring): DynamoDBClientConfig => ({
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 3000, throwOnRequestTimeout: true }),
    ...wiring.services.dynamodb,
  }),
);
/** Signs with the function's own role. */
const ownDynamoDb = /* @__PURE__ */ built((wiring) =>
  DynamoDBDocumentClient.from(new DynamoDBClient(dynamodbConfig(wiring)), {
    marshallOptions: { removeUndefinedValues: true },
  }),
);
export const tenantCredentials = /* @__PURE__ */ built(
  (wiring) => new StsTenantCredentials(new STSClient(wiring.services.sts), wiring.settings.tenantAccessRoleArn),
);
/** Signs with the tenant's scoped credentials: IAM confines each client to its tenant's partition. */
const tenantDynamoDb = /* @__PURE__ */ built((wiring) => {
  const { region, endpoint } = wiring.services.dynamodb;
  return tenantScopedDynamoDb(
    { region: String(region), ...(typeof endpoint === 'string' && { endpoint }) },
    tenantCredentials(wiring),
  );
});

/** The function's own credentials: the authorizer and admin routes need every tenant's record. */
export const registry = /* @__PURE__ */ built(
  (wiring): TenantRegistry => new DynamoDbTenantRegistry(ownDynamoDb(wiring), wiring.settings.tenantTableName),
);
export const ledger = /* @__PURE__ */ built(
  (wiring): Ledger =>
    new DynamoDbLedger(tenantDynamoDb(wiring), wiring.settings.ledgerTableName, {
      reservationTtlMs: wiring.settings.reservationTtlSeconds * 1000,
      audit: { tableName: wiring.settings.auditTableName, retentionDays: wiring.settings.auditRetentionDays },
    }),
);
/** Operator reports across tenants: the admin function's own credentials. */
export const reports = /* @__PURE__ */ built(
  (wiring): UsageReports => new DynamoDbLedgerReports(ownDynamoDb(wiring), wiring.settings.ledgerTableName),
);
export const audit = /* @__PURE__ */ built(
  (wiring): AuditLog =>
    new DynamoDbAuditLog(tenantDynamoDb(wiring), wiring.settings.auditTableName, wiring.settings.auditRetentionDays),
);
export const documents = /* @__PURE__ */ built(
  (wiring): DocumentStore => new DynamoDbDocumentStore(tenantDynamoDb(wiring), wiring.settings.documentTableName),
);
export const batches = /* @__PURE__ */ built(
  (wiring): BatchStore => new DynamoDbBatchStore(tenantDynamoDb(wiring), wiring.settings.documentTableName),
);
export const responseCache = /* @__PURE__ */ built(
  (wiring): ResponseCache => new DynamoDbResponseCache(tenantDynamoDb(wiring), wiring.settings.documentTableName),
);
export const storedResponses = /* @__PURE__ */ built(
  (wiring): ResponseStore => new DynamoDbResponseStore(tenantDynamoDb(wiring), wiring.settings.documentTableName),
);
export const sessions = /* @__PURE__ */ built(
  (wiring): SessionStore => new DynamoDbSessionStore(tenantDynamoDb(wiring), wiring.settings.documentTableName),
);
export const metrics = /* @__PURE__ */ built(
  (wiring): PlatformMetrics => new PowertoolsMetrics({ tenantDimension: wiring.settings.siloTenantId !== undefined }),
);
export const budgetAlertMarks = /* @__PURE__ */ built(
  (wiring): BudgetAlertMarks => new DynamoDbBudgetAlertMarks(ownDynamoDb(wiring), wiring.settings.tenantTableName),
);
/** The tenant's data items as stored, for a move to its silo: tenant-scoped like every data access. */
export const partitions = /* @__PURE__ */ built(
  (wiring): TenantPartitions =>
    new DynamoDbTenantPartitions(tenantDynamoDb(wiring), {
      ledger: wiring.settings.ledgerTableName,
      audit: wiring.settings.auditTableName,
      documents: wiring.settings.documentTableName,
    }),
);
/** The caller's own adapters, read with its tenant-scoped session. */
export const tenantPrompts = /* @__PURE__ */ built(
  (wiring): TenantPrompts => new DynamoDbTenantPrompts(tenantDynamoDb(wiring), wiring.settings.tenantTableName),
);
export const tenantKeys = /* @__PURE__ */ built(
  (wiring): TenantKeys => new DynamoDbTenantKeys(tenantDynamoDb(wiring), wiring.settings.tenantTableName),
);
export const tenantAdapters = /* @__PURE__ */ built(
  (wiring): TenantAdapters => new DynamoDbTenantAdapters(tenantDynamoDb(wiring), wiring.settings.tenantTableName),
);

/** What every tenant route uses: settings, audit log, clock and metrics. */
export function tenantRoutePorts(wiring: Wiring) {
  return { settings: wiring.settings, audit: audit(wiring), now: Date.now, metrics: metrics(wiring) };
}

/** Every port at once: what the local platform and the tests hand to any handler (see `runtime-all.ts`). */
export interface PlatformDeps {
  readonly settings: PlatformSettings;
  readonly registry: TenantRegistry;
  readonly ledger: Ledger;
  readonly audit: AuditLog;
  /** Requests', model calls' and metering's metrics (EMF lines on AWS). */
  readonly metrics: PlatformMetrics;
  readonly reports: UsageReports;
  readonly models: ModelProvider;
  readonly embedder: Embedder;
  readonly vectors: VectorIndex;
  readonly documents: DocumentStore;
  /** Each tenant's uploaded files (`/v1/files`, batches' input and output). */
  readonly files: FileStore;
  /** Each tenant's batches (`/v1/batches`). */
  readonly batches: BatchStore;
  /** Bedrock batch inference, which runs batches as jobs; absent where no service role is set: every batch runs on demand. */
  readonly batchInference?: BatchInference;
  /** Conversations kept for `session_id`. */
  readonly sessions: SessionStore;
  /** Each tenant's cached answers to deterministic requests. */
  readonly cache: ResponseCache;
  /** Each tenant's stored Responses API responses. */
  readonly responses: ResponseStore;
  /** The tier's guardrail around the models Bedrock does not serve. */
  readonly contentGuardrail: ContentGuardrail;
  readonly queue: IngestQueue;
  /** Starts the durable offboarding workflow (Step Functions). */
  readonly offboarding: OffboardingWorkflow;
  /** Starts a tenant's move to its silo (an EventBridge event that starts Step Functions). */
  readonly placement: PlacementWorkflow;
  /** Tenants' own Bedrock inference profiles: made at onboarding (when configured), deleted at offboarding. */
  readonly inferenceProfiles: InferenceProfiles;
  /** Which budget thresholds were announced, and where announcements go. */
  readonly budgetAlertMarks: BudgetAlertMarks;
  readonly budgetEvents: BudgetEvents;
  readonly partitions: TenantPartitions;
  /** SageMaker's inference components, where tenants' adapters are loaded. */
  readonly adapterHost: AdapterHost;
  readonly adapterWorkflow: AdapterWorkflow;
  /** Calls to the GPU endpoint's components; absent without an endpoint. */
  readonly adapterModels?: ModelProvider;
  readonly adapters: TenantAdapters;
  /** The caller's own API keys (ids and status). */
  readonly keys: TenantKeys;
  /** The caller's own prompt templates. */
  readonly prompts: TenantPrompts;
  readonly tokens?: TokenVerifier;
  readonly now: () => number;
}

/** What the model-calling core functions take: the model ports plus the catalog, retrieval and adapter settings. */
export function modelDeps<D extends { readonly settings: PlatformSettings }>(deps: D) {
  return {
    ...deps,
    catalog: deps.settings.catalog,
    retrieval: deps.settings.retrieval,
    adapterEndpoint: deps.settings.adapterEndpoint,
    piiRedaction: deps.settings.piiRedaction,
    routing: deps.settings.routing,
    cacheHitNanoUsd: deps.settings.cacheHitNanoUsd,
    guardrails: deps.settings.guardrails,
  };
}

/** What the offboarding steps take: the stores, the tenant's adapters, and the drain before deleting. */
export function offboardingDeps<
  D extends {
    readonly settings: PlatformSettings;
    readonly registry: TenantRegistry;
    readonly adapterHost: AdapterHost;
  },
>(deps: D) {
  return {
    ...deps,
    adapterStore: { registry: deps.registry, host: deps.adapterHost },
    drainMs: deps.settings.offboardingDrainSeconds * 1000,
  };
}

/** On AWS: the function's environment, its region, its role's credentials. */
function awsWiring(): Wiring {
  const settings = settingsFromEnv(process.env);
  const region = { region: settings.region };
  return {
    settings,
    services: {
      dynamodb: region,
      sts: region,
      bedrock: region,
      bedrockControl: region,
      sqs: region,
      sfn: region,
      events: region,
      sagemaker: region,
      s3vectors: region,
      s3: region,
      sagemakerRuntime: region,
    },
  };
}

/**
 * A Lambda entry point: the handler is built from the AWS wiring on the first invocation and kept
 * for the container's life. Lazy, so local mode and tests can import handler modules freely.
 */
export function lambdaHandler<E, R>(create: (wiring: Wiring) => (event: E, context: Context) => Promise<R>) {
  let handler: ((event: E, context: Context) => Promise<R>) | undefined;
  return (event: E, context: Context): Promise<R> => {
    handler ??= create(awsWiring());
    return handler(event, context);
  };
}

/** What the Node.js Lambda runtime offers streaming functions: a global, present only in Lambda. */
interface LambdaStreamingRuntime {
  streamifyResponse(handler: (event: unknown, responseStream: Writable, context: Context) => Promise<void>): unknown;
  HttpResponseStream: {
    from(stream: Writable, prelude: { statusCode: number; headers?: Record<string, string> }): Writable;
  };
}

/**
 * A Lambda entry point for a route behind API Gateway's `STREAM` transfer mode: the handler's
 * status and headers go out as the prelude, then its body, streamed as it is produced or written
 * whole. Outside Lambda (tests, the cold-start bench) there is no runtime to wrap it.
 */
export function streamingLambdaHandler<E>(
  create: (wiring: Wiring) => (event: E, context: Context) => Promise<APIGatewayProxyResult>,
) {
  const lambda = (globalThis as { awslambda?: Partial<LambdaStreamingRuntime> }).awslambda;
  const runtime = typeof lambda?.streamifyResponse === 'function' ? (lambda as LambdaStreamingRuntime) : undefined;
  let handler: ((event: E, context: Context) => Promise<APIGatewayProxyResult>) | undefined;
  const stream = async (event: unknown, responseStream: Writable, context: Context) => {
    handler ??= create(awsWiring());
    const result = await handler(event as E, context);
    const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
    const out = runtime
      ? runtime.HttpResponseStream.from(responseStream, { statusCode: result.statusCode, headers })
      : responseStream;
    const body = streamedBody(result);
    if (body) await writeStreamed(body, out);
    else out.end(result.body);
  };
  return runtime ? runtime.streamifyResponse(stream) : stream;
}
