import { Aspects, Aws, Duration, type IAspect, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnLogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';
import { TENANT_COST_TAG, TENANT_ID_PATTERN } from '../contract/tenancy';
import type { PlatformConfig } from './config';
import { TenantPlane } from './constructs/tenant-plane';

export interface SiloTenantStackProps extends StackProps {
  /** The platform configuration, with this tenant's sizes (see `siloTenants` in `lib/config.ts`). */
  readonly config: PlatformConfig;
  /** The one tenant this stack serves. */
  readonly tenantId: string;
  /**
   * ARN of a regional WAFv2 web ACL for the silo's API stage.
   * @default - no web ACL
   */
  readonly webAclArn?: string;
  /**
   * The tenant has been offboarded and its data purged: deleting the stack deletes its tables,
   * search domain and key (scheduled) too.
   * @default false - they are retained, and the tables protected from deletion
   */
  readonly decommission?: boolean;
  /**
   * Concurrency reserved for each of its tenant-route functions.
   * @default - the account's unreserved pool
   */
  readonly concurrency?: number;
}

/**
 * An enterprise tenant's own stack: the same tenant plane as the pool, for this tenant alone, with
 * a customer-managed KMS key of its own for every store, its data retained, and every resource
 * tagged with the tenant id for cost allocation.
 */
export class SiloTenantStack extends Stack {
  public readonly plane: TenantPlane;
  public readonly key: Key;

  constructor(scope: Construct, id: string, props: SiloTenantStackProps) {
    super(scope, id, props);
    if (!TENANT_ID_PATTERN.test(props.tenantId)) {
      throw new Error(`silo tenant id '${props.tenantId}' must match ${TENANT_ID_PATTERN.source}`);
    }
    this.key = new Key(this, 'TenantKey', {
      description: `Encrypts every store of tenant ${props.tenantId}`,
      enableKeyRotation: true,
      removalPolicy: props.decommission ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(7),
    });
    this.plane = new TenantPlane(this, 'Default', {
      config: props.config,
      webAclArn: props.webAclArn,
      encryptionKey: this.key,
      siloTenantId: props.tenantId,
      dataRemovalPolicy: props.decommission ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      deletionProtection: !props.decommission,
      reservedConcurrency: props.concurrency,
    });
    encryptLogsWith(this, this.key);
    // For cost allocation, and how the placement pipeline's copy recognises what it may write.
    // Every resource that takes tags: what the placement pipeline may write to, and AWS's bill by tenant.
    Tags.of(this).add(TENANT_COST_TAG, props.tenantId);
  }
}

/**
 * Every log group of the silo (functions, state machines, the search domain, API access logs)
 * under the tenant's key: CloudWatch Logs may use it for this account's log groups only.
 */
function encryptLogsWith(stack: Stack, key: Key): void {
  key.addToResourcePolicy(
    new PolicyStatement({
      principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*`,
        },
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      },
    }),
  );
  const encrypt: IAspect = {
    visit(node: IConstruct) {
      if (node instanceof CfnLogGroup && node.kmsKeyId === undefined) node.kmsKeyId = key.keyArn;
    },
  };
  Aspects.of(stack).add(encrypt);
}
