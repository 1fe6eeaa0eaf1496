import { Aws, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnVectorBucket } from 'aws-cdk-lib/aws-s3vectors';
import { Construct } from 'constructs';

/** The service that indexes a vector bucket's vectors: it reads them with the bucket's key. */
export const S3VECTORS_INDEXING_PRINCIPAL = 'indexing.s3vectors.amazonaws.com';

export interface VectorBucketProps {
  /**
   * A silo's own key, for the vectors at rest.
   * @default - S3 Vectors' own encryption (SSE-S3)
   */
  readonly encryptionKey?: IKey;
  /**
   * What happens to the bucket when the stack goes (a bucket with indexes cannot be deleted).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The plane's S3 Vectors bucket: an index of its own (`t-<tenantId>`) for every tenant of an
 * `s3vectors` tier, up to 10,000 a bucket, reached only with the tenant's scoped session.
 */
export class VectorBucket extends Construct {
  public readonly bucketName: string;
  public readonly bucketArn: string;

  constructor(scope: Construct, id: string, props: VectorBucketProps = {}) {
    super(scope, id);
    // Named, so the functions' environment and the IAM index ARNs name it before it exists.
    this.bucketName = `${Stack.of(this)
      .stackName.toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .slice(0, 55)}-vectors`;
    const bucket = new CfnVectorBucket(this, 'Resource', {
      vectorBucketName: this.bucketName,
      encryptionConfiguration: props.encryptionKey
        ? { sseType: 'aws:kms', kmsKeyArn: props.encryptionKey.keyArn }
        : { sseType: 'AES256' },
    });
    bucket.applyRemovalPolicy(props.removalPolicy ?? RemovalPolicy.RETAIN);
    this.bucketArn = `arn:${Aws.PARTITION}:s3vectors:${Aws.REGION}:${Aws.ACCOUNT_ID}:bucket/${this.bucketName}`;
    // S3 Vectors' background indexing reads vectors encrypted with a customer key: only this bucket's, of this account.
    props.encryptionKey?.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal(S3VECTORS_INDEXING_PRINCIPAL)],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': `${this.bucketArn}/index/*` },
        },
      }),
    );
  }

  /** An index of the bucket, by name (IAM policy variables allowed). */
  indexArn(indexName: string): string {
    return `${this.bucketArn}/index/${indexName}`;
  }
}
