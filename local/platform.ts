import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import * as z from 'zod';
import { type AdapterEndpointSettings, baseComponentName } from '../contract/adapters';
import { bedrockModels } from '../contract/catalog';
import type { JwtSettings, PlatformSettings } from '../contract/environment';
import type { BudgetThresholdDetail } from '../contract/events';
import { TENANT_SESSION_TAG } from '../contract/iam';
import { INGEST_QUEUE } from '../contract/queue';
import { type HandlerName, ROUTES } from '../contract/routes';
import { CROSS_REGION_GEOS } from '../contract/routing';
import { SHARED_INDEX } from '../contract/search';
import { AUDIT_BY_REQUEST_INDEX } from '../contract/tables';
import { PROJECT_PATTERN } from '../contract/tenancy';
import { DynamoDbTenantRegistry } from '../lambdas/adapters/dynamodb-tenant-registry';
import { JwtTokenVerifier } from '../lambdas/adapters/jwt-token-verifier';
import { parseJson } from '../lambdas/core/json';
import { purgeTenantData } from '../lambdas/core/offboarding';
import { deleteSiloCopy, suspendAtSilo } from '../lambdas/core/placement';
import { tenantIdSchema } from '../lambdas/core/tenant';
import { ROUTE_HANDLERS, type RouteHandler } from '../lambdas/handlers';
import { create as createAdapterSteps } from '../lambdas/handlers/adapter-workflow';
import { create as createAuthorizer } from '../lambdas/handlers/authorizer';
import { create as createBudgetAlerts } from '../lambdas/handlers/budget-alerts';
import { create as createIngestWorker } from '../lambdas/handlers/ingest-worker';
import { create as createOffboardingSteps } from '../lambdas/handlers/offboarding';
import { create as createPlacementSteps } from '../lambdas/handlers/placement';
import { offboardingDeps, type PlatformDeps, type ServiceConfigs } from '../lambdas/runtime';
import { allDeps } from '../lambdas/runtime-all';
import { offboardingDrainSeconds, type PlatformConfig, platformConfig } from '../lib/config';
import { type LocalAdapterRunner, startLocalAdapterRunner } from './adapter-runner';
import { answerClientError, createLocalApiGateway, isOperator } from './api-gateway';
import { readBody } from './aws-wire';
import { type LocalBedrockServer, type LocalInferenceProfile, startLocalBedrock } from './bedrock-server';
import { consoleRoutes } from './console-routes';
import { createDevIssuer, type DevIssuer } from './dev-issuer';
import { readJsonFile, writeFileDurably } from './durable-file';
import { type AccessDecision, type DynamoDbFaultInjector, startDynamoDbFront } from './dynamodb-front';
import { startLocalDynamoDb } from './dynamodb-server';
import { type LocalEvent, type LocalEventBridge, startLocalEventBridge } from './eventbridge-server';
import { lambdaContext } from './lambda-context';
import { type ModelFaults, modelFaultChange } from './model-faults';
import { type LocalOffboardingRunner, startLocalOffboardingRunner } from './offboarding-runner';
import { type LocalOpenSearch, startLocalOpenSearch } from './opensearch-server';
import type { PartitionCapacity } from './partition-capacity';
import { type LocalPlacementRunner, startLocalPlacementRunner } from './placement-runner';
import { serialPoller } from './poller';
import { type LocalS3, startLocalS3 } from './s3-server';
import { type LocalS3Vectors, startLocalS3Vectors } from './s3vectors-server';
import { type LocalSageMaker, startLocalSageMaker } from './sagemaker-server';
import { type LocalSqs, startLocalSqs } from './sqs-server';
import { type LocalSts, startLocalSts } from './sts-server';

