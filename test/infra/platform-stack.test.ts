import { App } from 'aws-cdk-lib';
import { type Annotations, Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import { S3VECTORS_INDEX_ACTIONS } from '../../contract/iam';
import { ROUTES } from '../../contract/routes';
import { KEEP_ALIVE } from '../../lambdas/streamed-response';
import { platformConfig } from '../../lib/config';
import { BEDROCK_PRINCIPAL } from '../../lib/constructs/batch-inference';
import { API_GATEWAY_PRINCIPAL } from '../../lib/constructs/tenant-api';
import { PlatformStack } from '../../lib/platform-stack';
import { stateMachineDefinitions } from '../support/templates';
import {
  budget,
  CONSOLE_CONTEXT,
  type ConfigurationName,
  PLATFORM_CONTEXT,
  type Synthesized,
  synthesizedAll,
} from './synthesized';

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

// GIVEN the platform stack as `cdk synth` builds it, with a JWT issuer configured and cdk-nag on;
// without bundling the functions (bundles.test.ts bundles them once, and checks their sizes);
// synthesized once, with the variants some tests compare it to (see synthesized.ts)
const context = PLATFORM_CONTEXT;
let template: Template;
let annotations: Annotations;
let json: string;
let upgrading: Synthesized;
let isolated: Synthesized;
let withConsole: Synthesized;
let withProfiles: Synthesized;
const configurations = [
  'platform',
  'legacySharedIndex',
  'tenantIsolation',
  'usageConsole',
  'inferenceProfiles',
] satisfies ConfigurationName[];
beforeAll(
  async () => {
    let platform: Synthesized;
    [platform, upgrading, isolated, withConsole, withProfiles] = await synthesizedAll(configurations);
    template = platform.template('Platform');
    annotations = platform.annotations('Platform');
    json = JSON.stringify(template.toJSON());
  },
  budget(...configurations),
);

function logicalIdOf(type: string, props: Record<string, unknown>): string {
  const found = Object.keys(template.findResources(type, { Properties: Match.objectLike(props) }));
  expect(found).toHaveLength(1);
  return found[0];
}

/** The statements of the policy attached to the role of the function whose env has POWERTOOLS_SERVICE_NAME = name. */
function statementsOf(handlerName: string): Statement[] {
  const fn = Object.values(template.findResources('AWS::Lambda::Function')).find(
    (resource) => resource.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === handlerName,
  );
  const roleId = fn?.Properties.Role['Fn::GetAtt'][0];
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
    policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId),
  );
  return policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

const actionsOf = (statements: Statement[]) => statements.flatMap((s) => [s.Action].flat()).sort();
/** The same actions, in the order `actionsOf` gives them. */
const sorted = (actions: string[]) => [...actions].sort();

