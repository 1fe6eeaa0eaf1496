import { CfnOutput, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { lambdaEnvironment, type PlatformSettings } from '../../contract/environment';
import { POOL_PLANE } from '../../contract/events';
import { LONGEST_HANDLER_TIMEOUT_SECONDS } from '../../contract/lambda';
import { PLANE_RESOURCES_OUTPUT, type PlaneResources } from '../../contract/placement';
import { SHARED_INDEX } from '../../contract/search';
import { AUDIT_BY_REQUEST_INDEX } from '../../contract/tables';
import type { Tier } from '../../contract/tenancy';
import { offboardingDrainSeconds, type PlatformConfig } from '../config';
import { AdapterEndpoint } from './adapter-endpoint';
import { AdapterWorkflow } from './adapter-workflow';
import { BatchInference } from './batch-inference';
import { BudgetAlerts } from './budget-alerts';
import { FilesBucket } from './files-bucket';
import { IngestPipeline } from './ingest-pipeline';
import { ModelGateway } from './model-gateway';
import { OffboardingWorkflow } from './offboarding-workflow';
import { PlacementPipeline, type PlacementPipelineProps } from './placement-pipeline';
import { PlaneAlarms } from './plane-alarms';
import { PlaneDashboard } from './plane-dashboard';
import { PlatformTable } from './platform-table';
import { TenantAccessRole } from './tenant-access-role';
import { TenantApi } from './tenant-api';
import { TenantAuthorizer } from './tenant-authorizer';
import { TierGuardrails } from './tier-guardrails';
import { UsageConsole } from './usage-console';
import { VectorBucket } from './vector-bucket';
import { VectorSearch } from './vector-search';
import { stateMachineArn } from './workflow';

export interface TenantPlaneProps {
  /** Tiers, model catalog, identity provider, limits, sizes: see `lib/config.ts`. */
  readonly config: PlatformConfig;
  /**
   * ARN of a regional WAFv2 web ACL for the API stage.
   * @default - no web ACL
   */
  readonly webAclArn?: string;
  /**
   * A silo tenant's own customer-managed key: its tables, ingest queues and search domain are
   * encrypted with it, and its functions and tenant sessions may use it.
   * @default - AWS-managed keys (the pool)
   */
  readonly encryptionKey?: IKey;
  /**
   * A silo plane's one tenant: its authorizer and functions serve no other, and its tenant sessions
   * may carry no other tenant's tag.
   * @default - the pool: every pooled tenant
   */
  readonly siloTenantId?: string;
  /**
   * What deleting the stack does to the tables and the search domain: kept (the default), or, for
   * a silo being decommissioned after its data was purged, deleted with it.
   * @default RemovalPolicy.RETAIN
   */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /**
   * DynamoDB deletion protection on the tables (a silo's).
   * @default false
   */
  readonly deletionProtection?: boolean;
  /**
   * Concurrency reserved for each tenant-route function: a silo's capacity, kept for it and capped.
   * @default - the account's unreserved pool (the pool)
   */
  readonly reservedConcurrency?: number;
  /**
   * The pool's pipeline that moves tenants onto silo stacks; a silo has none.
   * @default - no pipeline
   */
  readonly placementPipeline?: Pick<
    PlacementPipelineProps,
    'poolStackName' | 'deployContext' | 'siloRegions' | 'source'
  >;
}

/** A name prefix for the tenants' inference profiles of a stack: Bedrock's name rules, at most 20 characters. */
function inferenceProfilePrefix(stackName: string): string {
  return stackName.replace(/[^0-9a-zA-Z_-]/g, '-').slice(0, 20);
}

/** The plane's stores, and the role tenant sessions reach them through. */
interface PlaneStores {
  readonly tenants: PlatformTable;
  readonly ledger: PlatformTable;
  readonly audit: PlatformTable;
  readonly documents: PlatformTable;
  readonly search: VectorSearch;
  readonly vectors: VectorBucket;
  readonly files: FilesBucket;
  readonly tenantAccess: TenantAccessRole;
}

/** The plane's workflows: offboarding always, placement in the pool only. */
interface PlaneWorkflows {
  readonly offboarding: OffboardingWorkflow;
  readonly placement?: PlacementPipeline;
}

/**
 * The data and serving plane: the tenant API with its authorizer and functions, the tables, the
 * vector search domain, the ingest queue and the offboarding workflow. The pool stack holds one;
 * give it the id `Default` to keep its resources' logical ids those of the stack itself.
 *
 * The constructor adds the parts in a fixed order: the template lists resources, and each role's
 * policy its statements, in the order they were added.
 */
export class TenantPlane extends Construct {
  public readonly api: TenantApi;

  constructor(scope: Construct, id: string, props: TenantPlaneProps) {
    super(scope, id);
    const { config, encryptionKey } = props;
    if (config.reservationTtlSeconds <= LONGEST_HANDLER_TIMEOUT_SECONDS) {
      throw new Error(
        `reservationTtlSeconds must exceed the longest handler timeout (${LONGEST_HANDLER_TIMEOUT_SECONDS} s)`,
      );
    }
    const stores = this.addStores(props);
    const { models, guardrails } = this.addModelAccess(config, stores.tenantAccess);
    const ingest = new IngestPipeline(this, 'Ingest', { encryptionKey });
    // The GPU endpoint only when configured: a first deploy starts no GPU.
    const adapterEndpoint =
      config.adapters &&
      new AdapterEndpoint(this, 'Adapters', {
        config: config.adapters,
        endpointName: `${Stack.of(this).stackName.slice(0, 50)}-adapters`,
        encryptionKey,
      });
    const environment = this.functionEnvironment(props, stores, { ingest, guardrails, adapterEndpoint });
    // The role Bedrock runs batches' jobs as: only the worker, which starts them, is told it, and it
    // verifies no tokens (Lambda's 4 KB environment holds the one, not the JWT settings beside it).
    const batchInference = new BatchInference(this, 'BatchInference', { files: stores.files, models });
    const workerEnvironment = this.functionEnvironment(
      props,
      stores,
      { ingest, guardrails, adapterEndpoint },
      { jwt: undefined, batchInferenceRoleArn: batchInference.serviceRole.roleArn },
    );
    const { api, authorizer, ingestWorker } = this.addFunctions(props, stores, {
      models,
      ingest,
      environment,
      workerEnvironment,
    });
    this.api = api;
    const workflows = this.addWorkflows(props, stores, environment, { ingest, adapterEndpoint });
    this.grantModelUse(config, models, guardrails, workflows, ingestWorker);
    batchInference.grantRunJobs(ingestWorker);
    if (adapterEndpoint) {
      this.addAdapterWorkflow(config, adapterEndpoint, stores, environment, workflows, ingestWorker);
    }
    const budgets = this.addOperations(props, stores, { ingest, authorizer, ingestWorker, workflows, environment });
    this.addResourcesOutput(stores, ingest, adapterEndpoint);
    if (encryptionKey) {
      this.grantTableKey(encryptionKey, [
        stores.tenantAccess.role,
        authorizer.function,
        this.api.handlers.admin,
        workflows.offboarding.stepFunction,
        budgets.function,
      ]);
      this.suppressQueueKeyFindings([this.api.handlers.documents, ingestWorker]);
    }
    this.suppressAcceptedFindings(props.webAclArn !== undefined);
    this.suppressStoreFindings(stores, config.legacySharedIndex);
  }

  /** The tables, the vector search domain and bucket, and the role tenant sessions use on them. */
  private addStores(props: TenantPlaneProps): PlaneStores {
    const { config, encryptionKey, deletionProtection } = props;
    const removalPolicy = props.dataRemovalPolicy;
    const stores = { encryptionKey, removalPolicy, deletionProtection };
    // Expiring: budget alert marks (see DynamoDbBudgetAlertMarks) leave after their month.
    const tenants = new PlatformTable(this, 'TenantRegistry', stores);
    const ledger = new PlatformTable(this, 'UsageLedger', stores);
    const audit = new PlatformTable(this, 'AuditLog', {
      localSecondaryIndexes: [AUDIT_BY_REQUEST_INDEX],
      ...stores,
    });
    const documents = new PlatformTable(this, 'Documents', stores);
    const search = new VectorSearch(this, 'VectorSearch', { sizing: config.search, encryptionKey, removalPolicy });
    const vectors = new VectorBucket(this, 'Vectors', { encryptionKey, removalPolicy });
    const files = new FilesBucket(this, 'Files', { encryptionKey, removalPolicy });
    const tenantAccess = new TenantAccessRole(this, 'TenantAccess', {
      tenantTables: [ledger, audit, documents],
      // Its own record and adapters, never writable by a tenant session.
      readableTables: [tenants],
      search: { domain: search, sharedIndex: config.legacySharedIndex ? SHARED_INDEX : undefined },
      vectors,
      files,
      onlyTenant: props.siloTenantId,
    });
    return { tenants, ledger, audit, documents, search, vectors, files, tenantAccess };
  }

  /** The model catalog (with the tenants' inference profiles, when on) and each tier's guardrail. */
  private addModelAccess(config: PlatformConfig, tenantAccess: TenantAccessRole) {
    const models = new ModelGateway(this, 'Models', {
      catalog: config.models,
      tenantInferenceProfiles: config.tenantInferenceProfiles,
    });
    models.grantTenantProfiles(tenantAccess.role);
    const guardrails = new TierGuardrails(this, 'Guardrails', { policies: config.guardrails });
    return { models, guardrails };
  }

  /** A workflow's state machine name: the functions' settings name it before the workflow exists. */
  private stateMachineName(workflow: 'offboarding' | 'adapters'): string {
    return `${Stack.of(this).stackName}-${workflow}`;
  }

  /** The settings every function of the plane reads from its environment. */
  private functionEnvironment(
    props: TenantPlaneProps,
    stores: PlaneStores,
    parts: { ingest: IngestPipeline; guardrails: TierGuardrails; adapterEndpoint?: AdapterEndpoint },
    /** Settings of one function's own, over the plane's. */
    own: Partial<PlatformSettings> = {},
  ): Record<string, string> {
    const { config } = props;
    const { tenants, ledger, audit, documents, search, vectors, files, tenantAccess } = stores;
    const { adapterEndpoint } = parts;
    return lambdaEnvironment({
      tenantTableName: tenants.table.tableName,
      ledgerTableName: ledger.table.tableName,
      auditTableName: audit.table.tableName,
      auditRetentionDays: config.auditRetentionDays,
      storedResponseDays: config.storedResponseDays,
      reservationTtlSeconds: config.reservationTtlSeconds,
      tenantAccessRoleArn: tenantAccess.role.roleArn,
      documentTableName: documents.table.tableName,
      ingestQueueUrl: parts.ingest.queue.queueUrl,
      opensearchEndpoint: search.endpoint,
      vectorBucketName: vectors.bucketName,
      filesBucketName: files.bucket.bucketName,
      retrieval: config.retrieval,
      catalog: config.models,
      tiers: config.tiers,
      piiRedaction: config.piiRedaction,
      routing: config.routing,
      cacheHitNanoUsd: config.cacheHitNanoUsd,
      guardrails: parts.guardrails.refs,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      offboardingDrainSeconds: offboardingDrainSeconds(config),
      authorizerCacheTtlSeconds: config.authorizerCacheTtlSeconds,
      offboardingStateMachineArn: stateMachineArn(this, this.stateMachineName('offboarding')),
      jwt: config.jwt,
      siloTenantId: props.siloTenantId,
      siloRegions: props.placementPipeline?.siloRegions,
      adapterEndpoint: adapterEndpoint?.settings,
      adapterWorkflowStateMachineArn: adapterEndpoint && stateMachineArn(this, this.stateMachineName('adapters')),
      tenantInferenceProfiles: config.tenantInferenceProfiles
        ? { namePrefix: inferenceProfilePrefix(Stack.of(this).stackName) }
        : undefined,
      ...own,
    });
  }

  /** The tenant API with its authorizer and route functions, and the ingest queue's worker. */
  private addFunctions(
    props: TenantPlaneProps,
    stores: PlaneStores,
    parts: {
      models: ModelGateway;
      ingest: IngestPipeline;
      environment: Record<string, string>;
      workerEnvironment: Record<string, string>;
    },
  ) {
    const { config } = props;
    const { models, ingest, environment } = parts;
    const authorizer = new TenantAuthorizer(this, 'TenantAuthorizer', {
      tenantTable: stores.tenants.table,
      environment,
      resultsCacheTtl: Duration.seconds(config.authorizerCacheTtlSeconds),
      logRetention: config.logRetentionDays,
    });
    const api = new TenantApi(this, 'TenantApi', {
      authorizer: authorizer.authorizer,
      anthropicAuthorizer: authorizer.anthropicAuthorizer,
      tenantTable: stores.tenants.table,
      ledgerTable: stores.ledger.table,
      tenantAccess: stores.tenantAccess,
      models,
      ingest,
      environment,
      webAclArn: props.webAclArn,
      logRetention: config.logRetentionDays,
      reservedConcurrency: props.reservedConcurrency,
      tenantIsolation: config.lambdaTenantIsolation,
    });
    const logRetention = config.logRetentionDays;
    const ingestWorker = ingest.addWorker({
      environment: parts.workerEnvironment,
      tenantAccess: stores.tenantAccess,
      models,
      logRetention,
    });
    return { api, authorizer, ingestWorker };
  }

  /** The placement pipeline (the pool's) and the offboarding workflow, which the admin function starts. */
  private addWorkflows(
    props: TenantPlaneProps,
    stores: PlaneStores,
    environment: Record<string, string>,
    parts: { ingest: IngestPipeline; adapterEndpoint?: AdapterEndpoint },
  ) {
    const { config } = props;
    const placement =
      props.placementPipeline &&
      new PlacementPipeline(this, 'Placement', {
        ...props.placementPipeline,
        tenantTable: stores.tenants.table,
        tenantAccess: stores.tenantAccess,
        environment,
        admin: this.api.handlers.admin,
        poolApiUrl: this.api.baseUrl(),
        poolIngestQueueArn: parts.ingest.queue.queueArn,
        poolAdapterEndpointName: parts.adapterEndpoint?.endpointName,
        logRetention: config.logRetentionDays,
      });
    const offboarding = new OffboardingWorkflow(this, 'Offboarding', {
      stateMachineName: this.stateMachineName('offboarding'),
      siloDecommission: placement?.project,
      tenantTable: stores.tenants.table,
      tenantAccess: stores.tenantAccess,
      environment,
      logRetention: config.logRetentionDays,
    });
    offboarding.grantStart(this.api.handlers.admin);
    return { placement, offboarding };
  }

  /**
   * Tenants' inference profiles, created on onboarding and deleted on offboarding (and by a move's
   * cleanup, once its silo calls profiles of its own region); the chat function's guardrails.
   */
  private grantModelUse(
    config: PlatformConfig,
    models: ModelGateway,
    guardrails: TierGuardrails,
    { offboarding, placement }: PlaneWorkflows,
    /** Runs batches' lines through the chat core: the same models, routes and guardrails as the chat function. */
    batchRunner: LambdaFunction,
  ): void {
    if (config.tenantInferenceProfiles) {
      models.grantCreateProfiles(this.api.handlers.admin);
      models.grantDeleteProfiles(offboarding.stepFunction);
      if (placement) models.grantDeleteProfiles(placement.stepFunction);
    }
    guardrails.grantApply(this.api.handlers['chat-completions']);
    guardrails.grantApply(batchRunner);
    models.grantCrossRegionInvoke(batchRunner);
  }

  /** The workflow that loads a tenant's adapter onto the GPU endpoint, and who may use or manage adapters. */
  private addAdapterWorkflow(
    config: PlatformConfig,
    endpoint: AdapterEndpoint,
    stores: PlaneStores,
    environment: Record<string, string>,
    { offboarding, placement }: PlaneWorkflows,
    batchRunner: LambdaFunction,
  ): void {
    const adapterWorkflow = new AdapterWorkflow(this, 'AdapterWorkflow', {
      stateMachineName: this.stateMachineName('adapters'),
      tenantTable: stores.tenants.table,
      endpoint,
      environment,
      logRetention: config.logRetentionDays,
    });
    endpoint.grantInvoke(this.api.handlers['chat-completions']);
    endpoint.grantInvoke(batchRunner);
    endpoint.grantManageAdapters(this.api.handlers.admin);
    endpoint.grantManageAdapters(offboarding.stepFunction);
    // A tenant moved to its silo leaves its adapters here: the cleanup unloads them.
    if (placement) endpoint.grantManageAdapters(placement.stepFunction);
    adapterWorkflow.grantStart(this.api.handlers.admin);
  }

  /** Alarms, budget alerts, the dashboard and, when configured, the usage console. */
  private addOperations(
    props: TenantPlaneProps,
    stores: PlaneStores,
    parts: {
      ingest: IngestPipeline;
      authorizer: TenantAuthorizer;
      ingestWorker: LambdaFunction;
      workflows: PlaneWorkflows;
      environment: Record<string, string>;
    },
  ): BudgetAlerts {
    const { config } = props;
    const { authorizer, ingestWorker, workflows } = parts;
    const { offboarding, placement } = workflows;
    const handlers = this.api.handlers;
    const alarms = new PlaneAlarms(this, 'Alarms', {
      api: this.api.api,
      authorizer: authorizer.function,
      functions: [authorizer.function, ...Object.values(handlers), ingestWorker, offboarding.stepFunction],
      ledgerTable: stores.ledger.table,
      searchDomain: stores.search.domain,
      deadLetterQueue: parts.ingest.deadLetterQueue,
      workflows: [offboarding.stateMachine, ...(placement ? [placement.stateMachine] : [])],
      encryptionKey: props.encryptionKey,
    });
    const budgets = new BudgetAlerts(this, 'Budgets', {
      ledgerTable: stores.ledger.table,
      tenantTable: stores.tenants.table,
      topic: alarms.topic,
      plane: props.siloTenantId ?? POOL_PLANE,
      environment: parts.environment,
      logRetention: config.logRetentionDays,
    });
    new PlaneDashboard(this, 'Dashboard', {
      tiers: Object.keys(config.tiers) as Tier[],
      api: this.api.api,
      modelFunctions: [
        handlers['chat-completions'],
        handlers.embeddings,
        handlers.documents,
        handlers.retrieve,
        ingestWorker,
      ],
      alarms: alarms.alarms,
    });
    if (config.usageConsole) new UsageConsole(this, 'Console', { api: this.api.api, ...config.usageConsole });
    return budgets;
  }

  /** Where this plane's stores are, as a stack output: what the placement pipeline copies a tenant into. */
  private addResourcesOutput(stores: PlaneStores, ingest: IngestPipeline, adapterEndpoint?: AdapterEndpoint): void {
    const stack = Stack.of(this);
    const resources: Omit<PlaneResources, 'apiUrl'> & { apiUrl: string } = {
      region: stack.region,
      apiUrl: this.api.baseUrl(),
      tenantTableName: stores.tenants.table.tableName,
      ledgerTableName: stores.ledger.table.tableName,
      auditTableName: stores.audit.table.tableName,
      documentTableName: stores.documents.table.tableName,
      opensearchEndpoint: stores.search.endpoint,
      vectorBucketName: stores.vectors.bucketName,
      filesBucketName: stores.files.bucket.bucketName,
      ingestQueueUrl: ingest.queue.queueUrl,
      // A move loads the tenant's adapters here (`loadAdaptersAt`).
      ...(adapterEndpoint && { adapterEndpoint: adapterEndpoint.settings }),
    };
    new CfnOutput(this, PLANE_RESOURCES_OUTPUT, {
      value: stack.toJsonString(resources),
      description: "Where this plane's stores are: what the placement pipeline copies a tenant into",
    });
  }

  /** cdk-nag findings on the search domain and the tenant role that this design accepts, with their reasons. */
  private suppressStoreFindings(stores: PlaneStores, legacySharedIndex: boolean): void {
    NagSuppressions.addResourceSuppressions(stores.search.domain, [
      {
        id: 'AwsSolutions-OS1',
        reason:
          'Reached only by SigV4-signed HTTPS requests of TenantAccessRole sessions from Lambda functions outside a VPC; placing domain and functions in a VPC is a deployment option still to add.',
      },
      {
        id: 'AwsSolutions-OS3',
        reason:
          'Access is by IAM identity only (SigV4, index-scoped per tenant); callers are Lambda functions without fixed IP addresses.',
      },
    ]);
    NagSuppressions.addResourceSuppressions(
      stores.tenantAccess.role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Document paths inside one index (`<index>/_search`, `_bulk`, `_doc/...`): the index itself is the tenant own t-<tenantId> or the shared one of old, where the adapter filters by tenant.',
          appliesTo: [
            'Resource::<VectorSearchDomain89BE157D.Arn>/t-<aws:PrincipalTag/tenantId>/*',
            ...(legacySharedIndex ? [`Resource::<VectorSearchDomain89BE157D.Arn>/${SHARED_INDEX}/*`] : []),
          ],
        },
      ],
      true,
    );
  }

  /**
   * The tables' key, for the tenant sessions and the functions that use the registry and ledger
   * themselves: the actions DynamoDB asks of a caller for a customer-managed key, named one by one.
   */
  private grantTableKey(key: IKey, grantees: readonly IGrantable[]): void {
    for (const grantee of grantees) {
      key.grant(
        grantee,
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKey',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
      );
    }
  }

  /**
   * The documents function and the ingest worker (which queues a suspended tenant's jobs again)
   * send to a KMS-encrypted queue: CDK's grant for it names key action families.
   */
  private suppressQueueKeyFindings(senders: readonly LambdaFunction[]): void {
    for (const sender of senders) {
      if (!sender.role) throw new Error(`${sender.node.path} has no role`);
      NagSuppressions.addResourceSuppressions(
        sender.role,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "Sending to the tenant's KMS-encrypted ingest queue: CDK's SQS grant names the key's GenerateDataKey* and ReEncrypt* families, on this one key.",
            appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
          },
        ],
        true,
      );
    }
  }

  /** cdk-nag findings this design accepts, each on its own resource, each with its reason. */
  private suppressAcceptedFindings(hasWebAcl: boolean): void {
    const api = this.api.api;
    NagSuppressions.addResourceSuppressions(
      api,
      [
        {
          id: 'AwsSolutions-APIG2',
          reason:
            "Bodies are validated by the handlers' schemas so that their errors keep the platform's shape; a missing Authorization header is the authorizer's 401.",
        },
        {
          id: 'AwsSolutions-COG4',
          reason:
            'Tenant routes use the tenant REQUEST authorizer (JWT via aws-jwt-verify or tenant API key); admin routes use IAM. A Cognito authorizer cannot check API keys or tenant status.',
        },
        ...(hasWebAcl
          ? []
          : [
              {
                id: 'AwsSolutions-APIG3',
                reason: 'WAF is optional by configuration (webAclArn context); this deployment did not ask for it.',
              },
            ]),
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      api,
      [
        {
          id: 'AwsSolutions-IAM4',
          reason:
            'The API Gateway account role needs AmazonAPIGatewayPushToCloudWatchLogs, the AWS-documented policy for execution and access logging.',
          appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs'],
        },
      ],
      true,
    );
  }
}