export interface LocalPlatformOptions {
  /** Where tables, the dev issuer's key and the operator token live. */
  readonly dataDir: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Keep DynamoDB data on disk under `dataDir` (default) or in memory. */
  readonly persist?: boolean;
  readonly config?: PlatformConfig;
  /** The platform's clock (tests move it instead of waiting): handlers, the authorizer cache, the offboarding wait. */
  readonly now?: () => number;
  /**
   * Whether the ingest worker consumes the queue.
   * @default true
   */
  readonly ingestWorker?: boolean;
  /** Tests only: a Lambda timeout shorter than the handlers' 30 s. */
  readonly handlerTimeoutMs?: number;
  /**
   * Benches only: how long a move or an offboarding waits for calls already let in, instead of
   * `offboardingDrainSeconds(config)` (cache TTL + longest handler or worker run + margin): safe
   * only when no call or ingest job runs longer than it, less the cache TTL.
   */
  readonly drainSeconds?: number;
  /** This plane is the silo of this one tenant (started by the pool's placement runner). */
  readonly siloTenantId?: string;
  /** The dev issuer's key, when another plane's: a silo accepts the pool's tokens, as both trust one IdP on AWS. */
  readonly issuerKeyFile?: string;
  /** DynamoDB's per-partition-key units a second, enforced by the local front; default DynamoDB's own. */
  readonly partitionLimits?: { readonly writeUnitsPerSecond: number; readonly readUnitsPerSecond: number };
  /** How long the local model takes a word when it streams (`LOCAL_MODEL_WORD_DELAY_MS`); default: none. */
  readonly modelWordDelayMs?: number;
  /** Faults models show from the start, by catalog id (`LOCAL_MODEL_FAULTS`); `PUT /local/model-faults` changes them. */
  readonly modelFaults?: ModelFaults;
  /** Tests only: a deploy of this tenant's silo fails with the returned message. */
  readonly siloDeployFault?: (tenantId: string) => string | undefined;
  /** Tests only: runs once the tenant's silo plane is up, before its deploy answers (a deploy build still running). */
  readonly siloDeployed?: (tenantId: string) => Promise<void>;
  /**
   * Tests only: how often the local workflow runners (offboarding, placement, adapters) look for
   * work by themselves; 0: only when a test runs them (`runDue`), so no step is taken behind its back.
   * @default 1000
   */
  readonly workflowPollMs?: number;
  /** Tests only: how a move waits between looks at the adapters loading at the silo (a manual clock steps); default real time. */
  readonly moveSleep?: (ms: number) => Promise<void>;
  /** The AWS region the plane stands for (its clients sign for it, its Bedrock's profiles name it); default us-east-1. */
  readonly region?: string;
  /** Tests only: the region of a tenant's silo (`silo.<id>.region` on AWS); default the pool's. */
  readonly siloRegions?: Readonly<Record<string, string>>;
  /** A silo in its pool's region: the region's inference profiles, which the pool's local Bedrock made. */
  readonly regionInferenceProfiles?: Map<string, LocalInferenceProfile>;
}

export interface LocalPlatform {
  readonly url: string;
  readonly operatorToken: string;
  readonly issuer: DevIssuer;
  readonly bedrock: LocalBedrockServer;
  readonly sts: LocalSts;
  readonly opensearch: LocalOpenSearch;
  /** The plane's vector bucket: an index of its own for each tenant of an `s3vectors` tier. */
  readonly s3vectors: LocalS3Vectors;
  /** The plane's files bucket: each tenant's files under its own prefix. */
  readonly s3: LocalS3;
  readonly sqs: LocalSqs;
  /** The offboarding state machine's local stand-in. */
  readonly offboarding: LocalOffboardingRunner;
  /** The placement state machine's local stand-in (the pool's; a silo moves no tenant). */
  readonly placement: LocalPlacementRunner;
  /** The adapter workflow's local stand-in. */
  readonly adapterWorkflow: LocalAdapterRunner;
  /** The local SageMaker, when the config has an adapter endpoint. */
  readonly sagemaker?: LocalSageMaker;
  /** The silo planes this pool has deployed, by tenant id. */
  readonly silos: ReadonlyMap<string, LocalPlatform>;
  /** Where the local servers listen, by the AWS service they stand in for. */
  readonly endpoints: Readonly<Record<keyof ServiceConfigs, string>>;
  /** What local adapters sign with: the local servers check the SigV4 shape, and sessions' secrets. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** DynamoDB capacity consumed per partition key (`table/key`), and the per-key limits enforced. */
  readonly dynamodbCapacity: PartitionCapacity;
  /** Every DynamoDB request's access decision: who signed it, which partitions it named. */
  readonly dynamodbDecisions: AccessDecision[];
  /** Tests only: makes the local DynamoDB misbehave (throttling, errors, lost answers, timeouts). */
  injectDynamoDbFaults(injector: DynamoDbFaultInjector | undefined): void;
  readonly deps: PlatformDeps;
  /** Where budget announcements (and any other platform event) land. */
  readonly eventBridge: LocalEventBridge;
  /** Runs the budget check now (it also runs every minute): what it announced. */
  checkBudgets(): Promise<BudgetThresholdDetail[]>;
  close(): Promise<void>;
}

/** The credentials local adapters sign with: the local servers check the SigV4 shape, not the secret. */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local-secret' };
const TABLES = { tenants: 'tenants', ledger: 'ledger', audit: 'audit', documents: 'documents' };
/** How often the local budget check runs (the plane's schedule on AWS is every five minutes). */
const BUDGET_CHECK_INTERVAL_MS = 60_000;
const TENANT_ACCESS_ROLE_ARN = 'arn:aws:iam::000000000000:role/local-tenant-access';
const BATCH_INFERENCE_ROLE_ARN = 'arn:aws:iam::000000000000:role/local-batch-inference';
const LOCAL_ADAPTER_ENDPOINT = 'local-adapters';
const LOCAL_ARTIFACT_BUCKET = 'tenant-adapters';
const LOCAL_VECTOR_BUCKET = 'local-vectors';
const LOCAL_FILES_BUCKET = 'local-files';

const localGuardrailId = (tier: string) => `local-guardrail-${tier}`;

export function operatorTokenFile(dataDir: string): string {
  return join(dataDir, 'operator-token');
}

/**
 * The whole platform in one process: dynalite for DynamoDB, the local Bedrock server, the dev
 * token issuer, and the API Gateway front running the production authorizer and handlers with the
 * production adapters, pointed at those local endpoints.
 */
