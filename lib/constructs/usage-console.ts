import { readFileSync } from 'node:fs';
import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  OriginRequestPolicy,
  ResponseHeadersPolicy,
  SecurityPolicyProtocol,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { RestApiOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { consoleFiles } from '../../console/files';
import type { UsageConsoleConfig } from '../config';

export interface UsageConsoleProps extends UsageConsoleConfig {
  /** The API the console calls: served under the same CloudFront domain, so the page calls its own origin. */
  readonly api: RestApi;
}

/**
 * How long CloudFront waits for the API's first byte and between bytes: its most without a quota
 * increase. Streams send a keep-alive comment at least every 30 s (`KEEP_ALIVE`), so only the
 * first event of a streamed answer (the status is sent with it) and a buffered answer must come
 * within it.
 */
const API_ORIGIN_READ_TIMEOUT = Duration.seconds(60);

/**
 * The usage console as a static site: its files in a private S3 bucket, and one CloudFront
 * distribution that serves them at `/console/` and passes `/v1/*` and `/admin/*` to the API
 * uncached, so the page and the API share an origin (no CORS, the credential only ever in an
 * Authorization header).
 */
export class UsageConsole extends Construct {
  public readonly distribution: Distribution;

  constructor(scope: Construct, id: string, props: UsageConsoleProps) {
    super(scope, id);
    const bucket = new Bucket(this, 'Files', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
    });
    const api = new RestApiOrigin(props.api, { readTimeout: API_ORIGIN_READ_TIMEOUT });
    const toApi = {
      origin: api,
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: AllowedMethods.ALLOW_ALL,
      cachePolicy: CachePolicy.CACHING_DISABLED,
      originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
    };
    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'Usage console and its API',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: ResponseHeadersPolicy.SECURITY_HEADERS,
      },
      additionalBehaviors: { '/v1/*': toApi, '/admin/*': toApi },
      defaultRootObject: 'console/index.html',
      domainNames: [props.domainName],
      certificate: Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
      minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
    });
    new BucketDeployment(this, 'Deploy', {
      destinationBucket: bucket,
      destinationKeyPrefix: 'console/',
      sources: consoleFiles().map(({ path, file }) => Source.data(path, readFileSync(file, 'utf8'))),
      distribution: this.distribution,
      distributionPaths: ['/console/*'],
    });
    new CfnOutput(this, 'ConsoleUrl', {
      value: `https://${props.domainName}/console/`,
      description: 'The usage console (a tenant key typed in, or #key=<credential>)',
    });
    // The deployment's function is a singleton of the stack, beside this construct rather than in it.
    const deployFunctions = Stack.of(this).node.children.filter((child) =>
      child.node.id.startsWith('Custom::CDKBucketDeployment'),
    );
    NagSuppressions.addResourceSuppressions(
      [this, ...deployFunctions],
      [
        {
          id: 'AwsSolutions-S1',
          reason: 'Static console files, no tenant data: CloudFront serves them; no access logs kept.',
        },
        { id: 'AwsSolutions-CFR1', reason: 'Tenants call from anywhere; the API behind it has its own authorizer.' },
        { id: 'AwsSolutions-CFR2', reason: "The API's own stage carries the web ACL when configured (webAclArn)." },
        {
          id: 'AwsSolutions-CFR3',
          reason: 'The API stage writes access logs with the tenant id; the console files hold no data.',
        },
        {
          id: 'AwsSolutions-IAM4',
          reason: "CDK's BucketDeployment custom resource uses the AWS-managed Lambda basic execution role.",
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: "CDK's BucketDeployment copies the asset objects into this bucket and invalidates /console/*.",
        },
        { id: 'AwsSolutions-L1', reason: "CDK's BucketDeployment custom resource picks its own runtime." },
      ],
      true,
    );
  }
}
