import { readFileSync } from 'node:fs';
import { setTimeout } from 'node:timers/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity } from '@smithy/types';
import { type PlatformSettings, settingsFromEnv } from '../contract/environment';
import { PLANE_RESOURCES_OUTPUT, type PlaneResources, planeResourcesSchema } from '../contract/placement';
import { BedrockInferenceProfiles } from '../lambdas/adapters/bedrock-inference-profiles';
import { DynamoDbAuditLog } from '../lambdas/adapters/dynamodb-audit-log';
import { DynamoDbBatchStore } from '../lambdas/adapters/dynamodb-batch-store';
import { DynamoDbBudgetAlertMarks } from '../lambdas/adapters/dynamodb-budget-alert-marks';
import { DynamoDbDocumentStore } from '../lambdas/adapters/dynamodb-document-store';
import { DynamoDbLedger } from '../lambdas/adapters/dynamodb-ledger';
import { DynamoDbResponseCache } from '../lambdas/adapters/dynamodb-response-cache';
import { DynamoDbResponseStore } from '../lambdas/adapters/dynamodb-response-store';
import { DynamoDbSessionStore } from '../lambdas/adapters/dynamodb-session-store';
import { DynamoDbTenantPartitions } from '../lambdas/adapters/dynamodb-tenant-partitions';
import { DynamoDbTenantRegistry } from '../lambdas/adapters/dynamodb-tenant-registry';
import type { DocumentClient } from '../lambdas/adapters/dynamodb-wire';
import { OpenSearchVectorIndex } from '../lambdas/adapters/opensearch-vector-index';
import { S3FileStore } from '../lambdas/adapters/s3-file-store';
import { S3VectorsIndex } from '../lambdas/adapters/s3vectors-vector-index';
import { SageMakerAdapterHost } from '../lambdas/adapters/sagemaker-adapter-host';
import { SqsIngestQueue } from '../lambdas/adapters/sqs-ingest-queue';
import { StsTenantCredentials } from '../lambdas/adapters/sts-tenant-credentials';
import { resolveModel } from '../lambdas/core/catalog';
import { purgeTenantData } from '../lambdas/core/offboarding';
import {
  catchUpTenantData,
  copyTenantData,
  deleteSiloCopy,
  drainUntil,
  flipSilo,
  type PlaneStores,
  suspendAtSilo,
  switchPlanes,
} from '../lambdas/core/placement';
import type { TenantRegistry } from '../lambdas/core/ports';
import { StoreRoutedVectorIndex } from '../lambdas/core/vector-stores';

/**
 * The placement pipeline's CodeBuild commands, after `cdk deploy` of the silo stack:
 * `silo-resources <outputs-file>` prints the silo's resources (JSON) from the deploy's outputs file;
 * `silo-url <outputs-file>` prints its API base URL; `copy <tenantId>` copies the tenant from the
 * pool (the project's environment, as its functions get it) to the silo (`SILO_RESOURCES`) while the
 * pool serves it, `switch <tenantId>` copies its ledger and points the pool at the silo (printing when
 * its drain ends), and `catch-up <tenantId>` merges what the pool wrote after that into the silo;
 * `purge <tenantId>` deletes an offboarded silo tenant's data in its silo, recording the counts
 * on the pool's record as offboarding does (skipped when its move ended before the copy recorded the
 * silo's resources: none of its data is there); `session` prints, for the build's `credential_process`,
 * a session of `TENANT_RUN_ROLE_ARN` tagged with `TENANT_ID`, which every other command runs as.
 */