export async function startLocalPlatform(options: LocalPlatformOptions): Promise<LocalPlatform> {
  const config = options.config ?? platformConfig();
  mkdirSync(options.dataDir, { recursive: true });
  const operatorToken = readOrCreate(operatorTokenFile(options.dataDir), () => randomBytes(24).toString('base64url'));
  const now = options.now ?? Date.now;
  const region = options.region ?? 'us-east-1';
  const profiles = options.regionInferenceProfiles ?? new Map<string, LocalInferenceProfile>();
  const aws = await startLocalAws(options, config, now, profiles);
  const front = await openFront(options.port);
  const { issuer, jwt } = await startIssuer(options, front.url);
  const settings = localSettings(config, aws, jwt, options, region);
  const adapters = allDeps({ settings, services: localServices(aws.standIns.endpoints, region) });
  const silos = siloPlanes(options, config, { region, profiles });
  // The runners call the handlers with `deps`, which holds the runners: they read it only when they run.
  const runners = startWorkflowRunners(
    options,
    { now, adapters, settings, silos, eventBridge: aws.standIns.eventBridge, url: front.url },
    () => deps,
  );
  const deps: PlatformDeps = {
    ...adapters,
    adapterWorkflow: runners.adapterWorkflow,
    // The production verifier, fed the dev issuer's keys instead of fetching them over HTTPS.
    tokens: new JwtTokenVerifier({ ...jwt, jwks: issuer.jwks }),
    offboarding: runners.offboarding,
    placement: runners.placement,
    now,
  };
  // Silos deployed before a restart come back with the pool, on their ports.
  if (options.siloTenantId === undefined) await silos.restart();

  const gateway = platformGateway(deps, {
    authorizerCacheTtlSeconds: config.authorizerCacheTtlSeconds,
    operatorToken,
    handlerTimeoutMs: options.handlerTimeoutMs,
  });
  const background = startBackgroundWork(deps, aws.standIns.sqs, options.ingestWorker !== false);
  const localRoutes = {
    ...devIssuerRoutes(issuer, operatorToken),
    ...modelFaultRoutes(config, aws.standIns.bedrock, operatorToken),
    ...consoleRoutes(),
  };
  front.serve((request, response) => (localRoutes[`${request.method} ${request.url}`] ?? gateway)(request, response));

  return {
    url: front.url,
    operatorToken,
    issuer,
    ...aws.standIns,
    checkBudgets: background.checkBudgets,
    offboarding: runners.offboarding,
    placement: runners.placement,
    adapterWorkflow: runners.adapterWorkflow,
    silos: silos.running,
    credentials: LOCAL_CREDENTIALS,
    deps,
    close: async () => {
      background.close();
      runners.close();
      await silos.closeAll();
      await front.close();
      await aws.close();
    },
  };
}

/** What a plane shows of its AWS stand-ins: the servers, where they listen, what its DynamoDB saw. */
type LocalStandIns = Pick<
  LocalPlatform,
  | 'bedrock'
  | 'sts'
  | 'opensearch'
  | 's3vectors'
  | 's3'
  | 'sqs'
  | 'eventBridge'
  | 'sagemaker'
  | 'endpoints'
  | 'dynamodbDecisions'
  | 'dynamodbCapacity'
  | 'injectDynamoDbFaults'
>;

/** A journal's or store's file under the data directory; none when the plane keeps nothing on disk. */
function dataFile(options: LocalPlatformOptions, name: string): string | undefined {
  return options.persist === false ? undefined : join(options.dataDir, name);
}

/** The local servers that stand in for AWS, each speaking its service's protocol, started in this order. */
async function startLocalAws(
  options: LocalPlatformOptions,
  config: PlatformConfig,
  now: () => number,
  profiles: Map<string, LocalInferenceProfile>,
) {
  const { dynamodb, sts, dynamodbFront, opensearch, s3vectors, s3 } = await startLocalStores(options);
  const eventBridge = await startLocalEventBridge();
  const sqs = await startLocalSqs({
    queueName: 'ingest',
    platformCredentials: LOCAL_CREDENTIALS,
    file: dataFile(options, 'ingest-queue.journal'),
    now: options.now,
  });
  const bedrock = await startModels(config, sts, {
    wordDelayMs: options.modelWordDelayMs,
    region: options.region,
    inferenceProfiles: profiles,
    // Batch jobs read and write the files bucket with their service role, as on AWS.
    batchStorage: { [LOCAL_FILES_BUCKET]: s3.serviceObjects },
  });
  for (const [model, fault] of Object.entries(options.modelFaults ?? {})) {
    bedrock.modelFaults.set(bedrockModelIdOf(config, model), fault);
  }
  const adapterEndpoint = localAdapterEndpoint(config);
  const sagemaker = adapterEndpoint && (await startLocalSageMaker({ endpoint: adapterEndpoint, now }));
  // The production adapters, pointed at the local servers: local mode changes endpoints, not code.
  const endpoints = {
    dynamodb: dynamodbFront.endpoint,
    sts: sts.endpoint,
    bedrock: bedrock.endpoint,
    // One local server speaks Bedrock's runtime and the control plane's inference profiles.
    bedrockControl: bedrock.endpoint,
    sqs: sqs.endpoint,
    // Never called: the local runners stand in for Step Functions and the placement rule.
    sfn: 'http://127.0.0.1:1',
    events: eventBridge.endpoint,
    // One local server speaks both SageMaker endpoints; none without an adapter endpoint.
    sagemaker: sagemaker?.endpoint ?? 'http://127.0.0.1:1',
    sagemakerRuntime: sagemaker?.endpoint ?? 'http://127.0.0.1:1',
    s3vectors: s3vectors.endpoint,
    s3: s3.endpoint,
  };
  const standIns: LocalStandIns = {
    bedrock,
    sts,
    opensearch,
    s3vectors,
    s3,
    sqs,
    eventBridge,
    sagemaker,
    endpoints,
    dynamodbDecisions: dynamodbFront.decisions,
    dynamodbCapacity: dynamodbFront.capacity,
    injectDynamoDbFaults: dynamodbFront.injectFaults,
  };
  const close = async () => {
    await Promise.all([
      bedrock.close(),
      sts.close(),
      opensearch.close(),
      s3vectors.close(),
      s3.close(),
      sqs.close(),
      eventBridge.close(),
      sagemaker?.close(),
      // The front first: nothing calls the store once it is closed.
      dynamodbFront.close().then(() => dynamodb.close()),
    ]);
  };
  return { standIns, adapterEndpoint, close };
}

