import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { type Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { siloTenants } from '../../lib/config';
import { S3VECTORS_INDEXING_PRINCIPAL } from '../../lib/constructs/vector-bucket';
import { addPlatformStacks } from '../../lib/platform-app';
import { budget, SILO_CONTEXT, type Synthesized, synthesized } from './synthesized';

// GIVEN the app as `cdk synth -c siloTenants=a-bank,b-health` builds it (without bundling), cdk-nag on,
// synthesized once (see synthesized.ts)
const context = SILO_CONTEXT;
let app: Synthesized;
let template: Template;
let annotations: Annotations;
let bHealth: Template;
let keyId: string;
let keyArn: { 'Fn::GetAtt': string[] };
beforeAll(async () => {
  app = await synthesized('silos');
  template = app.template('Platform-silo-a-bank');
  annotations = app.annotations('Platform-silo-a-bank');
  bHealth = app.template('Platform-silo-b-health');
  keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0];
  keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] };
}, budget('silos'));

describe("every function's environment", () => {
  let largest: Synthesized;
  beforeAll(async () => {
    largest = await synthesized('largest');
  }, budget('largest'));

  it("stays under 3.5 KB of Lambda's 4 KB in the largest configuration, the large static settings in the bundle", () => {
    // GIVEN every option on, and a silo with a GPU endpoint of its own
    const stacks = largest.stackNames.map((name) => largest.template(name));
    // A reference resolved at deploy (a table name, an ARN, a URL) counted as 200 bytes, more than any of them
    const bytes = (value: unknown) => (typeof value === 'string' ? value.length : 200);
    const sizes = stacks.flatMap((stack) =>
      Object.values(stack.findResources('AWS::Lambda::Function')).map((fn) => {
        const variables: Record<string, unknown> = fn.Properties.Environment?.Variables ?? {};
        expect(Object.keys(variables)).not.toContain('MODEL_CATALOG');
        return Object.entries(variables).reduce((sum, [key, value]) => sum + key.length + bytes(value), 0);
      }),
    );
    expect(sizes.length).toBeGreaterThan(25);
    expect(Math.max(...sizes)).toBeLessThan(3.5 * 1024);
  });
});

describe('every table', () => {
  it('expires items by TTL on expiresAt, in the pool and in a silo (sessions, cache entries, stored responses too)', () => {
    const pool = app.template('Platform');
    const tables = [pool, template].flatMap((stack) => Object.values(stack.findResources('AWS::DynamoDB::Table')));
    expect(tables.length).toBe(8);
    for (const table of tables) {
      expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    }
  });
});

