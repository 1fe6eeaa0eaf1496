import * as path from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { BuildSpec, ComputeType, LinuxArmBuildImage, Project, Source } from 'aws-cdk-lib/aws-codebuild';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, type IEventBus, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import { ArnPrincipal, type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { PLACEMENT_EVENTS } from '../../contract/events';
import {
  ITEM_ACCESS_ACTIONS,
  OPENSEARCH_INDEX_ACTIONS,
  S3VECTORS_INDEX_ACTIONS,
  TENANT_SESSION_TAG,
  tenantLeadingKeyPatterns,
} from '../../contract/iam';
import { TENANT_INDEX_PREFIX } from '../../contract/search';
import { TENANT_COST_TAG } from '../../contract/tenancy';
import { PLACEMENT_WORKFLOW, RETURN_WORKFLOW } from '../../contract/workflows';
import type { TenantAccessRole } from './tenant-access-role';
import { standardWorkflow, workflowDefinition, workflowSteps } from './workflow';

/** The AWS profile the build's commands run under: its `credential_process` is `migrate-tenant session`. */
const TENANT_RUN_PROFILE = 'tenant-run';
/** A decommission waits for a silo stack in any `*_IN_PROGRESS` state (a deploy its offboarding ended) this many times... */
const SETTLE_CHECKS = 120;
/** ...this long each: an hour, what a silo's deploy (its search domain) may take. */
const SETTLE_CHECK_SECONDS = 30;
/** The CDK bootstrap's default qualifier, in the names of the roles `cdk deploy` assumes. */
const CDK_BOOTSTRAP_QUALIFIER = 'hnb659fds';

export interface PlacementPipelineProps {
  /** The pool stack's name: silo stacks are `<poolStackName>-silo-<tenantId>`. */
  readonly poolStackName: string;
  /** The pool's registry: the steps report on the tenant record (the copy reaches it through its tenant session). */
  readonly tenantTable: ITable;
  /** The pool's copy of the tenant's data is deleted through sessions of this role only. */
  readonly tenantAccess: TenantAccessRole;
  /** Environment of the runtime composition root (the migration reads the pool's resources from it too). */
  readonly environment: Readonly<Record<string, string>>;
  /** The admin function, which announces a requested move. */
  readonly admin: IFunction;
  /** The pool's API base URL: where a silo forwards the calls of a tenant returned to the pool. */
  readonly poolApiUrl: string;
  /**
   * The pool's GPU endpoint, when it has one: a return loads the tenant's adapters on it.
   * @default - none
   */
  readonly poolAdapterEndpointName?: string;
  /** The pool's ingest queue: a return queues there the jobs its silo had not done. */
  readonly poolIngestQueueArn: string;
  /** Context the silo's `cdk deploy` gets on top of the source's `cdk.json` (sizes, regions, identity provider). */
  readonly deployContext: Readonly<Record<string, string>>;
  /**
   * Regions silos may live in besides the pool's (`silo.<tenantId>.region`): the builds may assume
   * the CDK bootstrap roles of these regions and the pool's, and no other.
   * @default - the pool's region only
   */
  readonly siloRegions?: readonly string[];
  /**
   * The CDK app the pipeline deploys silos from.
   * @default - this project's directory, as an S3 asset: silos are built from the code the pool was deployed from
   */
  readonly source?: Source;
  /**
   * Where the events go: the requested move (which starts the state machine) and its outcome.
   * @default - the account's default event bus
   */
  readonly eventBus?: IEventBus;
  /**
   * How long the step function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The pool's pipeline that moves a tenant onto a silo stack of its own. A `TenantPlacementRequested`
 * event (from the admin API) starts a Step Functions standard workflow: mark the move `deploying`;
 * CodeBuild runs `cdk deploy <pool>-silo-<tenant>` with that tenant's context; CodeBuild copies the
 * tenant's data into the silo while the pool serves it; switch the registry record to the silo (the
 * pool forwards the tenant's calls there); wait out cached credentials and calls in flight; CodeBuild
 * catches the silo up with what they wrote; delete the pool's copy; announce the outcome. A failure
 * before the switch leaves the tenant served from the pool.
 */
export class PlacementPipeline extends Construct {
  public readonly stateMachine: StateMachine;
  /** A silo tenant's return to the pool (`RETURN_WORKFLOW`). */
  public readonly returnStateMachine: StateMachine;
  public readonly project: Project;
  public readonly stepFunction: IFunction;
  /** What each build runs as, through a session tagged with its one tenant (see `tenantRunRoleOf`). */
  public readonly tenantRunRole: IRole;

  constructor(scope: Construct, id: string, props: PlacementPipelineProps) {
    super(scope, id);
    this.stepFunction = workflowSteps(this, { ...props, handlerName: 'placement' });
    const buildRole = new Role(this, 'BuildRole', { assumedBy: new ServicePrincipal('codebuild.amazonaws.com') });
    this.tenantRunRole = this.tenantRunRoleOf(buildRole, props);
    this.project = this.buildProject(props, buildRole);
    const eventBus = props.eventBus ?? EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    eventBus.grantPutEventsTo(props.admin);

    // The steps, in the order `contract/workflows.ts` lists them (the local runner walks the same list).
    const projects = { migrate: this.project, switch: this.project, 'catch-up': this.project };
    const definition = workflowDefinition(this, PLACEMENT_WORKFLOW, {
      stepFunction: this.stepFunction,
      projects: { ...projects, deploy: this.project },
      eventBus,
    });
    // A stack deploy (a search domain takes up to an hour), the copy, the drain, the catch-up, retries.
    this.stateMachine = standardWorkflow(this, { definition, timeout: Duration.hours(6) });
    // A return to the pool: its states in a scope of their own (their names are the promotion's too).
    const returns = new Construct(this, 'Return');
    const returnDefinition = workflowDefinition(returns, RETURN_WORKFLOW, {
      stepFunction: this.stepFunction,
      projects: { ...projects, flip: this.project, decommission: this.project },
      eventBus,
    });
    this.returnStateMachine = standardWorkflow(returns, { definition: returnDefinition, timeout: Duration.hours(6) });
    for (const [id, to, stateMachine] of [
      ['OnRequested', 'silo', this.stateMachine],
      ['OnReturnRequested', 'pool', this.returnStateMachine],
    ] as const) {
      new Rule(this, id, {
        eventBus,
        eventPattern: {
          source: [PLACEMENT_EVENTS.source],
          detailType: [PLACEMENT_EVENTS.requested],
          detail: { to: [to] },
        },
        targets: [new SfnStateMachine(stateMachine, { input: RuleTargetInput.fromEventPath('$.detail') })],
      });
    }
    this.suppressAcceptedFindings();
  }

  /**
   * One CodeBuild project, its phases. `deploy`: `cdk deploy` of the tenant's silo stack through the
   * CDK bootstrap roles, exporting the silo's URL. `migrate` and `catch-up`: the copy and the catch-up
   * of `bin/migrate-tenant.ts`, as the tenant's session. `decommission`: offboarding a silo tenant.
   */
  private buildProject(props: PlacementPipelineProps, role: IRole): Project {
    const source =
      props.source ??
      Source.s3({
        ...(() => {
          const asset = new Asset(this, 'AppSource', {
            path: path.join(__dirname, '../..'),
            exclude: ['node_modules', 'cdk.out', '.local', '.git', 'coverage', '*.log'],
          });
          return { bucket: asset.bucket, path: asset.s3ObjectKey };
        })(),
      });
    const siloStack = `${props.poolStackName}-silo-$TENANT_ID`;
    // The silo's stack in its region (`migrate-tenant silo-region`: where it was deployed, else the
    // region its move asked for, else its configured one, else the pool's).
    const inRegion = '-c siloTenants="$TENANT_ID" -c "silo.$TENANT_ID.region=$SILO_REGION"';
    const decommissioned = `${inRegion} -c "silo.$TENANT_ID.decommission=true"`;
    // The stack's status, `NONE` when it does not exist, empty (the error kept) when it could not be read.
    const stackStatus = `SILO_STACK_STATUS=$(aws cloudformation describe-stacks --region "$SILO_REGION" --stack-name "${siloStack}" --query 'Stacks[0].StackStatus' --output text 2>stack-status.err || { grep -q 'does not exist' stack-status.err && echo NONE; })`;
    const project = new Project(this, 'Build', {
      description: 'Deploys a tenant silo stack and copies the tenant into it',
      source,
      role,
      environment: { buildImage: LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0, computeType: ComputeType.MEDIUM },
      timeout: Duration.hours(2),
      environmentVariables: {
        ...Object.fromEntries(Object.entries(props.environment).map(([key, value]) => [key, { value }])),
        PLATFORM_CONTEXT: { value: Stack.of(this).toJsonString(props.deployContext) },
        // Where a silo forwards a returned tenant's calls.
        POOL_API_URL: { value: props.poolApiUrl },
        TENANT_RUN_ROLE_ARN: { value: this.tenantRunRole.roleArn },
      },
      buildSpec: BuildSpec.fromObject({
        version: '0.2',
        env: { 'exported-variables': ['SILO_API_URL', 'SILO_RESOURCES', 'DRAIN_UNTIL'] },
        phases: {
          install: { 'runtime-versions': { nodejs: 20 }, commands: ['npm ci'] },
          build: {
            commands: [
              // Every command below runs as a session of the run role tagged with this tenant, renewed as it expires.
              `mkdir -p ~/.aws && printf '[profile ${TENANT_RUN_PROFILE}]\\ncredential_process = env -u AWS_PROFILE npm run --silent --prefix %s migrate-tenant -- session\\n' "$CODEBUILD_SRC_DIR" > ~/.aws/config`,
              `export AWS_PROFILE=${TENANT_RUN_PROFILE}`,
              // The pool's context (sizes, regions, identity provider), then the one silo to build.
              'echo "$PLATFORM_CONTEXT" > cdk.context.json',
              'if [ "$PHASE" = deploy ] || [ "$PHASE" = decommission ]; then export SILO_REGION=$(npm run --silent migrate-tenant -- silo-region "$TENANT_ID"); fi',
              `if [ "$PHASE" = deploy ]; then npx cdk deploy "${siloStack}" ${inRegion} --require-approval never --outputs-file silo-outputs.json; fi`,
              'if [ "$PHASE" = deploy ]; then export SILO_API_URL=$(npm run --silent migrate-tenant -- silo-url silo-outputs.json); fi',
              'if [ "$PHASE" = deploy ]; then export SILO_RESOURCES=$(npm run --silent migrate-tenant -- silo-resources silo-outputs.json); fi',
              'if [ "$PHASE" = migrate ]; then npm run --silent migrate-tenant -- copy "$TENANT_ID"; fi',
              'if [ "$PHASE" = switch ]; then export DRAIN_UNTIL=$(npm run --silent migrate-tenant -- switch "$TENANT_ID"); fi',
              // A return's second switch: the silo forwards its tenant's calls to the pool from then on.
              'if [ "$PHASE" = flip ]; then export DRAIN_UNTIL=$(npm run --silent migrate-tenant -- flip "$TENANT_ID"); fi',
              'if [ "$PHASE" = catch-up ]; then npm run --silent migrate-tenant -- catch-up "$TENANT_ID"; fi',
              // Offboarding a silo tenant, at any moment of its move: once its stack has settled (a
              // deploy the offboarding ended may still run), its data first, then the stack, its
              // tables, domain and key with it; a move that never got a stack leaves nothing to do.
              'if [ "$PHASE" = suspend ]; then npm run --silent migrate-tenant -- suspend "$TENANT_ID"; fi',
              `if [ "$PHASE" = decommission ]; then for i in $(seq 1 ${SETTLE_CHECKS}); do ${stackStatus}; case "$SILO_STACK_STATUS" in *_IN_PROGRESS) echo "${siloStack} is $SILO_STACK_STATUS: waiting for it to settle"; sleep ${SETTLE_CHECK_SECONDS};; *) break;; esac; done; fi`,
              // Neither settled within the hour nor known (describe-stacks failed otherwise): the build fails, destroying nothing.
              'if [ "$PHASE" = decommission ]; then case "$SILO_STACK_STATUS" in ""|*_IN_PROGRESS) cat stack-status.err; false;; esac; fi',
              'if [ "$PHASE" = decommission ]; then npm run --silent migrate-tenant -- purge "$TENANT_ID"; fi',
              `if [ "$PHASE" = decommission ] && [ "$SILO_STACK_STATUS" = NONE ]; then echo "no stack ${siloStack}: nothing to decommission"; fi`,
              `if [ "$PHASE" = decommission ] && [ "$SILO_STACK_STATUS" != NONE ]; then npx cdk deploy "${siloStack}" ${decommissioned} --require-approval never; fi`,
              `if [ "$PHASE" = decommission ] && [ "$SILO_STACK_STATUS" != NONE ]; then npx cdk destroy "${siloStack}" ${decommissioned} --force; fi`,
            ],
          },
        },
      }),
    });
    return project;
  }

  /**
   * The build's own role may do one thing: assume the run role with a session tagged with the one
   * tenant it works for. That session assumes the CDK bootstrap roles of the silo regions (the
   * deploy) and reaches data only where a policy names its tenant: the tenant's partitions of any
   * table (`dynamodb:LeadingKeys`), resources tagged with it (a silo's tables, key, queue, adapter
   * components, the tenant's inference profiles) and its own vector and search indexes.
   */
  private tenantRunRoleOf(buildRole: IRole, props: PlacementPipelineProps): IRole {
    const { poolStackName, siloRegions = [] } = props;
    const { account, region, partition } = Stack.of(this);
    const tenant = `\${aws:PrincipalTag/${TENANT_SESSION_TAG}}`;
    const ownTagged = { StringEquals: { [`aws:ResourceTag/${TENANT_COST_TAG}`]: tenant } };
    const arn = (service: string, resource: string) => `arn:${partition}:${service}:*:${account}:${resource}`;
    const run = new Role(this, 'TenantRunRole', {
      description: 'A placement build for one tenant: sessions reach only the data and silo of their tenantId tag',
      assumedBy: new ArnPrincipal(buildRole.roleArn),
    });
    run.assumeRolePolicy?.addStatements(
      new PolicyStatement({
        actions: ['sts:TagSession'],
        principals: [new ArnPrincipal(buildRole.roleArn)],
        conditions: {
          StringLike: { [`aws:RequestTag/${TENANT_SESSION_TAG}`]: '?*' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [TENANT_SESSION_TAG] },
        },
      }),
    );
    buildRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['sts:AssumeRole', 'sts:TagSession'], resources: [run.roleArn] }),
    );
    const statements = [
      // `cdk deploy` / `cdk destroy` of the silo stack, through the default bootstrap's roles there.
      new PolicyStatement({
        actions: ['sts:AssumeRole'],
        resources: [...new Set([region, ...siloRegions])].map(
          (r) => `arn:${partition}:iam::${account}:role/cdk-${CDK_BOOTSTRAP_QUALIFIER}-*-${account}-${r}`,
        ),
      }),
      // The decommission reads whether its tenant's silo stack exists and has settled.
      new PolicyStatement({
        actions: ['cloudformation:DescribeStacks'],
        resources: [arn('cloudformation', `stack/${poolStackName}-silo-${tenant}/*`)],
      }),
      new PolicyStatement({
        actions: [...ITEM_ACCESS_ACTIONS],
        resources: [arn('dynamodb', 'table/*')],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': tenantLeadingKeyPatterns(tenant) } },
      }),
      // A silo's tables are its tenant's whole (its registry's key records included).
      new PolicyStatement({
        actions: [...ITEM_ACCESS_ACTIONS],
        resources: [arn('dynamodb', 'table/*')],
        conditions: ownTagged,
      }),
      new PolicyStatement({
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
        resources: [arn('kms', 'key/*')],
        conditions: ownTagged,
      }),
      new PolicyStatement({
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
        resources: [arn('sqs', '*')],
        conditions: ownTagged,
      }),
      new PolicyStatement({
        actions: S3VECTORS_INDEX_ACTIONS.map((action) => `s3vectors:${action}`),
        resources: [arn('s3vectors', `bucket/*/index/${TENANT_INDEX_PREFIX}${tenant}`)],
      }),
      // The tenant's prefix of a files bucket of the account (a silo's is purged before its stack goes).
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [`arn:${partition}:s3:::*`],
        conditions: { StringLike: { 's3:prefix': `${tenant}/*` }, StringEquals: { 's3:ResourceAccount': account } },
      }),
      // A move copies the tenant's files from one plane's bucket to the other's (and deletes the old copy).
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: [`arn:${partition}:s3:::*/${tenant}/*`],
        conditions: { StringEquals: { 's3:ResourceAccount': account } },
      }),
      // Either bucket's key, only through S3 and only for objects under the tenant's prefix.
      new PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [arn('kms', 'key/*')],
        conditions: {
          StringLike: {
            'kms:ViaService': `s3.*.${Stack.of(this).urlSuffix}`,
            'kms:EncryptionContext:aws:s3:arn': `arn:${partition}:s3:::*/${tenant}/*`,
          },
        },
      }),
      new PolicyStatement({
        actions: [...OPENSEARCH_INDEX_ACTIONS],
        resources: [
          arn('es', `domain/*/${TENANT_INDEX_PREFIX}${tenant}`),
          arn('es', `domain/*/${TENANT_INDEX_PREFIX}${tenant}/*`),
        ],
      }),
      // A move loads the tenant's adapters on its silo's endpoint (tagged with the tenant), each
      // component created with the tenant's tag; offboarding a silo tenant deletes them before its endpoint goes.
      new PolicyStatement({
        actions: ['sagemaker:CreateInferenceComponent', 'sagemaker:AddTags'],
        resources: [arn('sagemaker', 'inference-component/*')],
        conditions: { StringEquals: { [`aws:RequestTag/${TENANT_COST_TAG}`]: tenant } },
      }),
      new PolicyStatement({
        actions: ['sagemaker:CreateInferenceComponent'],
        resources: [arn('sagemaker', 'endpoint/*')],
        conditions: ownTagged,
      }),
      new PolicyStatement({
        actions: ['sagemaker:DescribeInferenceComponent', 'sagemaker:DeleteInferenceComponent'],
        resources: [arn('sagemaker', 'inference-component/*')],
        conditions: ownTagged,
      }),
      new PolicyStatement({
        actions: ['bedrock:DeleteInferenceProfile'],
        resources: [arn('bedrock', 'application-inference-profile/*')],
        conditions: ownTagged,
      }),
      // A move to a silo in another region makes the tenant's inference profiles there, each
      // copied from a foundation model and carrying the tenant's tag (a retry lists them to find its own).
      new PolicyStatement({
        actions: ['bedrock:CreateInferenceProfile', 'bedrock:TagResource'],
        resources: [
          arn('bedrock', 'application-inference-profile/*'),
          `arn:${partition}:bedrock:*::foundation-model/*`,
        ],
        conditions: { StringEquals: { [`aws:RequestTag/${TENANT_COST_TAG}`]: tenant } },
      }),
      new PolicyStatement({ actions: ['bedrock:ListInferenceProfiles'], resources: ['*'] }),
      // A return to the pool queues the jobs its silo had not done on the pool's queue (the worker
      // runs a job only where the tenant's session finds its item), and loads the tenant's adapters
      // on the pool's endpoint, each component with the tenant's tag (above).
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.poolIngestQueueArn] }),
      ...(props.poolAdapterEndpointName
        ? [
            new PolicyStatement({
              actions: ['sagemaker:CreateInferenceComponent'],
              resources: [
                `arn:${partition}:sagemaker:${region}:${account}:endpoint/${props.poolAdapterEndpointName.toLowerCase()}`,
              ],
            }),
          ]
        : []),
    ];
    for (const statement of statements) run.addToPolicy(statement);
    return run;
  }

  /** The findings this design accepts, on this construct's own resources, each with its reason. */
  private suppressAcceptedFindings(): void {
    NagSuppressions.addResourceSuppressions(
      [this.stateMachine.role, this.returnStateMachine.role],
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'LambdaInvoke grants the versions of the one step function it invokes (`<function ARN>:*`); the CodeBuild task needs the events rule Step Functions manages for `.sync` and Resource * for execution logging.',
        },
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      [this.project, ...(this.project.role ? [this.project.role] : [])],
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "The build's own role may only assume the tenant run role; the wildcards are CodeBuild's own: its log group's streams, its report groups, and the source asset's objects.",
        },
        {
          id: 'AwsSolutions-CB4',
          reason:
            'Build artifacts are not produced; the source asset is in the CDK bootstrap bucket, encrypted there. The build environment holds no tenant data at rest.',
        },
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      this.tenantRunRole,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "Sessions of this role carry one tenantId tag: every data statement names that tenant (its DynamoDB partitions by dynamodb:LeadingKeys, resources tagged with it, its own t-<tenantId> indexes) in any table, bucket or domain of the account, since the silo's are created by the build; the bootstrap roles are the default qualifier's of the pool's and the silos' regions.",
        },
      ],
      true,
    );
  }
}