/**
 * The stores and the STS that guards them: DynamoDB behind a front that does IAM's part, and the
 * two vector stores and the files bucket, each of which admits a tenant session to its own tenant's data only.
 */
async function startLocalStores(options: LocalPlatformOptions) {
  const dynamodb = await startLocalDynamoDb({
    path: dataFile(options, 'dynamodb'),
    tables: [
      { name: TABLES.tenants },
      { name: TABLES.ledger },
      { name: TABLES.audit, indexes: [AUDIT_BY_REQUEST_INDEX] },
      { name: TABLES.documents },
    ],
    credentials: LOCAL_CREDENTIALS,
  });
  // The local STS reads the registry itself (the tables, not the front: it acts as STS, not as a caller).
  const stsRegistry = new DynamoDbTenantRegistry(
    DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials: LOCAL_CREDENTIALS }),
    ),
    TABLES.tenants,
  );
  const sts = await startLocalSts({
    roleArn: TENANT_ACCESS_ROLE_ARN,
    requiredTags: [TENANT_SESSION_TAG],
    platformCredentials: LOCAL_CREDENTIALS,
    tenantKnown: async (tenantId) => {
      const record = tenantIdSchema.safeParse(tenantId).success ? await stsRegistry.getTenant(tenantId) : undefined;
      return record !== undefined && record.status !== 'offboarded';
    },
  });
  const dynamodbFront = await startDynamoDbFront({
    dynamodb: dynamodb.handle,
    sts,
    platformCredentials: LOCAL_CREDENTIALS,
    tenantTables: [TABLES.ledger, TABLES.audit, TABLES.documents],
    readableTenantTables: [TABLES.tenants],
    partitionLimits: options.partitionLimits,
    now: options.now,
  });
  const opensearch = await startLocalOpenSearch({
    sts,
    sharedIndex: SHARED_INDEX,
    file: dataFile(options, 'opensearch.journal'),
  });
  const s3vectors = await startLocalS3Vectors({
    sts,
    vectorBucketName: LOCAL_VECTOR_BUCKET,
    file: dataFile(options, 's3vectors.journal'),
  });
  const s3 = await startLocalS3({ sts, bucketName: LOCAL_FILES_BUCKET, file: dataFile(options, 's3.journal') });
  return { dynamodb, sts, dynamodbFront, opensearch, s3vectors, s3 };
}

/** The local Bedrock, serving the catalog's Bedrock models and each tier's guardrail. */
function startModels(
  config: PlatformConfig,
  sts: LocalSts,
  plane: Pick<Parameters<typeof startLocalBedrock>[0], 'wordDelayMs' | 'region' | 'inferenceProfiles' | 'batchStorage'>,
) {
  const served = bedrockModels(config.models);
  return startLocalBedrock({
    sts,
    ...plane,
    chatModelIds: served.filter((m) => m.kind === 'chat').map((m) => m.bedrockModelId),
    embeddingModelIds: served.filter((m) => m.kind === 'embedding').map((m) => m.bedrockModelId),
    promptCacheMinTokens: Object.fromEntries(
      served.flatMap((m) =>
        m.kind === 'chat' && m.promptCache ? [[m.bedrockModelId, m.promptCache.minPrefixTokens]] : [],
      ),
    ),
    // Each tier's guardrail, as `cdk deploy` would publish it: version 1 of `local-guardrail-<tier>`.
    guardrails: Object.fromEntries(
      Object.entries(config.guardrails).map(([tier, policy]) => [localGuardrailId(tier), { version: '1', policy }]),
    ),
  });
}