describe('SiloTenantStack', () => {
  // GIVEN `cdk synth -c siloTenants=c-bank -c silo.c-bank.concurrency=25`
  let sized: Synthesized;
  beforeAll(async () => {
    sized = await synthesized('siloConcurrency');
  }, budget('siloConcurrency'));

  it('places a silo in the region its entry names, the pool in its own', () => {
    // Constructed only, in a scratch directory (its assets staged there)
    const outdir = mkdtempSync(join(tmpdir(), 'placed-'));
    try {
      const placed = new App({
        outdir,
        context: {
          'aws:cdk:bundling-stacks': [],
          account: '111111111111',
          region: 'eu-west-1',
          siloTenants: 'c-bank,d-health',
          'silo.c-bank.region': 'eu-central-1',
        },
      });
      const { pool, silos: stacks } = addPlatformStacks(placed);
      expect([pool.region, ...stacks.map((stack) => stack.region)]).toEqual(['eu-west-1', 'eu-central-1', 'eu-west-1']);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
    expect(() => siloTenants((key) => ({ siloTenants: 'e-bank', 'silo.e-bank.region': 'mars' })[key])).toThrow(
      /region/,
    );
  });

  it('reads its tenants and their sizes from context, and refuses ids that are not tenant ids', () => {
    expect(siloTenants((key) => context[key]).map((silo) => [silo.tenantId, silo.search.dataNodes])).toEqual([
      ['a-bank', 1],
      ['b-health', 2],
    ]);
    expect(siloTenants()).toEqual([]);
    expect(() => siloTenants((key) => ({ siloTenants: 'Bad_Id' })[key])).toThrow(/silo tenant ids match/);
  });

  it('encrypts every store of the tenant with its own rotating customer-managed key', () => {
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    const tables = Object.values(template.findResources('AWS::DynamoDB::Table'));
    expect(tables).toHaveLength(4);
    for (const table of tables) {
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn });
      expect(table.DeletionPolicy).toBe('Retain');
    }
    const queues = Object.values(template.findResources('AWS::SQS::Queue'));
    expect(queues).toHaveLength(2);
    for (const queue of queues) expect(queue.Properties.KmsMasterKeyId).toEqual(keyArn);
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      EncryptionAtRestOptions: { Enabled: true, KmsKeyId: { Ref: keyId } },
    });
    template.hasResourceProperties('AWS::S3Vectors::VectorBucket', {
      EncryptionConfiguration: { SseType: 'aws:kms', KmsKeyArn: keyArn },
    });
    // and every log group: functions, state machines, the search domain, the API's access logs
    const logGroups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(logGroups.length).toBeGreaterThan(10);
    for (const group of logGroups) expect(group.Properties.KmsKeyId).toEqual(keyArn);
    // S3 Vectors' indexing may decrypt for this account's bucket only.
    const keyPolicy = JSON.stringify(template.findResources('AWS::KMS::Key')[keyId].Properties.KeyPolicy);
    expect(keyPolicy).toContain(S3VECTORS_INDEXING_PRINCIPAL);
    expect(keyPolicy).toMatch(/"aws:SourceAccount"/);
  });

  it('admits AWS services to its key and its topic only for its own account or resources (no confused deputy)', () => {
    const statements = [
      ...Object.values(template.findResources('AWS::KMS::Key')).flatMap((key) => key.Properties.KeyPolicy.Statement),
      ...Object.values(template.findResources('AWS::SNS::TopicPolicy')).flatMap(
        (policy) => policy.Properties.PolicyDocument.Statement,
      ),
    ] as { Principal?: { Service?: unknown }; Condition?: Record<string, Record<string, unknown>> }[];
    const forServices = statements.filter((statement) => statement.Principal?.Service !== undefined);
    expect(forServices.length).toBeGreaterThan(2);
    for (const statement of forServices) {
      const keys = Object.values(statement.Condition ?? {}).flatMap((condition) => Object.keys(condition));
      const scoped = ['aws:SourceAccount', 'aws:SourceArn', 'kms:EncryptionContext:aws:logs:arn'];
      expect([statement.Principal, keys.some((key) => scoped.includes(key))]).toEqual([statement.Principal, true]);
    }
  });

  it('lets the tenant sessions and the functions that use its tables use its key, and nothing else', () => {
    const keyUsers = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
      JSON.stringify(policy.Properties.PolicyDocument).includes(`"${keyId}"`),
    );
    // tenant sessions, authorizer, admin, offboarding steps, budget check; the documents function and worker for
    // the queue; the budget rule's role, which publishes to the alarm topic; Bedrock's batch jobs, for their files
    const roles = keyUsers.flatMap((policy) => policy.Properties.Roles.map((role: { Ref: string }) => role.Ref)).sort();
    expect(roles).toHaveLength(9);
    expect(roles.join()).toMatch(/BatchInferenceServiceRole/);
    expect(roles.join()).toMatch(/TenantAccess/);
    expect(roles.join()).not.toMatch(/ChatCompletions|Embeddings|Retrieve|Usage|Audit(?!Log)/);
  });

  it('tags every resource that takes tags with the tenant id, for cost allocation', () => {
    for (const type of ['AWS::DynamoDB::Table', 'AWS::Lambda::Function', 'AWS::SQS::Queue', 'AWS::KMS::Key']) {
      for (const resource of Object.values(template.findResources(type))) {
        expect(resource.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'tenantId', Value: 'a-bank' }]));
      }
    }
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      Tags: Match.arrayWith([{ Key: 'tenantId', Value: 'a-bank' }]),
    });
  });

  it('stands alone: its own API URL, no reference to the pool or another silo, under 500 resources', () => {
    const json = JSON.stringify(template.toJSON());
    expect(json).not.toMatch(/Fn::ImportValue/);
    expect(json).not.toMatch(/b-health|Platform-silo-b-health/);
    expect(Object.keys(template.toJSON().Resources).length).toBeLessThan(500);
    template.hasOutput('*', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    expect(JSON.stringify(bHealth.toJSON())).not.toMatch(/a-bank/);
  });

  it('has alarms of its own on a topic under its own key, and reserves the concurrency its entry names', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    // What each alarm watches: its metric, or the metrics its expression sums.
    const watched = alarms.map(
      (alarm) =>
        alarm.Properties.MetricName ??
        [
          ...new Set(
            alarm.Properties.Metrics.flatMap((m: { MetricStat?: { Metric: { MetricName: string } } }) =>
              m.MetricStat ? [m.MetricStat.Metric.MetricName] : [],
            ),
          ),
        ].join('+'),
    );
    // 12 functions: their errors and throttles in two alarms each (an alarm sums at most 10 metrics)
    expect(watched.sort()).toEqual([
      '5XXError',
      'ApproximateNumberOfMessagesVisible',
      'ClusterIndexWritesBlocked',
      'ClusterStatus.red',
      'Errors',
      'Errors',
      'Errors',
      'ExecutionsFailed',
      'ThrottledRequests',
      'Throttles',
      'Throttles',
    ]);
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: keyArn });

    const functions = Object.values(
      sized.template('MultiTenantAiPlatform-silo-c-bank').findResources('AWS::Lambda::Function'),
    );
    const reserved = functions
      .filter((fn) => fn.Properties.ReservedConcurrentExecutions === 25)
      .map((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME)
      .sort();
    expect(reserved).toEqual([
      'audit',
      'chat-completions',
      'documents',
      'embeddings',
      'models',
      'retrieve',
      'sessions',
      'usage',
    ]);
    expect(() => siloTenants((key) => ({ siloTenants: 'c-bank', 'silo.c-bank.concurrency': '0' })[key])).toThrow();
  });

  it('passes cdk-nag AwsSolutions with no unsuppressed error or warning', () => {
    const findings = [
      ...annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
  });
});