export async function runPlacementBuild(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  sts: () => STSClient = () => new STSClient({}),
  poolRegistry: (env: NodeJS.ProcessEnv) => TenantRegistry = (env) => {
    const pool = poolPlane(env);
    return storesOf(pool, pool).registry;
  },
): Promise<void> {
  const [command, argument] = args;
  if (command === 'session') {
    // The `credential_process` of the build's profile: every command runs as this one tenant's session.
    const [roleArn, tenantId] = [env.TENANT_RUN_ROLE_ARN, env.TENANT_ID];
    if (!roleArn || !tenantId) throw new Error('session needs TENANT_RUN_ROLE_ARN and TENANT_ID');
    const session = await new StsTenantCredentials(sts(), roleArn).credentialsFor(tenantId);
    out(
      JSON.stringify({
        Version: 1,
        AccessKeyId: session.accessKeyId,
        SecretAccessKey: session.secretAccessKey,
        SessionToken: session.sessionToken,
        Expiration: session.expiration?.toISOString(),
      }),
    );
  } else if (command === 'silo-region' && argument) {
    // Where the tenant's silo is, or goes: where its deploy put it (its resources), else the region
    // its move asked for, else its configured one (the pool's context), else the pool's.
    const placement = (await poolRegistry(env).getTenant(argument))?.placement;
    const deployed = placement?.siloResources && planeResourcesSchema.parse(JSON.parse(placement.siloResources)).region;
    const context = JSON.parse(env.PLATFORM_CONTEXT ?? '{}') as Record<string, string>;
    out(deployed || placement?.siloRegion || context[`silo.${argument}.region`] || String(env.AWS_REGION));
  } else if (command === 'silo-resources' && argument) out(JSON.stringify(siloResources(argument)));
  else if (command === 'silo-url' && argument) out(siloResources(argument).apiUrl);
  else if (command === 'suspend' && argument) {
    // Offboarding a silo tenant: its silo refuses its calls at once (its drain then its purge follow).
    const resources = (await poolRegistry(env).getTenant(argument))?.placement?.siloResources;
    if (!resources) {
      out(`the silo's resources of '${argument}' were never recorded: no silo serves it, skipped`);
      return;
    }
    const silo = planeResourcesSchema.parse(JSON.parse(resources));
    const suspended = await suspendAtSilo(storesOf(poolPlane(env), silo).registry, argument);
    out(suspended ? `'${argument}' suspended at its silo` : `the silo holds no record of '${argument}': skipped`);
  } else if (command === 'purge' && argument) {
    // Before a silo's stack goes: its tenant's data there (offboarding, or its return to the pool).
    const registry = poolRegistry(env);
    const record = await registry.getTenant(argument);
    if (!record) throw new Error(`no tenant '${argument}' in the pool's registry`);
    if (record.placement?.siloResources === undefined) {
      // Its move ended before the copy started (the deploy may have run, or be running still): no
      // data of the tenant was copied there, and the stack goes with whatever it holds.
      out(
        `the silo's resources of '${argument}' were never recorded (its move ended before the copy): no data to purge there, skipped`,
      );
      return;
    }
    const pool = poolPlane(env);
    const silo = planeResourcesSchema.parse(JSON.parse(record.placement.siloResources));
    const own = ownDynamoDb(silo.region);
    const siloStores = storesOf(pool, silo);
    const purge = {
      ledger: new DynamoDbLedger(own, silo.ledgerTableName, { reservationTtlMs: 0 }),
      audit: new DynamoDbAuditLog(own, silo.auditTableName, pool.auditRetentionDays),
      documents: new DynamoDbDocumentStore(own, silo.documentTableName),
      // A silo deployed before planes had a files bucket holds no files.
      files: silo.filesBucketName ? filesOf(silo, buildSession(silo.region)) : { deleteAll: async () => 0 },
      vectors: siloStores.vectors,
      // The silo's adapters: their components must go before its endpoint can.
      adapterStore: { registry: siloStores.registry, host: siloStores.adapterHost },
      // Deleted in the region each profile's ARN names (the pool's, or the silo's).
      inferenceProfiles: siloStores.inferenceProfiles,
    };
    if (!record.offboarding) {
      // A return to the pool, caught up: the silo's copy goes (the pool's record says it is returning).
      await deleteSiloCopy({ registry }, purge, argument);
      out(`the silo's copy of '${argument}' deleted: it is served by the pool`);
      return;
    }
    const purged = await purgeTenantData(
      {
        ...purge,
        registry,
        sessions: new DynamoDbSessionStore(own, silo.documentTableName),
        cache: new DynamoDbResponseCache(own, silo.documentTableName),
        responses: new DynamoDbResponseStore(own, silo.documentTableName),
        now: Date.now,
        drainMs: pool.offboardingDrainSeconds * 1000,
      },
      argument,
      'silo',
    );
    out(JSON.stringify(purged.offboarding?.deleted));
  } else if ((command === 'copy' || command === 'switch' || command === 'flip' || command === 'catch-up') && argument) {
    const silo = planeResourcesSchema.parse(JSON.parse(env.SILO_RESOURCES ?? 'null'));
    const registry = poolRegistry(env);
    // The pool's record says which way the tenant moves: to its silo, or back to the pool.
    const returning = (await registry.getTenant(argument))?.placement?.desired === 'pool';
    if (returning && !env.POOL_API_URL) {
      throw new Error("a return needs POOL_API_URL: where the silo forwards the tenant's calls");
    }
    const pool = poolPlane(env);
    const [source, target] = returning
      ? [storesOf(pool, silo), storesOf(pool, pool)]
      : [storesOf(pool, pool), storesOf(pool, silo)];
    const move = { copy: copyTenantData, switch: switchPlanes, flip: flipSilo, 'catch-up': catchUpTenantData }[command];
    const moved = await move(
      {
        registry,
        now: Date.now,
        drainMs: pool.offboardingDrainSeconds * 1000,
        source,
        target,
        vectorStores: pool.retrieval.vectorStores,
        sleep: (ms) => setTimeout(ms),
        catalog: pool.catalog,
        authorizerCacheMs: pool.authorizerCacheTtlSeconds * 1000,
      },
      argument,
    );
    // The switch's and the flip's output is when their drain ends: the workflow waits for it.
    out(['switch', 'flip'].includes(command) ? drainUntil(moved, Date.now) : JSON.stringify(moved.placement?.migrated));
  } else
    throw new Error(
      'usage: migrate-tenant silo-resources|silo-url <outputs-file> | silo-region|copy|switch|flip|catch-up|suspend|purge <tenantId> | session',
    );
}

