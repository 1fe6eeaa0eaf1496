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
import type { PlatformSettings } from '../contract/environment';
import type { BudgetThresholdDetail } from '../contract/events';
import { TENANT_SESSION_TAG } from '../contract/iam';
import { type HandlerName, ROUTES } from '../contract/routes';
import { SHARED_INDEX } from '../contract/search';
import { AUDIT_BY_REQUEST_INDEX } from '../contract/tables';
import { DynamoDbTenantRegistry } from '../lambdas/adapters/dynamodb-tenant-registry';
import { JwtTokenVerifier } from '../lambdas/adapters/jwt-token-verifier';
import { parseJson } from '../lambdas/core/json';
import { purgeTenantData } from '../lambdas/core/offboarding';
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
import { type LocalBedrockServer, startLocalBedrock } from './bedrock-server';
import { consoleRoutes } from './console-routes';
import { createDevIssuer, type DevIssuer } from './dev-issuer';
import { readJsonFile, writeFileDurably } from './durable-file';
import { type AccessDecision, type DynamoDbFaultInjector, startDynamoDbFront } from './dynamodb-front';
import { startLocalDynamoDb } from './dynamodb-server';
import { type LocalEvent, type LocalEventBridge, startLocalEventBridge } from './eventbridge-server';
import { lambdaContext } from './lambda-context';
import { type LocalOffboardingRunner, startLocalOffboardingRunner } from './offboarding-runner';
import { type LocalOpenSearch, startLocalOpenSearch } from './opensearch-server';
import type { PartitionCapacity } from './partition-capacity';
import { type LocalPlacementRunner, startLocalPlacementRunner } from './placement-runner';
import { serialPoller } from './poller';
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
  /** This plane is the silo of this one tenant (started by the pool's placement runner). */
  readonly siloTenantId?: string;
  /** The dev issuer's key, when another plane's: a silo accepts the pool's tokens, as both trust one IdP on AWS. */
  readonly issuerKeyFile?: string;
  /** DynamoDB's per-partition-key units a second, enforced by the local front; default DynamoDB's own. */
  readonly partitionLimits?: { readonly writeUnitsPerSecond: number; readonly readUnitsPerSecond: number };
  /** How long the local model takes a word when it streams (`LOCAL_MODEL_WORD_DELAY_MS`); default: none. */
  readonly modelWordDelayMs?: number;
  /** Tests only: a deploy of this tenant's silo fails with the returned message. */
  readonly siloDeployFault?: (tenantId: string) => string | undefined;
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
const LOCAL_ADAPTER_ENDPOINT = 'local-adapters';
const LOCAL_ARTIFACT_BUCKET = 'tenant-adapters';
const LOCAL_VECTOR_BUCKET = 'local-vectors';

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

  const dynamodb = await startLocalDynamoDb({
    path: options.persist === false ? undefined : join(options.dataDir, 'dynamodb'),
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
    upstream: dynamodb.endpoint,
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
    file: options.persist === false ? undefined : join(options.dataDir, 'opensearch.journal'),
  });
  const s3vectors = await startLocalS3Vectors({
    sts,
    vectorBucketName: LOCAL_VECTOR_BUCKET,
    file: options.persist === false ? undefined : join(options.dataDir, 's3vectors.journal'),
  });
  const eventBridge = await startLocalEventBridge();
  const sqs = await startLocalSqs({
    queueName: 'ingest',
    platformCredentials: LOCAL_CREDENTIALS,
    file: options.persist === false ? undefined : join(options.dataDir, 'ingest-queue.journal'),
    now: options.now,
  });
  const served = bedrockModels(config.models);
  const bedrock = await startLocalBedrock({
    sts,
    chatModelIds: served.filter((m) => m.kind === 'chat').map((m) => m.bedrockModelId),
    embeddingModelIds: served.filter((m) => m.kind === 'embedding').map((m) => m.bedrockModelId),
    wordDelayMs: options.modelWordDelayMs,
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

  const now = options.now ?? Date.now;
  // The GPU endpoint, when configured: its base components named as the CDK names them.
  const adapterEndpoint: AdapterEndpointSettings | undefined = config.adapters && {
    endpointName: LOCAL_ADAPTER_ENDPOINT,
    baseComponents: Object.fromEntries(
      Object.keys(config.adapters.baseComponents).map((key) => [key, baseComponentName(LOCAL_ADAPTER_ENDPOINT, key)]),
    ),
    // Local mode reads no bucket: without configured ones, its artifacts come from `s3://tenant-adapters/`.
    artifactBuckets:
      config.adapters.artifactBuckets.length > 0 ? config.adapters.artifactBuckets : [LOCAL_ARTIFACT_BUCKET],
  };
  const sagemaker = adapterEndpoint && (await startLocalSageMaker({ endpoint: adapterEndpoint, now }));

  // The front answers from its first connection: requests that come while the platform is still
  // being built wait for it, instead of reaching a server with no handler yet.
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
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuer = await createDevIssuer({
    keyFile: options.issuerKeyFile ?? join(options.dataDir, 'dev-issuer-key.json'),
    issuer: 'local-dev-issuer',
    audience: 'multi-tenant-ai-platform',
    tenantClaim: 'custom:tenant_id',
  });
  const jwt = {
    issuer: issuer.issuer,
    audience: issuer.audience,
    jwksUri: `${url}/local/jwks.json`,
    tenantClaim: issuer.tenantClaim,
  };
  const announce = (event: LocalEvent) => {
    eventBridge.events.push(event);
  };
  const offboarding = startLocalOffboardingRunner({
    step: (event) => createOffboardingSteps(deps)(event, lambdaContext()),
    // The pipeline's decommission build on AWS: a silo tenant's data is purged in its silo (progress
    // on the pool's record), then the silo plane is destroyed with everything under its directory.
    decommission:
      options.siloTenantId === undefined
        ? async (tenantId) => {
            const silo = silos.get(tenantId);
            if (silo) {
              const { ledger, audit, documents, sessions, cache, responses, vectors, registry, adapterHost } =
                silo.deps;
              const adapterStore = { registry, host: adapterHost };
              await purgeTenantData(
                {
                  ...offboardingDeps(deps),
                  ledger,
                  audit,
                  documents,
                  sessions,
                  cache,
                  responses,
                  vectors,
                  adapterStore,
                },
                tenantId,
              );
            }
            await destroySilo(tenantId);
          }
        : undefined,
    now,
    announce,
    journalFile: options.persist === false ? undefined : join(options.dataDir, 'offboarding.json'),
  });
  const settings: PlatformSettings = {
    region: 'us-east-1',
    tenantTableName: TABLES.tenants,
    ledgerTableName: TABLES.ledger,
    auditTableName: TABLES.audit,
    auditRetentionDays: config.auditRetentionDays,
    storedResponseDays: config.storedResponseDays,
    reservationTtlSeconds: config.reservationTtlSeconds,
    tenantAccessRoleArn: TENANT_ACCESS_ROLE_ARN,
    documentTableName: TABLES.documents,
    opensearchEndpoint: opensearch.endpoint,
    vectorBucketName: LOCAL_VECTOR_BUCKET,
    ingestQueueUrl: sqs.queueUrl,
    retrieval: config.retrieval,
    catalog: config.models,
    tiers: config.tiers,
    piiRedaction: config.piiRedaction,
    cacheHitNanoUsd: config.cacheHitNanoUsd,
    guardrails: {
      basic: { id: localGuardrailId('basic'), version: '1' },
      standard: { id: localGuardrailId('standard'), version: '1' },
      enterprise: { id: localGuardrailId('enterprise'), version: '1' },
    },
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    offboardingDrainSeconds: offboardingDrainSeconds(config),
    offboardingStateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:local-offboarding',
    jwt,
    siloTenantId: options.siloTenantId,
    adapterEndpoint,
    tenantInferenceProfiles: config.tenantInferenceProfiles ? { namePrefix: 'local' } : undefined,
  };
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
  };
  const services = localServices(endpoints);
  const adapters = allDeps({ settings, services });
  const silos = new Map<string, LocalPlatform>();
  const siloPortsFile = join(options.dataDir, 'silos.json');
  const siloPorts = readJsonFile<Record<string, number>>(siloPortsFile, {});
  /** A silo plane of its own for the tenant: its own port, tables and vector store under `silos/<id>`. */
  const startSilo = async (tenantId: string): Promise<LocalPlatform> => {
    const running = silos.get(tenantId);
    if (running) return running;
    const silo = await startLocalPlatform({
      ...options,
      dataDir: join(options.dataDir, 'silos', tenantId),
      port: siloPorts[tenantId] ?? 0,
      config,
      siloTenantId: tenantId,
      issuerKeyFile: join(options.dataDir, 'dev-issuer-key.json'),
    });
    silos.set(tenantId, silo);
    siloPorts[tenantId] = Number(new URL(silo.url).port);
    writeFileDurably(siloPortsFile, JSON.stringify(siloPorts));
    return silo;
  };
  const destroySilo = async (tenantId: string) => {
    await silos.get(tenantId)?.close();
    silos.delete(tenantId);
    delete siloPorts[tenantId];
    writeFileDurably(siloPortsFile, JSON.stringify(siloPorts));
    rmSync(join(options.dataDir, 'silos', tenantId), { recursive: true, force: true });
  };
  const placement = startLocalPlacementRunner({
    step: (event) => createPlacementSteps(deps)(event, lambdaContext()),
    deploy: async (tenantId) => {
      const fault = options.siloDeployFault?.(tenantId);
      if (fault) throw new Error(fault);
      return (await startSilo(tenantId)).url;
    },
    stores: {
      pool: adapters,
      silo: (tenantId) => {
        const silo = silos.get(tenantId);
        if (!silo) throw new Error(`the silo of '${tenantId}' is not running`);
        return silo.deps;
      },
    },
    registry: adapters.registry,
    now,
    drainMs: settings.offboardingDrainSeconds * 1000,
    vectorStores: config.retrieval.vectorStores,
    announce,
    journalFile: options.persist === false ? undefined : join(options.dataDir, 'placement.json'),
  });
  const adapterWorkflow = startLocalAdapterRunner({
    refresh: async (adapter) => (await createAdapterSteps(deps)(adapter, lambdaContext())).status,
    journalFile: options.persist === false ? undefined : join(options.dataDir, 'adapters.json'),
  });
  const deps: PlatformDeps = {
    ...adapters,
    adapterWorkflow,
    // The production verifier, fed the dev issuer's keys instead of fetching them over HTTPS.
    tokens: new JwtTokenVerifier({ ...jwt, jwks: issuer.jwks }),
    offboarding,
    placement,
    now,
  };
  // Silos deployed before a restart come back with the pool, on their ports.
  if (options.siloTenantId === undefined) for (const tenantId of Object.keys(siloPorts)) await startSilo(tenantId);

  const gateway = platformGateway(deps, {
    authorizerCacheTtlSeconds: config.authorizerCacheTtlSeconds,
    operatorToken,
    handlerTimeoutMs: options.handlerTimeoutMs,
  });
  if (options.ingestWorker !== false) {
    const worker = createIngestWorker(deps);
    sqs.consume((event) => worker(event, lambdaContext()));
  }
  // The budget check's schedule, as the plane's EventBridge rule runs it on AWS.
  const budgetAlerts = createBudgetAlerts(deps);
  const budgetCheck = serialPoller(async () => {
    await budgetAlerts({}, lambdaContext()).catch(() => undefined);
  }, BUDGET_CHECK_INTERVAL_MS);
  const localRoutes = { ...devIssuerRoutes(issuer, operatorToken), ...consoleRoutes() };
  serve = (request, response) => (localRoutes[`${request.method} ${request.url}`] ?? gateway)(request, response);
  ready();

  return {
    url,
    operatorToken,
    issuer,
    bedrock,
    sts,
    opensearch,
    s3vectors,
    sqs,
    eventBridge,
    checkBudgets: async () => (await budgetAlerts({}, lambdaContext())).announced,
    offboarding,
    placement,
    adapterWorkflow,
    sagemaker,
    silos,
    endpoints,
    credentials: LOCAL_CREDENTIALS,
    dynamodbDecisions: dynamodbFront.decisions,
    dynamodbCapacity: dynamodbFront.capacity,
    injectDynamoDbFaults: dynamodbFront.injectFaults,
    deps,
    close: async () => {
      budgetCheck.close();
      offboarding.close();
      placement.close();
      adapterWorkflow.close();
      await Promise.all([...silos.values()].map((silo) => silo.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([
        bedrock.close(),
        sts.close(),
        opensearch.close(),
        s3vectors.close(),
        sqs.close(),
        eventBridge.close(),
        sagemaker?.close(),
        dynamodbFront.close(),
        dynamodb.close(),
      ]);
    },
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
  const deps = allDeps({ settings: aws.settings, services: localServices(aws.endpoints) });
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
      const { tenant_id: tenantId, user_id: userId, expires_in: expiresInSeconds } = parsed.data;
      reply(response, 200, {
        token: await issuer.mint({ tenantId, userId, expiresInSeconds }),
        expires_in: expiresInSeconds,
      });
    },
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
function localServices(endpoints: Record<keyof ServiceConfigs, string>): ServiceConfigs {
  const config = (endpoint: string) => ({
    region: 'us-east-1',
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    // The SDK speaks HTTP/2 to Bedrock; the local servers speak HTTP/1.1.
    requestHandler: new NodeHttpHandler(),
  });
  return {
    // DynamoDB keeps its own handler: the production timeouts apply locally too.
    dynamodb: { region: 'us-east-1', endpoint: endpoints.dynamodb, credentials: LOCAL_CREDENTIALS },
    sts: config(endpoints.sts),
    bedrock: config(endpoints.bedrock),
    bedrockControl: config(endpoints.bedrockControl),
    sqs: config(endpoints.sqs),
    sfn: config(endpoints.sfn),
    events: config(endpoints.events),
    sagemaker: config(endpoints.sagemaker),
    sagemakerRuntime: config(endpoints.sagemakerRuntime),
    s3vectors: config(endpoints.s3vectors),
  };
}
