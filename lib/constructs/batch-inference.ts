import { Stack } from 'aws-cdk-lib';
import { type IGrantable, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { FilesBucket } from './files-bucket';
import type { ModelGateway } from './model-gateway';

export interface BatchInferenceProps {
  /** The plane's files bucket: a job reads its records and writes its output under its batch's `job/` of a tenant's prefix. */
  readonly files: FilesBucket;
  /** The catalog's models: jobs run those with batch prices. */
  readonly models: ModelGateway;
}

/** Bedrock's service principal: the one that assumes the service role, and the only one it is passed to. */
export const BEDROCK_PRINCIPAL = 'bedrock.amazonaws.com';

/** Where a batch's Bedrock job keeps its input and output, under any tenant's prefix (`<tenant>/parts/<batch>/job/`). */
const JOB_OBJECTS = '*/parts/*/job/';

/**
 * Bedrock batch inference for the plane's batches: the service role Bedrock runs their jobs as
 * (reading a job's records and writing its output under the batch's `job/` of its tenant's prefix,
 * nothing else of the bucket, and only for this account's jobs in this region), and what the batch
 * runner may do with jobs.
 */
export class BatchInference extends Construct {
  /** The role Bedrock assumes to run a job: passed by the runner, never assumed by a function. */
  public readonly serviceRole: Role;
  private readonly props: BatchInferenceProps;

  constructor(scope: Construct, id: string, props: BatchInferenceProps) {
    super(scope, id);
    this.props = props;
    const stack = Stack.of(this);
    const { bucket, encryptionKey } = props.files;
    this.serviceRole = new Role(this, 'ServiceRole', {
      description: "Bedrock batch inference jobs of the plane's batches: their records and output only",
      assumedBy: new ServicePrincipal(BEDROCK_PRINCIPAL, {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': this.jobArns() },
        },
      }),
    });
    this.serviceRole.addToPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${JOB_OBJECTS}input.jsonl`)],
      }),
    );
    this.serviceRole.addToPolicy(
      new PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${JOB_OBJECTS}output/*`)] }),
    );
    this.serviceRole.addToPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': JOB_OBJECTS } },
      }),
    );
    // The files key through S3 only, for the same objects.
    this.serviceRole.addToPolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [encryptionKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${stack.region}.${stack.urlSuffix}` },
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': bucket.arnForObjects(`${JOB_OBJECTS}*`) },
        },
      }),
    );
    const bucketArn = `<${stack.getLogicalId(bucket.node.defaultChild as CfnBucket)}.Arn>`;
    NagSuppressions.addResourceSuppressions(
      this.serviceRole,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "A batch's job reads its records and writes its output under that batch's job/ of its tenant's prefix: the tenant and batch are in the key, so the pattern names them by wildcard, and nothing else of the bucket.",
          appliesTo: [
            `Resource::${bucketArn}/${JOB_OBJECTS}input.jsonl`,
            `Resource::${bucketArn}/${JOB_OBJECTS}output/*`,
          ],
        },
      ],
      true,
    );
  }

  /**
   * Starting, reading and stopping jobs over the catalog's batch models (tagged with their tenant,
   * which creating them tags), passing the service role to Bedrock alone.
   */
  grantRunJobs(grantee: IGrantable): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['bedrock:CreateModelInvocationJob', 'bedrock:TagResource'],
        resources: [this.jobArns(), ...this.props.models.batchModelArns()],
      }),
    );
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['bedrock:GetModelInvocationJob', 'bedrock:StopModelInvocationJob'],
        resources: [this.jobArns()],
      }),
    );
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.serviceRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': BEDROCK_PRINCIPAL } },
      }),
    );
    if (principal instanceof Construct) {
      NagSuppressions.addResourceSuppressions(
        principal,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "Batch inference jobs are named by the batches they run, made at run time: this account's jobs in this region.",
            appliesTo: ['Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:model-invocation-job/*'],
          },
        ],
        true,
      );
    }
  }

  private jobArns(): string {
    const stack = Stack.of(this);
    return `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:model-invocation-job/*`;
  }
}