describe('PlatformStack', () => {
  it('passes cdk-nag AwsSolutions with no unsuppressed error or warning', () => {
    const findings = [
      ...annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
  });

  it('puts the tenant authorizer on every tenant route and IAM on every admin route', () => {
    const authorizerId = logicalIdOf('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerResultTtlInSeconds: 60,
    });
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method'));
    expect(methods).toHaveLength(ROUTES.length);
    for (const route of ROUTES) {
      template.hasResourceProperties('AWS::ApiGateway::Method', {
        HttpMethod: route.method,
        ...(route.auth === 'tenant'
          ? {
              AuthorizationType: 'CUSTOM',
              AuthorizerId: { Ref: authorizerId },
            }
          : { AuthorizationType: 'AWS_IAM', AuthorizerId: Match.absent() }),
      });
    }
    expect(methods.filter((m) => m.Properties.AuthorizationType === 'NONE')).toEqual([]);
    // no inert request validator, and no console test invocations that would skip the authorizer
    template.resourceCountIs('AWS::ApiGateway::RequestValidator', 0);
    const invokers = Object.values(template.findResources('AWS::Lambda::Permission')).map((p) =>
      JSON.stringify(p.Properties.SourceArn),
    );
    expect(invokers.filter((arn) => arn.includes('test-invoke-stage'))).toEqual([]);
    // One permission a route function, for the API's own stage (a stack's resources do not grow with its routes)
    const fromApi = Object.values(template.findResources('AWS::Lambda::Permission')).filter(
      (p) => p.Properties.Principal === API_GATEWAY_PRINCIPAL && !JSON.stringify(p).includes('/authorizers/'),
    );
    const routeFunctions = new Set(ROUTES.map((route) => route.handler));
    expect(fromApi).toHaveLength(routeFunctions.size);
    for (const permission of fromApi) {
      expect(JSON.stringify(permission.Properties.SourceArn)).toMatch(/\/prod\/\*\/\*"\]\]\}$/);
    }
  });

  it('encrypts every table, with point-in-time recovery, on demand; ledger and audit items expire', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 4);
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  it('grants each function only the actions it uses, and tenant data only through the tenant access role', () => {
    // every function writes its own log group and its X-Ray trace segments
    const logs = ['logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
    const assume = ['sts:AssumeRole', 'sts:TagSession'];
    expect(actionsOf(statementsOf('authorizer'))).toEqual(sorted(['dynamodb:GetItem', ...logs]));
    // Invoke thrice: the catalog's models, their cross-region profiles, the models those profiles run elsewhere.
    const invoke = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
    expect(actionsOf(statementsOf('chat-completions'))).toEqual(
      sorted(['bedrock:ApplyGuardrail', ...invoke, ...invoke, ...invoke, ...logs, ...assume]),
    );
    expect(actionsOf(statementsOf('usage'))).toEqual(sorted([...logs, ...assume]));
    expect(actionsOf(statementsOf('audit'))).toEqual(sorted([...logs, ...assume]));
    expect(actionsOf(statementsOf('admin'))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:Scan',
        'dynamodb:Scan',
        'dynamodb:UpdateItem',
        ...logs,
        'states:StartExecution',
        ...assume,
      ].sort(),
    );
    const start = statementsOf('admin').find((statement) => statement.Action === 'states:StartExecution');
    expect(start?.Resource).toEqual({ Ref: logicalIdOf('AWS::StepFunctions::StateMachine', {}) });
    // the all-tenant views: Scan on the ledger (usage report) and the registry (tenant list), for the admin function alone
    const scans = statementsOf('admin').filter((statement) => statement.Action === 'dynamodb:Scan');
    expect(scans).toHaveLength(2);
    expect(JSON.stringify(scans.map((scan) => scan.Resource))).toMatch(
      /UsageLedgerTable.*TenantRegistry|TenantRegistry.*UsageLedgerTable/,
    );
    expect(JSON.stringify(scans.map((scan) => scan.Resource))).not.toMatch(/AuditLog|Documents/);
    const accessRoleId = logicalIdOf('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('Tenant-scoped data access'),
    });
    for (const handler of ['chat-completions', 'usage', 'audit', 'admin']) {
      const assumeStatement = statementsOf(handler).find((s) => JSON.stringify(s.Action).includes('sts:AssumeRole'));
      expect(assumeStatement?.Resource).toEqual({ 'Fn::GetAtt': [accessRoleId, 'Arn'] });
    }
  });

  it('lets tenant access sessions reach only their own partition, by the tenantId session tag', () => {
    const accessRoleId = logicalIdOf('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('Tenant-scoped data access'),
    });
    const role = template.toJSON().Resources[accessRoleId];
    const [assumeRole, tagSession] = role.Properties.AssumeRolePolicyDocument.Statement;
    // Trust: only the handler roles, and only with exactly one non-empty tenantId tag.
    expect(assumeRole).toMatchObject({ Action: 'sts:AssumeRole', Effect: 'Allow' });
    const trustedArns = assumeRole.Condition.ArnEquals['aws:PrincipalArn'];
    expect(trustedArns).toHaveLength(11);
    expect(tagSession).toMatchObject({
      Action: 'sts:TagSession',
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': trustedArns },
        StringLike: { 'aws:RequestTag/tenantId': '?*' },
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenantId'] },
      },
    });
    // Access: ledger and audit (and its index), each item's partition key must be TENANT#<tag> or one
    // of its ledger shards TENANT#<tag>#S<n>; never Scan.
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
      policy.Properties.Roles.some((r: { Ref: string }) => r.Ref === accessRoleId),
    );
    const [data] = policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
    const ownKey = 'TENANT#${aws:PrincipalTag/tenantId}';
    expect(data.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [ownKey, `${ownKey}#*`] },
    });
    expect([data.Action].flat()).not.toContain('dynamodb:Scan');
    expect(JSON.stringify(data.Resource)).toContain('/index/byRequestId');
    expect(data.Resource).toHaveLength(4);
  });

  it('lets only the chat function reach the chat models through their cross-region profiles, and in other regions only so', () => {
    const invokes = (handler: string) =>
      statementsOf(handler).filter((s) => [s.Action].flat().includes('bedrock:InvokeModel'));
    const text = (value: unknown) => JSON.stringify(value);
    const [, profiles, destinations] = invokes('chat-completions');
    for (const geo of ['us', 'eu', 'apac', 'global']) {
      expect(text(profiles.Resource)).toContain(`:inference-profile/${geo}.amazon.nova-lite-v1:0`);
    }
    // An embedding model is never a route's target.
    expect(text(profiles.Resource)).not.toContain('titan-embed');
    expect(text(destinations.Resource)).toContain(':bedrock:*::foundation-model/amazon.nova-micro-v1:0');
    expect(destinations.Condition).toEqual({ ArnLike: { 'bedrock:InferenceProfileArn': profiles.Resource } });
    expect(text(invokes('embeddings'))).not.toContain('inference-profile/');
  });

  it('lets the chat function invoke exactly the catalog models, and no policy uses a wildcard', () => {
    const bedrock = statementsOf('chat-completions').find((s) => [s.Action].flat().includes('bedrock:InvokeModel'));
    // ConverseStream needs its own action beside Converse's
    expect([bedrock?.Action].flat()).toEqual(['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
    expect(JSON.stringify(bedrock?.Resource)).toContain('foundation-model/amazon.nova-micro-v1:0');
    expect(JSON.stringify(bedrock?.Resource)).toContain('foundation-model/amazon.nova-lite-v1:0');
    const starResources: string[][] = [];
    for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement as Statement[]) {
        expect([statement.Action].flat().some((action) => action.includes('*'))).toBe(false);
        if ([statement.Resource].flat().includes('*')) starResources.push([statement.Action].flat());
      }
    }
    // the exceptions, actions that take only Resource *: CloudWatch Logs' log delivery (state machine
    // logging) once, X-Ray's trace segments for each of the 13 functions
    const logDelivery = /^logs:\w+(LogDelivery|LogDeliveries|ResourcePolic(y|ies)|LogGroups)$/;
    const xray = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'];
    expect(starResources.filter((actions) => actions.every((action) => logDelivery.test(action)))).toHaveLength(1);
    expect(starResources.filter((actions) => actions.join() === xray.join())).toHaveLength(13);
    expect(starResources).toHaveLength(14);
  });

  it('streams the model APIs from one function: STREAM transfer mode on response-streaming-invocations, 300 s to generate', () => {
    const [chat] = Object.entries(template.findResources('AWS::Lambda::Function')).filter(
      ([, fn]) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === 'chat-completions',
    );
    expect(chat[1].Properties.Timeout).toBe(300);
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')).filter((method) =>
      JSON.stringify(method.Properties.Integration.Uri).includes(chat[0]),
    );
    // chat completions, the Responses API's four routes, the Messages API's two
    const served = ROUTES.filter((route) => route.handler === 'chat-completions');
    expect(served.map((route) => `${route.method} ${route.path}`)).toEqual([
      'POST /v1/chat/completions',
      'POST /v1/responses',
      'GET /v1/responses/{id}',
      'DELETE /v1/responses/{id}',
      'GET /v1/responses/{id}/input_items',
      'POST /v1/messages',
      'POST /v1/messages/count_tokens',
    ]);
    expect(methods).toHaveLength(served.length);
    for (const method of methods) {
      expect(method.Properties.Integration).toMatchObject({
        Type: 'AWS_PROXY',
        ResponseTransferMode: 'STREAM',
        TimeoutInMillis: 300_000,
      });
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain('response-streaming-invocations');
    }
    // every other route stays buffered
    const streamed = Object.values(template.findResources('AWS::ApiGateway::Method')).filter(
      (method) => method.Properties.Integration?.ResponseTransferMode === 'STREAM',
    );
    expect(streamed).toHaveLength(served.length);
  });

  it("authorizes Anthropic's routes with the same function, uncached, with no identity source (x-api-key or Bearer)", () => {
    const authorizers = Object.entries(template.findResources('AWS::ApiGateway::Authorizer'));
    expect(
      authorizers.map(([, a]) => [a.Properties.IdentitySource, a.Properties.AuthorizerResultTtlInSeconds]).sort(),
    ).toEqual([
      [undefined, 0],
      ['method.request.header.Authorization', 60],
    ]);
    expect(new Set(authorizers.map(([, a]) => JSON.stringify(a.Properties.AuthorizerUri))).size).toBe(1);
    const [anthropic] = authorizers.find(([, a]) => a.Properties.AuthorizerResultTtlInSeconds === 0) ?? [];
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')).filter(
      (method) => method.Properties.AuthorizerId?.Ref === anthropic,
    );
    expect(methods.map((method) => method.Properties.HttpMethod)).toEqual(['POST', 'POST']);
  });

  it('runs OpenSearch encrypted, HTTPS-only, IAM-only, refusing explicit indexes in bulk bodies', () => {
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      EngineVersion: 'OpenSearch_2.19',
      EncryptionAtRestOptions: { Enabled: true },
      NodeToNodeEncryptionOptions: { Enabled: true },
      DomainEndpointOptions: { EnforceHTTPS: true, TLSSecurityPolicy: 'Policy-Min-TLS-1-2-2019-07' },
      AdvancedOptions: { 'rest.action.multi.allow_explicit_index': 'false' },
      ClusterConfig: Match.objectLike({ InstanceCount: 2, DedicatedMasterEnabled: true, ZoneAwarenessEnabled: true }),
      AccessPolicies: {
        Statement: [
          Match.objectLike({
            Principal: { AWS: Match.objectLike({ 'Fn::Join': Match.anyValue() }) },
            Action: 'es:ESHttp*',
          }),
        ],
      },
    });
    const domain = Object.values(template.findResources('AWS::OpenSearchService::Domain'))[0];
    expect(JSON.stringify(domain.Properties.AccessPolicies)).not.toMatch(/"Principal":\{"AWS":"\*"\}/);
  });

  /** The statements of the tenant access role's policies in `of`. */
  const tenantSessionStatements = (of: Template) => {
    const roleId = Object.entries(of.findResources('AWS::IAM::Role')).find(([, role]) =>
      String(role.Properties.Description).includes('Tenant-scoped data access'),
    )?.[0];
    return Object.values(of.findResources('AWS::IAM::Policy'))
      .filter((policy) => policy.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement) as Statement[];
  };

  it('lets a tenant session reach its own OpenSearch index, and no shared one unless an upgrade still needs it', () => {
    const search = tenantSessionStatements(template).filter((s) => JSON.stringify(s.Action).includes('es:'));
    expect(search).toHaveLength(1);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
    expect(JSON.stringify(search[0].Resource)).toContain('/t-${aws:PrincipalTag/tenantId}');
    expect(JSON.stringify(search[0].Resource)).not.toMatch(/\/t-\*/);
    expect([search[0].Action].flat()).toContain('es:ESHttpDelete');

    // -c legacySharedIndex=true, while `reindex --all` empties the shared index of earlier versions: read only
    const legacy = tenantSessionStatements(upgrading.template('Upgrading')).filter((s) =>
      JSON.stringify(s.Resource).includes('/shared-basic'),
    );
    expect(legacy).toHaveLength(1);
    expect([legacy[0].Action].flat()).not.toContain('es:ESHttpDelete');
  });

  it('grants a tenant session nothing of a tenant store without naming its own tenant (resource or condition)', () => {
    const statements = tenantSessionStatements(template);
    expect(statements.length).toBeGreaterThan(3);
    for (const statement of statements) {
      const named = JSON.stringify([statement.Resource, statement.Condition]).includes('aws:PrincipalTag/tenantId');
      expect([statement.Action, named]).toEqual([statement.Action, true]);
    }
  });

  it("keeps vectors in an S3 Vectors bucket, each tenant session reaching only its own index's ARN", () => {
    const accessRoleId = logicalIdOf('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('Tenant-scoped data access'),
    });
    template.hasResourceProperties('AWS::S3Vectors::VectorBucket', {
      VectorBucketName: 'platform-vectors',
      EncryptionConfiguration: { SseType: 'AES256' },
    });
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((policy) => policy.Properties.Roles.some((r: { Ref: string }) => r.Ref === accessRoleId))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement) as Statement[];
    const vectors = statements.filter((s) => JSON.stringify(s.Action).includes('s3vectors:'));
    expect(vectors).toHaveLength(1);
    expect(sorted([vectors[0].Action].flat() as string[])).toEqual(
      sorted(S3VECTORS_INDEX_ACTIONS.map((action) => `s3vectors:${action}`)),
    );
    expect(JSON.stringify(vectors[0].Resource)).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
      ':bucket/platform-vectors/index/t-${aws:PrincipalTag/tenantId}',
    );
    // No other statement of any role names the vector bucket's indexes: tenant sessions alone reach them.
    const elsewhere = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((policy) => !policy.Properties.Roles.some((r: { Ref: string }) => r.Ref === accessRoleId))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement) as Statement[];
    expect(JSON.stringify(elsewhere)).not.toContain('s3vectors');
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ VECTOR_BUCKET_NAME: 'platform-vectors' }) },
    });
  });

  it('keeps files in a private, KMS-encrypted, TLS-only bucket, each tenant session reaching only its own prefix', () => {
    // GIVEN
    const bucketId = logicalIdOf('AWS::S3::Bucket', {
      BucketEncryption: Match.objectLike({
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) }),
        ],
      }),
    });
    const bucket = template.toJSON().Resources[bucketId];
    const keyId =
      bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
        .KMSMasterKeyID['Fn::GetAtt'][0];
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
    const ownPrefix = '${aws:PrincipalTag/tenantId}/*';
    const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${ownPrefix}`]] };

    // THEN: retained, unversioned, private, customer-managed key with rotation
    expect(bucket).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    template.hasResource('AWS::KMS::Key', {
      Properties: Match.objectLike({ EnableKeyRotation: true }),
      DeletionPolicy: 'Retain',
    });
    expect(template.toJSON().Resources[keyId].Type).toBe('AWS::KMS::Key');
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    // no custom resource empties it
    expect(JSON.stringify(template.findResources('Custom::S3AutoDeleteObjects'))).toBe('{}');

    // THEN: the tenant role's statements on it, each naming the session's own prefix
    const statements = tenantSessionStatements(template);
    const onBucket = statements.filter(
      (s) => JSON.stringify(s).includes(bucketId) || JSON.stringify(s).includes(keyId),
    );
    expect(onBucket).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
        Resource: objects,
      }),
      expect.objectContaining({
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ownPrefix } },
      }),
      expect.objectContaining({
        Effect: 'Allow',
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
        Condition: {
          StringEquals: {
            'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] },
          },
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': objects },
        },
      }),
    ]);
    // No other role reaches the bucket's objects: tenant sessions alone do, and Bedrock's batch jobs
    // the keys of a batch's job (the next test).
    const elsewhere = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((policy) => !/TenantAccess|BatchInferenceServiceRole/.test(JSON.stringify(policy.Properties.Roles)))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement) as Statement[];
    expect(JSON.stringify(elsewhere)).not.toContain(bucketId);
  });

  it("lets Bedrock's batch jobs reach a batch's job keys only, and only the worker start, read and stop jobs as that role", () => {
    const bucketId = logicalIdOf('AWS::S3::Bucket', {
      BucketEncryption: Match.objectLike({ ServerSideEncryptionConfiguration: Match.anyValue() }),
    });
    const keyId =
      template.toJSON().Resources[bucketId].Properties.BucketEncryption.ServerSideEncryptionConfiguration[0]
        .ServerSideEncryptionByDefault.KMSMasterKeyID['Fn::GetAtt'][0];
    const jobKeys = (tail: string) => ({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/*/parts/*/job/${tail}`]],
    });
    const jobArns = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':bedrock:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':model-invocation-job/*',
        ],
      ],
    };
    // Assumed by Bedrock alone, for this account's jobs in this region.
    const roleId = logicalIdOf('AWS::IAM::Role', {
      Description: "Bedrock batch inference jobs of the plane's batches: their records and output only",
    });
    const role = template.toJSON().Resources[roleId];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: BEDROCK_PRINCIPAL },
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: { 'aws:SourceArn': jobArns },
        },
      },
    ]);
    const statementsOf = (roleRef: string) =>
      Object.values(template.findResources('AWS::IAM::Policy'))
        .filter((policy) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleRef }]))
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    expect(statementsOf(roleId)).toEqual([
      { Effect: 'Allow', Action: 's3:GetObject', Resource: jobKeys('input.jsonl') },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: jobKeys('output/*') },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': '*/parts/*/job/' } },
      },
      {
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
        Condition: {
          StringEquals: {
            'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] },
          },
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': jobKeys('*') },
        },
      },
    ]);
    // Only the worker may pass it, to Bedrock only, and start (tagged), read and stop jobs.
    const passers = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
      JSON.stringify(policy.Properties.PolicyDocument).includes('iam:PassRole'),
    );
    expect(passers.map((policy) => JSON.stringify(policy.Properties.Roles))).toEqual([
      expect.stringContaining('IngestWorkerRole'),
    ]);
    const worker = passers[0].Properties.PolicyDocument.Statement;
    expect(worker).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: ['bedrock:CreateModelInvocationJob', 'bedrock:TagResource'],
          Resource: expect.arrayContaining([jobArns]),
        }),
        {
          Effect: 'Allow',
          Action: ['bedrock:GetModelInvocationJob', 'bedrock:StopModelInvocationJob'],
          Resource: jobArns,
        },
        {
          Effect: 'Allow',
          Action: 'iam:PassRole',
          Resource: { 'Fn::GetAtt': [roleId, 'Arn'] },
          Condition: { StringEquals: { 'iam:PassedToService': BEDROCK_PRINCIPAL } },
        },
      ]),
    );
    // The worker alone is told the role.
    const told = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (fn) => fn.Properties.Environment.Variables.BATCH_INFERENCE_ROLE_ARN,
    );
    expect(told.map((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME)).toEqual(['ingest-worker']);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FILES_BUCKET_NAME: { Ref: bucketId } }) },
    });
  });

  it('indexes large documents through an encrypted queue with a dead-letter queue and partial batch failures', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { maxReceiveCount: 3, deadLetterTargetArn: Match.anyValue() },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: [Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })],
      },
    });
    // The worker queues a suspended tenant's jobs again, delayed: it sends to its own queue.
    const jobsQueue = logicalIdOf('AWS::SQS::Queue', { RedrivePolicy: Match.anyValue() });
    const send = statementsOf('ingest-worker').find((statement) =>
      JSON.stringify(statement.Action).includes('sqs:SendMessage'),
    );
    expect(send?.Resource).toEqual({ 'Fn::GetAtt': [jobsQueue, 'Arn'] });
  });

  it('writes access logs with the tenant id, and never data traces', () => {
    const format = new Capture();
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: format },
      MethodSettings: [Match.objectLike({ DataTraceEnabled: false, LoggingLevel: 'ERROR' })],
    });
    expect(JSON.parse(format.asString())).toMatchObject({
      tenantId: '$context.authorizer.tenantId',
      requestId: '$context.requestId',
    });
  });

  it("answers API Gateway's own errors in the platform's error shape", () => {
    const template401 = new Capture();
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '401',
      ResponseTemplates: { 'application/json': template401 },
    });
    expect(JSON.parse(template401.asString())).toEqual({
      error: {
        code: 'unauthenticated',
        message: expect.any(String),
        type: 'authentication_error',
        request_id: '$context.requestId',
      },
    });
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'ACCESS_DENIED',
      StatusCode: '403',
    });
  });

  it('sizes the search domain small unless production is asked for, and keeps function logs as configured', () => {
    expect(platformConfig().search).toMatchObject({ dataNodes: 1, masterNodes: 0 });
    expect(platformConfig((key) => context[key]).search).toMatchObject({ dataNodes: 2, masterNodes: 3 });
    expect(() => platformConfig((key) => ({ searchSizing: 'huge' })[key])).toThrow();
    expect(() => platformConfig((key) => ({ logRetentionDays: '42' })[key])).toThrow(/logRetentionDays is one of/);
    const functionLogGroups = Object.values(template.findResources('AWS::Logs::LogGroup')).filter(
      (group) => group.Properties.RetentionInDays === 90,
    );
    expect(functionLogGroups).toHaveLength(13);
  });

  it('runs handlers on arm64 and the current Node.js runtime, configured from the environment contract', () => {
    template.resourceCountIs('AWS::Lambda::Function', 13);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({
          TIER_LIMITS: Match.absent(),
          TENANT_ACCESS_ROLE_ARN: Match.anyValue(),
          AUDIT_RETENTION_DAYS: '90',
        }),
      },
    });
    // Every function but the work queue's worker, which verifies no tokens, is told how to.
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    const told = functions.filter((fn) => fn.Properties.Environment.Variables.JWT_ISSUER !== undefined);
    expect(told).toHaveLength(12);
    for (const fn of told) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        JWT_ISSUER: context.jwtIssuer,
        JWT_AUDIENCE: context.jwtAudience,
        JWKS_URI: `${context.jwtIssuer}/.well-known/jwks.json`,
      });
    }
  });

  it('outwaits its longest handler (a streamed chat, 300 s): a reservation outlives it, and so does the offboarding drain', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')).map(
      ({ Properties }) => Properties as { Timeout: number; Environment?: { Variables?: Record<string, unknown> } },
    );
    const metering = functions.filter((fn) => fn.Environment?.Variables?.RESERVATION_TTL_SECONDS !== undefined);
    const longest = Math.max(...metering.map((fn) => fn.Timeout));
    expect(longest).toBe(300);
    for (const fn of metering) {
      // a settle after the handler's whole run still finds its reservation, so the call is billed
      expect(Number(fn.Environment?.Variables?.RESERVATION_TTL_SECONDS)).toBeGreaterThan(longest);
      // no call let in by a decision cached before the tenant left still writes after the purge
      expect(Number(fn.Environment?.Variables?.OFFBOARDING_DRAIN_SECONDS)).toBeGreaterThanOrEqual(60 + longest);
    }
  });

  it('offboards in a state machine: wait out the drain, purge with retries, tombstone, announce success or failure', () => {
    const [{ definition }] = stateMachineDefinitions(template);
    expect(definition.StartAt).toBe('WaitForDrain');
    expect(definition.States.WaitForDrain).toEqual({
      Type: 'Wait',
      TimestampPath: '$.drainUntil',
      Next: 'PurgeTenantData',
    });
    for (const [state, step, next] of [
      ['PurgeTenantData', 'purge', 'Tombstone'],
      ['Tombstone', 'tombstone', 'AnnounceOffboarded'],
    ]) {
      expect(definition.States[state]).toMatchObject({
        Type: 'Task',
        Next: next,
        Parameters: { Payload: { step, 'tenantId.$': '$.tenantId' } },
        Retry: expect.arrayContaining([
          { ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 6, BackoffRate: 2 },
        ]),
        Catch: [{ ErrorEquals: ['States.ALL'], Next: 'AnnounceFailure' }],
      });
    }
    expect(definition.States.AnnounceOffboarded.Parameters.Entries[0]).toMatchObject({
      DetailType: 'TenantOffboarded',
      Source: 'multi-tenant-ai-platform.offboarding',
    });
    expect(definition.States.AnnounceFailure).toMatchObject({ Next: 'OffboardingFailed' });
    expect(definition.States.AnnounceFailure.Parameters.Entries[0].DetailType).toBe('TenantOffboardingFailed');
    expect(definition.States.OffboardingFailed.Type).toBe('Fail');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'Platform-offboarding',
      StateMachineType: 'STANDARD',
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: false }),
    });
    // the functions learn the ARN from its fixed name: no cycle between the machine and its step function
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          OFFBOARDING_STATE_MACHINE_ARN: {
            'Fn::Join': ['', Match.arrayWith([':stateMachine:Platform-offboarding'])],
          },
          OFFBOARDING_DRAIN_SECONDS: String(60 + 300 + 30),
        }),
      },
    });
    expect(actionsOf(statementsOf('offboarding'))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'sts:AssumeRole',
        'sts:TagSession',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
  });

  it('has a dashboard of the tenants: per tier from the functions metrics, top tenants by cost from their logs', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0].Properties.DashboardBody);
    for (const metric of ['Requests', 'ServerErrors', 'Refusals', 'CostUsd', 'InputTokens', 'Latency', 'CacheHits']) {
      expect(body).toContain(`\\"${metric}\\"`);
    }
    for (const tier of ['basic', 'standard', 'enterprise']) expect(body).toContain(`\\"tier\\",\\"${tier}\\"`);
    expect(body).toContain('stats sum(CostUsd) as costUsd');
    expect(body).toContain('by tenantId');
    expect(body).toContain('MultiTenantAiPlatform');
  });

  it('alarms on 5xx rate, function errors and throttles, ledger throttling, search health and dead letters, to one topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(10);
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: '5XXError',
      Statistic: 'Average',
      Threshold: 0.05,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ClusterStatus.red', Threshold: 1 });
    const watches = (metricName: string) =>
      alarms.filter((alarm) => JSON.stringify(alarm.Properties.Metrics ?? []).includes(`"MetricName":"${metricName}"`));
    expect(watches('ThrottledRequests')).toHaveLength(1);
    // 13 functions, ten to an alarm
    expect(watches('Throttles')).toHaveLength(2);
    expect(watches('Errors')).toHaveLength(2);
  });

  it('checks budgets every five minutes and routes 80 % and 100 % events of this plane to the alarm topic', () => {
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['multi-tenant-ai-platform.metering'],
        'detail-type': ['TenantBudgetThresholdReached'],
        detail: { plane: ['pool'] },
      },
      Targets: [Match.objectLike({ Arn: { Ref: topicId }, InputTransformer: Match.anyValue() })],
    });
    expect(actionsOf(statementsOf('budget-alerts'))).toEqual(
      sorted([
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Scan',
        'events:PutEvents',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ]),
    );
  });

  it('gives the model-calling functions an execution environment per tenant when Lambda tenant isolation is on', () => {
    expect(json).not.toContain('TenancyConfig');
    const perTenant = Object.values(isolated.template('Isolated').findResources('AWS::Lambda::Function'))
      .filter((fn) => fn.Properties.TenancyConfig?.TenantIsolationMode === 'PER_TENANT')
      .map((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME)
      .sort();
    expect(perTenant).toEqual(['chat-completions', 'documents', 'embeddings', 'retrieve']);
    // Each of their methods passes the authorizer's tenant id, and only theirs do.
    const methods = Object.values(isolated.template('Isolated').findResources('AWS::ApiGateway::Method'));
    const withTenantHeader = methods.filter(
      (method) =>
        method.Properties.Integration?.RequestParameters?.['integration.request.header.X-Amz-Tenant-Id'] ===
        'context.authorizer.tenantId',
    );
    const modelRoutes = ROUTES.filter((route) =>
      ['chat-completions', 'embeddings', 'documents', 'retrieve'].includes(route.handler),
    );
    expect(withTenantHeader).toHaveLength(modelRoutes.length);
  });

  it('deploys the usage console, when asked, to S3 behind CloudFront on your domain (TLS 1.2 at least), which also passes the API through uncached', () => {
    expect(json).not.toContain('AWS::CloudFront::Distribution');
    const consoleContext: Record<string, string> = { ...PLATFORM_CONTEXT, ...CONSOLE_CONTEXT };
    // Without a domain and certificate there is no console.
    for (const missing of ['consoleDomain', 'consoleCertificateArn']) {
      expect(() => platformConfig((key) => (key === missing ? undefined : consoleContext[key]))).toThrow(
        new RegExp(`usageConsole=true needs ${missing}`),
      );
    }
    const findings = [
      ...withConsole.annotations('WithConsole').findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...withConsole.annotations('WithConsole').findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
    const site = withConsole.template('WithConsole');
    const distribution = Object.values(site.findResources('AWS::CloudFront::Distribution'))[0].Properties
      .DistributionConfig;
    expect(distribution.DefaultRootObject).toBe('console/index.html');
    expect(distribution.Aliases).toEqual(['ai.example.com']);
    expect(distribution.ViewerCertificate).toEqual({
      AcmCertificateArn: consoleContext.consoleCertificateArn,
      MinimumProtocolVersion: 'TLSv1.2_2021',
      SslSupportMethod: 'sni-only',
    });
    // The API origin waits 60 s for a first byte and between bytes; streams keep-alive well within it.
    const apiOrigin = distribution.Origins.find((o: { CustomOriginConfig?: unknown }) => o.CustomOriginConfig);
    expect(apiOrigin.CustomOriginConfig.OriginReadTimeout).toBe(60);
    expect(KEEP_ALIVE.everyMs * 2).toBeLessThan(60_000);
    expect(distribution.CacheBehaviors.map((b: { PathPattern: string }) => b.PathPattern).sort()).toEqual([
      '/admin/*',
      '/v1/*',
    ]);
    for (const behavior of distribution.CacheBehaviors) {
      expect(behavior.ViewerProtocolPolicy).toBe('https-only');
      expect(behavior.AllowedMethods).toContain('POST');
      // CloudFront's managed CachingDisabled policy
      expect(behavior.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad');
    }
    site.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true, RestrictPublicBuckets: true }),
    });
    site.resourceCountIs('Custom::CDKBucketDeployment', 1);
  });

  it("with tenant inference profiles, lets admin make them, offboarding delete them, and only the tenant's own session call one", () => {
    const findings = withProfiles.annotations('Profiles').findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
    const site = withProfiles.template('Profiles');
    const statementsIn = (service: string) => {
      const fn = Object.values(site.findResources('AWS::Lambda::Function')).find(
        (f) => f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === service,
      );
      expect(fn?.Properties.Environment.Variables.INFERENCE_PROFILE_PREFIX).toBe('Profiles');
      const roleId = fn?.Properties.Role['Fn::GetAtt'][0];
      return Object.values(site.findResources('AWS::IAM::Policy'))
        .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(roleId))
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
    };
    const profileArn = /application-inference-profile\/\*/;
    const tagged = { StringLike: { 'aws:ResourceTag/tenantId': '?*' } };
    // No function calls a profile with its own role: the tenant session does, for its own tenant's only.
    expect(JSON.stringify(statementsIn('chat-completions'))).not.toMatch(profileArn);
    const sessions = tenantSessionStatements(site);
    const invoke = sessions.find((st) => profileArn.test(JSON.stringify(st.Resource)));
    expect(invoke?.Condition).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
      StringEquals: { 'aws:ResourceTag/tenantId': '${aws:PrincipalTag/tenantId}' },
    });
    const throughProfile = sessions.find((st) => JSON.stringify(st.Resource).includes('foundation-model/'));
    expect(Object.keys(throughProfile?.Condition as object)).toEqual(['ArnLike']);
    expect(JSON.stringify(throughProfile?.Condition)).toMatch(
      /bedrock:InferenceProfileArn.*application-inference-profile\/\*/,
    );
    expect(actionsOf(statementsIn('admin'))).toEqual(
      expect.arrayContaining([
        'bedrock:CreateInferenceProfile',
        'bedrock:ListInferenceProfiles',
        'bedrock:TagResource',
      ]),
    );
    expect(actionsOf(statementsIn('admin'))).not.toContain('bedrock:DeleteInferenceProfile');
    const remove = statementsIn('offboarding').find((st) => st.Action === 'bedrock:DeleteInferenceProfile');
    expect(remove?.Condition).toEqual(tagged);
    // Off (the default): no function can make, list, delete or call a tenant's profile.
    expect(json).not.toMatch(/bedrock:(Create|List|Delete)InferenceProfiles?|application-inference-profile/);
  });

  it('hard-codes no account or region', () => {
    expect(json).not.toMatch(/\b\d{12}\b/);
    expect(json).not.toMatch(/"(us|eu|ap)-[a-z]+-\d"/);
  });

  it('refuses an empty model catalog early', () => {
    expect(() => new PlatformStack(new App(), 'Empty', { config: { ...platformConfig(), models: {} } })).toThrow(
      /model catalog must name at least one model/,
    );
  });
});