/** One document client of the build's tenant session (its profile), standing in for every tenant's scoped one. */
function ownDynamoDb(region: string): () => DocumentClient {
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return () => db;
}

/** The silo's resources from `cdk deploy --outputs-file` (one stack: the silo). */
function siloResources(outputsFile: string): PlaneResources {
  const stacks = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>;
  const [outputs] = Object.values(stacks);
  const value = Object.entries(outputs ?? {}).find(([key]) => key.includes(PLANE_RESOURCES_OUTPUT))?.[1];
  if (!value) throw new Error(`no ${PLANE_RESOURCES_OUTPUT} output in ${outputsFile}`);
  return planeResourcesSchema.parse(JSON.parse(value));
}

/** The pool, as a plane: its settings (the project's environment, as its functions get it) and its API URL. */
function poolPlane(env: NodeJS.ProcessEnv): PlatformSettings & { readonly apiUrl: string } {
  return { ...settingsFromEnv(env), apiUrl: env.POOL_API_URL ?? '' };
}

/** The build's own tenant session (its profile's `credential_process`), for the adapters that ask for a tenant's. */
function buildSession(region: string): { credentialsFor: () => Promise<AwsCredentialIdentity> } {
  const credentials = new DynamoDBClient({ region }).config.credentials;
  return { credentialsFor: () => credentials() };
}

/** A plane's files, with the build's tenant session: a move deploys both planes at this version, so both have a bucket. */
function filesOf(plane: PlaneResources, session: ReturnType<typeof buildSession>): S3FileStore {
  if (!plane.filesBucketName) throw new Error(`the plane in ${plane.region} has no files bucket: deploy it first`);
  return new S3FileStore(plane.filesBucketName, { region: plane.region }, session);
}

/**
 * A plane's stores for the copy, signed with the build's tenant session: it reaches the tenant's
 * partitions of the pool and the resources tagged with the tenant (the silo's), and nothing else.
 */
function storesOf(pool: PlatformSettings, plane: PlaneResources): PlaneStores {
  const own = ownDynamoDb(plane.region);
  const db = own();
  const dimensions = resolveModel(pool.catalog, pool.retrieval.embeddingModel, 'embedding').dimensions;
  const build = buildSession(plane.region);
  const stores = pool.retrieval.vectorStores;
  return {
    registry: new DynamoDbTenantRegistry(db, plane.tenantTableName),
    partitions: new DynamoDbTenantPartitions(own, {
      ledger: plane.ledgerTableName,
      audit: plane.auditTableName,
      documents: plane.documentTableName,
    }),
    vectors: new StoreRoutedVectorIndex(stores, {
      s3vectors: new S3VectorsIndex(plane.vectorBucketName, { region: plane.region }, build, dimensions, stores),
      opensearch: new OpenSearchVectorIndex(plane.opensearchEndpoint, plane.region, build, dimensions, stores),
    }),
    documents: new DynamoDbDocumentStore(own, plane.documentTableName),
    batches: new DynamoDbBatchStore(own, plane.documentTableName),
    files: filesOf(plane, build),
    queue: new SqsIngestQueue(new SQSClient({ region: plane.region }), plane.ingestQueueUrl),
    budgetAlertMarks: new DynamoDbBudgetAlertMarks(db, plane.tenantTableName),
    adapterHost: new SageMakerAdapterHost(new SageMakerClient({ region: plane.region })),
    apiUrl: plane.apiUrl,
    region: plane.region,
    inferenceProfiles: new BedrockInferenceProfiles(
      { region: plane.region },
      pool.tenantInferenceProfiles?.namePrefix ?? 'tenant',
    ),
    ...(plane.adapterEndpoint && { adapterEndpoint: plane.adapterEndpoint }),
  };
}
