import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, type CfnBucket, type IBucket } from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

export interface FilesBucketProps {
  /**
   * The key the files are encrypted with at rest (a silo's own).
   * @default - a new customer-managed KMS key, rotated yearly
   */
  readonly encryptionKey?: IKey;
  /**
   * What happens to the bucket (and the key it made) when the stack goes: kept, or, for a silo
   * decommissioned after its data was purged, deleted with it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The plane's files bucket (`/v1/files`, batches' input and output): each tenant's objects under
 * its own prefix `<tenantId>/`, reached only with the tenant's scoped session (see
 * `TenantAccessRole`). Private, TLS only, KMS-encrypted with a customer-managed key, unversioned:
 * a deleted file is gone, as offboarding needs.
 */
export class FilesBucket extends Construct {
  public readonly bucket: IBucket;
  public readonly encryptionKey: IKey;

  constructor(scope: Construct, id: string, props: FilesBucketProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.encryptionKey =
      props.encryptionKey ??
      new Key(this, 'Key', {
        description: "The plane's files bucket: tenants' uploaded files at rest",
        enableKeyRotation: true,
        removalPolicy,
      });
    const bucket = new Bucket(this, 'Resource', {
      encryption: BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      // No S3 Bucket Key: each object's data key is bound to its own ARN, which a tenant's key grant names.
      bucketKeyEnabled: false,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      autoDeleteObjects: false,
      removalPolicy,
    });
    NagSuppressions.addResourceSuppressions(bucket, [
      {
        id: 'AwsSolutions-S1',
        reason:
          "Every request is signed by a TenantAccessRole session confined by IAM to its tenant's prefix; the functions' logs and the audit log record each file operation with its tenant, and CloudTrail data events can be turned on per deployment.",
      },
    ]);
    this.bucket = bucket;
  }

  /**
   * Lets sessions of `role` (the tenant access role) reach the objects under the prefix their
   * `tagKey` session tag names, and list that prefix only, with the key to read and write them.
   */
  grantTenantPrefix(role: IRole, tagKey: string): void {
    const prefix = `\${aws:PrincipalTag/${tagKey}}/`;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${prefix}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': `${prefix}*` } },
      }),
    );
    // The key through S3 only, and only for objects under the same prefix (S3 binds each object's data key to its ARN).
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [this.encryptionKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.${Stack.of(this).urlSuffix}` },
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': this.bucket.arnForObjects(`${prefix}*`) },
        },
      }),
    );
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "The objects under the session's own tenant prefix of the files bucket (`<tenantId>/*`): the prefix is the tenant's, named from its session tag.",
          appliesTo: [
            `Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/<aws:PrincipalTag/${tagKey}>/*`,
          ],
        },
      ],
      true,
    );
  }
}
