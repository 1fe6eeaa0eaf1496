import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { EbsDeviceVolumeType } from 'aws-cdk-lib/aws-ec2';
import { AccountRootPrincipal, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnResourcePolicy, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type CfnDomain, Domain, EngineVersion, TLSSecurityPolicy } from 'aws-cdk-lib/aws-opensearchservice';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

/** How big the domain is; see `lib/config.ts` for the defaults. */
export interface VectorSearchSizing {
  readonly dataNodes: number;
  readonly dataNodeInstanceType: string;
  readonly masterNodes: number;
  readonly masterNodeInstanceType: string;
  readonly volumeSizeGb: number;
}

export interface VectorSearchProps {
  readonly sizing: VectorSearchSizing;
  /**
   * Customer-managed key for encryption at rest (a silo tenant's own key).
   * @default - an AWS-managed key
   */
  readonly encryptionKey?: IKey;
  /**
   * What happens to the domain when the stack is deleted.
   * @default RemovalPolicy.RETAIN - tenants' documents outlive the stack
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The OpenSearch Service domain holding every tenant's chunks: k-NN, encrypted at rest and between
 * nodes, HTTPS only (TLS 1.2), IAM-signed requests only. The domain policy admits the account's
 * principals and leaves the decision to their identity policies, so only TenantAccessRole sessions
 * get in, each to its own `t-<tenantId>` index and the shared one. Explicit indexes in `_bulk` and
 * `_msearch` bodies are refused, or they would bypass index-level permissions.
 */
export class VectorSearch extends Construct {
  public readonly domain: Domain;

  constructor(scope: Construct, id: string, props: VectorSearchProps) {
    super(scope, id);
    const { sizing } = props;
    // Our own log groups and resource policy: the construct's default deploys a custom-resource Lambda for it.
    const logs = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH });
    if (sizing.dataNodes < 1 || sizing.volumeSizeGb < 10)
      throw new Error('vector search needs at least one data node and 10 GB');
    this.domain = new Domain(this, 'Domain', {
      version: EngineVersion.OPENSEARCH_2_19,
      capacity: {
        dataNodes: sizing.dataNodes,
        dataNodeInstanceType: sizing.dataNodeInstanceType,
        masterNodes: sizing.masterNodes,
        masterNodeInstanceType: sizing.masterNodeInstanceType,
        multiAzWithStandbyEnabled: false,
      },
      ebs: { volumeSize: sizing.volumeSizeGb, volumeType: EbsDeviceVolumeType.GP3 },
      zoneAwareness: sizing.dataNodes > 1 ? { enabled: true, availabilityZoneCount: 2 } : undefined,
      encryptionAtRest: { enabled: true, kmsKey: props.encryptionKey },
      nodeToNodeEncryption: true,
      enforceHttps: true,
      tlsSecurityPolicy: TLSSecurityPolicy.TLS_1_2,
      logging: {
        slowSearchLogEnabled: true,
        slowSearchLogGroup: logs,
        slowIndexLogEnabled: true,
        slowIndexLogGroup: logs,
        appLogEnabled: true,
        appLogGroup: logs,
      },
      suppressLogsResourcePolicy: true,
      advancedOptions: { 'rest.action.multi.allow_explicit_index': 'false' },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    // The `dev` sizing: one node, so no dedicated masters and no second zone; `production` has both.
    NagSuppressions.addResourceSuppressions(this.domain, [
      ...(sizing.masterNodes === 0
        ? [
            {
              id: 'AwsSolutions-OS4',
              reason: 'Dev sizing: one data node and no dedicated masters; production sizing has three.',
            },
          ]
        : []),
      ...(sizing.dataNodes === 1
        ? [
            {
              id: 'AwsSolutions-OS7',
              reason: 'Dev sizing: one data node in one zone; production sizing spans two zones.',
            },
          ]
        : []),
    ]);
    new CfnResourcePolicy(this, 'LogsPolicy', {
      policyName: `${Stack.of(this).stackName}-opensearch-logs`,
      policyDocument: Stack.of(this).toJsonString({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'es.amazonaws.com' },
            Action: ['logs:PutLogEvents', 'logs:CreateLogStream'],
            Resource: logs.logGroupArn,
          },
        ],
      }),
    });
    // Set on the CloudFormation resource rather than through `addAccessPolicies`, which deploys a
    // custom-resource Lambda for it. The domain cannot name its own ARN here, so the policy names
    // the account's domains: it is attached to this one only.
    const cfnDomain = this.domain.node.defaultChild as CfnDomain;
    cfnDomain.accessPolicies = new PolicyDocument({
      statements: [
        new PolicyStatement({
          principals: [new AccountRootPrincipal()],
          actions: ['es:ESHttp*'],
          resources: [Stack.of(this).formatArn({ service: 'es', resource: 'domain', resourceName: '*/*' })],
        }),
      ],
    }).toJSON();
  }

  /** `https://` endpoint for the adapter. */
  get endpoint(): string {
    return `https://${this.domain.domainEndpoint}`;
  }

  /** ARN of an index (or index pattern) of this domain, for identity policies. */
  indexArn(index: string): string {
    return `${this.domain.domainArn}/${index}`;
  }
}