/** The GPU endpoint, when configured: its base components named as the CDK names them. */
function localAdapterEndpoint(config: PlatformConfig): AdapterEndpointSettings | undefined {
  return (
    config.adapters && {
      endpointName: LOCAL_ADAPTER_ENDPOINT,
      baseComponents: Object.fromEntries(
        Object.keys(config.adapters.baseComponents).map((key) => [key, baseComponentName(LOCAL_ADAPTER_ENDPOINT, key)]),
      ),
      // Local mode reads no bucket: without configured ones, its artifacts come from `s3://tenant-adapters/`.
      artifactBuckets:
        config.adapters.artifactBuckets.length > 0 ? config.adapters.artifactBuckets : [LOCAL_ARTIFACT_BUCKET],
    }
  );
}

/**
 * The plane's HTTP server, listening before the platform is built so its URL can go into the
 * settings (the JWKS URI): requests that come meanwhile wait for `serve`, instead of reaching a
 * server with no handler yet.
 */
async function openFront(port: number) {
  let serve: ((request: IncomingMessage, response: ServerResponse) => Promise<void>) | undefined;
  let ready: () => void = () => undefined;
  const built = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const server = createServer((request, response) => {
    built
      .then(() => serve?.(request, response))
      .catch(() => {
        if (!response.headersSent) response.writeHead(500);
        response.end();
      });
  });
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Answers with `handler` from now on, the waiting requests first. */
    serve: (handler: (request: IncomingMessage, response: ServerResponse) => Promise<void>) => {
      serve = handler;
      ready();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The dev issuer (a silo shares the pool's key), and the JWT settings that trust it, its keys served at `url`. */
async function startIssuer(
  options: LocalPlatformOptions,
  url: string,
): Promise<{ issuer: DevIssuer; jwt: JwtSettings }> {
  const issuer = await createDevIssuer({
    keyFile: options.issuerKeyFile ?? join(options.dataDir, 'dev-issuer-key.json'),
    issuer: 'local-dev-issuer',
    audience: 'multi-tenant-ai-platform',
    tenantClaim: 'custom:tenant_id',
    projectClaim: 'custom:project',
  });
  const jwt = {
    issuer: issuer.issuer,
    audience: issuer.audience,
    jwksUri: `${url}/local/jwks.json`,
    tenantClaim: issuer.tenantClaim,
    projectClaim: issuer.projectClaim,
  };
  return { issuer, jwt };
}

/** The runtime's settings, as the CDK passes them to the functions, naming the local resources instead. */
function localSettings(
  config: PlatformConfig,
  aws: { readonly standIns: LocalStandIns; readonly adapterEndpoint?: AdapterEndpointSettings },
  jwt: JwtSettings,
  plane: Pick<LocalPlatformOptions, 'siloTenantId' | 'drainSeconds' | 'siloRegions'>,
  region: string,
): PlatformSettings {
  const { siloTenantId, drainSeconds = offboardingDrainSeconds(config) } = plane;
  return {
    region,
    siloRegions: [...new Set(Object.values(plane.siloRegions ?? {}))],
    tenantTableName: TABLES.tenants,
    ledgerTableName: TABLES.ledger,
    auditTableName: TABLES.audit,
    auditRetentionDays: config.auditRetentionDays,
    storedResponseDays: config.storedResponseDays,
    reservationTtlSeconds: config.reservationTtlSeconds,
    tenantAccessRoleArn: TENANT_ACCESS_ROLE_ARN,
    documentTableName: TABLES.documents,
    opensearchEndpoint: aws.standIns.opensearch.endpoint,
    vectorBucketName: LOCAL_VECTOR_BUCKET,
    filesBucketName: LOCAL_FILES_BUCKET,
    ingestQueueUrl: aws.standIns.sqs.queueUrl,
    retrieval: config.retrieval,
    catalog: config.models,
    tiers: config.tiers,
    piiRedaction: config.piiRedaction,
    routing: config.routing,
    cacheHitNanoUsd: config.cacheHitNanoUsd,
    guardrails: {
      basic: { id: localGuardrailId('basic'), version: '1' },
      standard: { id: localGuardrailId('standard'), version: '1' },
      enterprise: { id: localGuardrailId('enterprise'), version: '1' },
    },
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    offboardingDrainSeconds: drainSeconds,
    authorizerCacheTtlSeconds: config.authorizerCacheTtlSeconds,
    offboardingStateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:local-offboarding',
    jwt,
    siloTenantId,
    adapterEndpoint: aws.adapterEndpoint,
    tenantInferenceProfiles: config.tenantInferenceProfiles ? { namePrefix: 'local' } : undefined,
    batchInferenceRoleArn: BATCH_INFERENCE_ROLE_ARN,
  };
}

type SiloPlanes = ReturnType<typeof siloPlanes>;

/**
 * The silo planes a pool deploys (placement) and destroys (offboarding): each a plane of its own,
 * with its own port, tables and vector store under `silos/<id>`; the ports kept across restarts.
 */
function siloPlanes(
  options: LocalPlatformOptions,
  config: PlatformConfig,
  pool: { readonly region: string; readonly profiles: Map<string, LocalInferenceProfile> },
) {
  const running = new Map<string, LocalPlatform>();
  const portsFile = join(options.dataDir, 'silos.json');
  const ports = readJsonFile<Record<string, number>>(portsFile, {});
  const regionsFile = join(options.dataDir, 'silo-regions.json');
  const regions = readJsonFile<Record<string, string>>(regionsFile, {});
  /** Starts the tenant's silo plane in `asked` (its move's region), else where it was, else its configured region. */
  const start = async (tenantId: string, asked?: string): Promise<LocalPlatform> => {
    const started = running.get(tenantId);
    if (started) return started;
    const region = asked ?? regions[tenantId] ?? options.siloRegions?.[tenantId] ?? pool.region;
    regions[tenantId] = region;
    writeFileDurably(regionsFile, JSON.stringify(regions));
    const silo = await startLocalPlatform({
      ...options,
      dataDir: join(options.dataDir, 'silos', tenantId),
      port: ports[tenantId] ?? 0,
      config,
      siloTenantId: tenantId,
      issuerKeyFile: join(options.dataDir, 'dev-issuer-key.json'),
      region,
      // One Bedrock control plane a region: a silo in the pool's calls the profiles the pool made.
      regionInferenceProfiles: region === pool.region ? pool.profiles : undefined,
    });
    running.set(tenantId, silo);
    ports[tenantId] = Number(new URL(silo.url).port);
    writeFileDurably(portsFile, JSON.stringify(ports));
    return silo;
  };
  return {
    running: running as ReadonlyMap<string, LocalPlatform>,
    start,
    destroy: async (tenantId: string) => {
      await running.get(tenantId)?.close();
      running.delete(tenantId);
      delete ports[tenantId];
      delete regions[tenantId];
      writeFileDurably(portsFile, JSON.stringify(ports));
      writeFileDurably(regionsFile, JSON.stringify(regions));
      rmSync(join(options.dataDir, 'silos', tenantId), { recursive: true, force: true });
    },
    /** Starts again every silo deployed before a restart. */
    restart: async () => {
      for (const tenantId of Object.keys(ports)) await start(tenantId);
    },
    closeAll: async () => {
      await Promise.all([...running.values()].map((silo) => silo.close()));
    },
  };
}

/** The state machines' local stand-ins (offboarding, placement, adapters), journaled under the data directory. */
function startWorkflowRunners(
  options: LocalPlatformOptions,
  plane: {
    now: () => number;
    adapters: PlatformDeps;
    settings: PlatformSettings;
    silos: SiloPlanes;
    eventBridge: LocalEventBridge;
    /** The plane's API base URL. */
    url: string;
  },
  deps: () => PlatformDeps,
) {
  const { now, adapters, silos } = plane;
  const announce = (event: LocalEvent) => {
    plane.eventBridge.events.push(event);
  };
  const offboarding = startLocalOffboardingRunner({
    step: (event) => createOffboardingSteps(deps())(event, lambdaContext()),
    decommission: options.siloTenantId === undefined ? decommissionSilo(deps, silos) : undefined,
    suspend:
      options.siloTenantId === undefined
        ? async (tenantId) => {
            const silo = silos.running.get(tenantId);
            if (silo) await suspendAtSilo(silo.deps.registry, tenantId);
          }
        : undefined,
    now,
    announce,
    journalFile: dataFile(options, 'offboarding.json'),
    pollMs: options.workflowPollMs,
  });
  const placement = startLocalPlacementRunner({
    step: (event) => createPlacementSteps(deps())(event, lambdaContext()),
    deploy: async (tenantId) => {
      const fault = options.siloDeployFault?.(tenantId);
      if (fault) throw new Error(fault);
      const silo = await silos.start(tenantId, (await adapters.registry.getTenant(tenantId))?.placement?.siloRegion);
      await options.siloDeployed?.(tenantId);
      return silo.url;
    },
    stores: {
      pool: planeStores(adapters, plane.url),
      silo: (tenantId) => {
        const silo = silos.running.get(tenantId);
        if (!silo) throw new Error(`the silo of '${tenantId}' is not running`);
        return planeStores(silo.deps, silo.url);
      },
    },
    decommission: async (tenantId) => {
      const silo = silos.running.get(tenantId);
      if (silo) await deleteSiloCopy(adapters, purgeOf(silo.deps), tenantId);
      await silos.destroy(tenantId);
    },
    registry: adapters.registry,
    now,
    drainMs: plane.settings.offboardingDrainSeconds * 1000,
    vectorStores: plane.settings.retrieval.vectorStores,
    catalog: plane.settings.catalog,
    authorizerCacheMs: plane.settings.authorizerCacheTtlSeconds * 1000,
    announce,
    journalFile: dataFile(options, 'placement.json'),
    pollMs: options.workflowPollMs,
    sleep: options.moveSleep,
  });
  const adapterWorkflow = startLocalAdapterRunner({
    refresh: async (adapter) => (await createAdapterSteps(deps())(adapter, lambdaContext())).status,
    journalFile: dataFile(options, 'adapters.json'),
    pollMs: options.workflowPollMs,
  });
  const close = () => {
    offboarding.close();
    placement.close();
    adapterWorkflow.close();
  };
  return { offboarding, placement, adapterWorkflow, close };
}

/** A plane's stores as a move reads or writes them: its ports, with its region and GPU endpoint from its settings. */
function planeStores(
  deps: Omit<PlatformDeps, 'adapterWorkflow' | 'offboarding' | 'placement' | 'tokens' | 'now'>,
  apiUrl: string,
) {
  return { ...deps, apiUrl, region: deps.settings.region, adapterEndpoint: deps.settings.adapterEndpoint };
}

/** A silo plane's stores, as its tenant's data is deleted there. */
function purgeOf(silo: PlatformDeps) {
  const { ledger, audit, documents, files, vectors, registry, adapterHost, inferenceProfiles } = silo;
  return { ledger, audit, documents, files, vectors, inferenceProfiles, adapterStore: { registry, host: adapterHost } };
}

/**
 * The stand-in for the pipeline's decommission build on AWS: a silo tenant's data is purged in its
 * silo (progress on the pool's record; skipped when the copy never reached it, as the build skips
 * a silo whose resources were never recorded), then the silo plane is destroyed with everything
 * under its directory.
 */
function decommissionSilo(deps: () => PlatformDeps, silos: SiloPlanes) {
  return async (tenantId: string): Promise<void> => {
    const silo = silos.running.get(tenantId);
    // A silo the copy never reached (its move ended while it deployed) holds nothing of the tenant's.
    if (silo && (await silo.deps.registry.getTenant(tenantId))) {
      const { sessions, cache, responses } = silo.deps;
      await purgeTenantData(
        { ...offboardingDeps(deps()), ...purgeOf(silo.deps), sessions, cache, responses },
        tenantId,
        'silo',
      );
    }
    await silos.destroy(tenantId);
  };
}

/**
 * The plane's work off the API: the ingest worker on the queue, when wanted, and the budget check
 * on the schedule the plane's EventBridge rule runs it on AWS.
 */
function startBackgroundWork(deps: PlatformDeps, sqs: LocalSqs, ingestWorker: boolean) {
  if (ingestWorker) {
    const worker = createIngestWorker(deps);
    // As long as the worker's Lambda runs: a batch's step runs lines while it has time.
    sqs.consume((event) => worker(event, lambdaContext(undefined, INGEST_QUEUE.workerTimeoutSeconds * 1000)));
  }
  const budgetAlerts = createBudgetAlerts(deps);
  const budgetCheck = serialPoller(async () => {
    await budgetAlerts({}, lambdaContext()).catch(() => undefined);
  }, BUDGET_CHECK_INTERVAL_MS);
  return {
    checkBudgets: async () => (await budgetAlerts({}, lambdaContext())).announced,
    close: () => budgetCheck.close(),
  };
}

/** The API Gateway stand-in with every route's production handler and the production authorizer. */
function platformGateway(
  deps: PlatformDeps,
  options: { authorizerCacheTtlSeconds: number; operatorToken: string; handlerTimeoutMs?: number },
) {
  return createLocalApiGateway({
    routes: ROUTES,
    handlers: routeHandlers(deps),
    authorizer: createAuthorizer({ ...deps, siloTenantId: deps.settings.siloTenantId }),
    authorizerCacheTtlSeconds: options.authorizerCacheTtlSeconds,
    operatorToken: options.operatorToken,
    now: deps.now,
    handlerTimeoutMs: options.handlerTimeoutMs,
  });
}

/** What a platform front needs to serve another process's local AWS: its settings and endpoints. */
export interface LocalAws {
  readonly settings: PlatformSettings;
  readonly endpoints: Readonly<Record<keyof ServiceConfigs, string>>;
  readonly operatorToken: string;
  readonly authorizerCacheTtlSeconds: number;
}

/**
 * The platform's API front alone (gateway, authorizer, handlers and their production adapters),
 * against the local AWS servers of a platform running in another process: so a benchmark can
 * measure the platform's own CPU apart from the emulators'. No workers or workflow runners.
 */
export async function startPlatformFront(aws: LocalAws): Promise<{ url: string; close(): Promise<void> }> {
  const deps = allDeps({ settings: aws.settings, services: localServices(aws.endpoints, aws.settings.region) });
  const gateway = platformGateway(deps, aws);
  const server = createServer((request, response) => void gateway(request, response));
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const mintRequestSchema = z
  .object({
    tenant_id: z.string().min(1),
    user_id: z.string().min(1).default('dev-user'),
    project: z.string().regex(PROJECT_PATTERN).optional(),
    expires_in: z.number().int().positive().max(86_400).default(3600),
  })
  .strict();

/** Local-only routes of the dev issuer: its JWKS (public) and token minting (operator only). */
function devIssuerRoutes(issuer: DevIssuer, operatorToken: string) {
  const reply = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  return {
    'GET /local/jwks.json': async (_request: IncomingMessage, response: ServerResponse) =>
      reply(response, 200, issuer.jwks),
    'POST /local/tokens': async (request: IncomingMessage, response: ServerResponse) => {
      if (!isOperator(request.headers.authorization, operatorToken)) {
        return reply(response, 403, { error: { code: 'forbidden', message: 'operator token required' } });
      }
      const parsed = mintRequestSchema.safeParse(parseJson((await readBody(request)).toString('utf8') || '{}'));
      if (!parsed.success)
        return reply(response, 400, { error: { code: 'invalid_request', message: parsed.error.message } });
      const { tenant_id: tenantId, user_id: userId, project, expires_in: expiresInSeconds } = parsed.data;
      reply(response, 200, {
        token: await issuer.mint({ tenantId, userId, project, expiresInSeconds }),
        expires_in: expiresInSeconds,
      });
    },
  } as Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>>;
}

/** A catalog model's Bedrock model id: where the local Bedrock keeps its fault. */
/** The catalog's Bedrock models a fault can be set on: each by name, and through each cross-region profile (`nova-micro@us`). */
export function faultableModels(config: PlatformConfig): string[] {
  const names = bedrockModels(config.models).map((entry) => entry.name);
  return [...names, ...CROSS_REGION_GEOS.flatMap((geo) => names.map((name) => `${name}@${geo}`))];
}

/** The model id a catalog model is called by: its own, or its cross-region profile's (`us.<model id>`) for `<name>@<geo>`. */
function bedrockModelIdOf(config: PlatformConfig, model: string): string {
  const [name, geo] = model.split('@');
  const served = bedrockModels(config.models).find((entry) => entry.name === name);
  if (!served) throw new Error(`'${model}' is not a Bedrock model of the catalog`);
  return geo ? `${geo}.${served.bedrockModelId}` : served.bedrockModelId;
}

/**
 * `GET /local/model-faults` (the faults by catalog model) and `PUT /local/model-faults`
 * (`{"model": "nova-micro", "fault": "throttle"}`, or `"fault": null` to clear it), for the operator:
 * a model throttles or fails from the next call on, the same as with `LOCAL_MODEL_FAULTS`.
 */
function modelFaultRoutes(config: PlatformConfig, bedrock: LocalBedrockServer, operatorToken: string) {
  const models = faultableModels(config);
  const reply = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const current = () =>
    Object.fromEntries(
      models.flatMap((model) => {
        const fault = bedrock.modelFaults.get(bedrockModelIdOf(config, model));
        return fault ? [[model, fault]] : [];
      }),
    );
  const operatorOnly =
    (serve: (request: IncomingMessage, response: ServerResponse) => Promise<void>) =>
    async (request: IncomingMessage, response: ServerResponse) => {
      if (!isOperator(request.headers.authorization, operatorToken)) {
        return reply(response, 403, { error: { code: 'forbidden', message: 'operator token required' } });
      }
      await serve(request, response);
    };
  return {
    'GET /local/model-faults': operatorOnly(async (_request, response) => reply(response, 200, { faults: current() })),
    'PUT /local/model-faults': operatorOnly(async (request, response) => {
      let change: ReturnType<typeof modelFaultChange>;
      try {
        change = modelFaultChange(parseJson((await readBody(request)).toString('utf8') || '{}'), models);
      } catch (error) {
        return reply(response, 400, { error: { code: 'invalid_request', message: (error as Error).message } });
      }
      const modelId = bedrockModelIdOf(config, change.model);
      if (change.fault) bedrock.modelFaults.set(modelId, change.fault);
      else bedrock.modelFaults.delete(modelId);
      reply(response, 200, { faults: current() });
    }),
  } as Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>>;
}

function readOrCreate(file: string, create: () => string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = create();
  writeFileSync(file, value, { mode: 0o600 });
  return value;
}

/** Every route handler, built with the same deps. */
function routeHandlers(deps: PlatformDeps): Record<HandlerName, RouteHandler> {
  const handlers = {} as Record<HandlerName, RouteHandler>;
  for (const [name, create] of Object.entries(ROUTE_HANDLERS) as [
    HandlerName,
    (deps: PlatformDeps) => RouteHandler,
  ][]) {
    handlers[name] = create(deps);
  }
  return handlers;
}

/** SDK client configs for the local servers: their endpoints, the local credentials, HTTP/1.1. */
function localServices(endpoints: Record<keyof ServiceConfigs, string>, region: string): ServiceConfigs {
  const config = (endpoint: string) => ({
    region,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    // The SDK speaks HTTP/2 to Bedrock; the local servers speak HTTP/1.1.
    requestHandler: new NodeHttpHandler(),
  });
  return {
    // DynamoDB keeps its own handler: the production timeouts apply locally too.
    dynamodb: { region, endpoint: endpoints.dynamodb, credentials: LOCAL_CREDENTIALS },
    sts: config(endpoints.sts),
    bedrock: config(endpoints.bedrock),
    bedrockControl: config(endpoints.bedrockControl),
    sqs: config(endpoints.sqs),
    sfn: config(endpoints.sfn),
    events: config(endpoints.events),
    sagemaker: config(endpoints.sagemaker),
    sagemakerRuntime: config(endpoints.sagemakerRuntime),
    s3vectors: config(endpoints.s3vectors),
    // The local S3 answers path-style (`/<bucket>/<key>`): no bucket subdomains on 127.0.0.1.
    s3: { ...config(endpoints.s3), forcePathStyle: true },
  };
}
