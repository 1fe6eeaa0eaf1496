import { App } from 'aws-cdk-lib';
import { type Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { PLACEMENT_EVENTS } from '../../contract/events';
import { addPlatformStacks } from '../../lib/platform-app';
import { stateMachineDefinitions } from '../support/templates';
import { budget, POOL, synthesized } from './synthesized';

// GIVEN the app as `cdk synth -c siloTenants=a-bank -c searchSizing=production` builds it (without bundling),
// synthesized once (see synthesized.ts)
let template: Template;
let annotations: Annotations;
let silo: Template;
beforeAll(async () => {
  const placement = await synthesized('placement');
  template = placement.template(POOL);
  annotations = placement.annotations(POOL);
  silo = placement.template(`${POOL}-silo-a-bank`);
}, budget('placement'));

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

/** The state machine of the pool whose definition names `state`, parsed (tokens as `token`). */
function definitionWith(state: string) {
  const found = stateMachineDefinitions(template)
    .map((machine) => machine.definition)
    .find((definition) => state in definition.States);
  if (!found) throw new Error(`no state machine with ${state}`);
  return found;
}

/** The statements of the policies attached to the build project's role. */
function buildStatements(): Statement[] {
  const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
  return statementsOfRole(project.Properties.ServiceRole['Fn::GetAtt'][0]);
}

/** The logical id of the pool's role whose description starts with `description`. */
function logicalIdOfRole(description: string): string {
  const found = Object.entries(template.findResources('AWS::IAM::Role')).find(([, role]) =>
    String(role.Properties.Description).startsWith(description),
  );
  if (!found) throw new Error(`no role described as ${description}`);
  return found[0];
}

/** The statements of the policies attached to the pool's role `roleId`. */
function statementsOfRole(roleId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

describe('PlacementPipeline (pool stack)', () => {
  it('passes cdk-nag AwsSolutions with no unsuppressed error or warning', () => {
    const findings = [
      ...annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
  });

  it("starts its direction's state machine on a requested move, with the event detail as its input", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: [PLACEMENT_EVENTS.source],
        'detail-type': [PLACEMENT_EVENTS.requested],
        detail: { to: ['silo'] },
      },
      Targets: [
        Match.objectLike({ InputPath: '$.detail', Arn: { Ref: Match.stringLikeRegexp('^PlacementStateMachine') } }),
      ],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: [PLACEMENT_EVENTS.source],
        'detail-type': [PLACEMENT_EVENTS.requested],
        detail: { to: ['pool'] },
      },
      Targets: [
        Match.objectLike({
          InputPath: '$.detail',
          Arn: { Ref: Match.stringLikeRegexp('^PlacementReturnStateMachine') },
        }),
      ],
    });
  });

  it('returns a silo tenant to the pool: copy, adopt keys, switch, wait for the pool cache, flip the silo, drain, catch up, decommission, finish', () => {
    const definition = definitionWith('SwitchToPool');
    const order: string[] = [];
    for (let state = definition.StartAt; state; state = definition.States[state].Next) order.push(state);
    expect(order).toEqual([
      'MarkReturning',
      'CopyData',
      'AdoptKeys',
      'SwitchToPool',
      'AdoptSwitchedKeys',
      'WaitForPoolCache',
      'FlipSilo',
      'AdoptLastKeys',
      'WaitForDrain',
      'CatchUp',
      'DecommissionSilo',
      'FinishReturn',
      'AnnounceReturned',
      'Returned',
    ]);
    // the builds read the silo's resources from the record the first step answered
    expect(definition.States.CopyData.Parameters).toMatchObject({
      EnvironmentVariablesOverride: expect.arrayContaining([
        { Name: 'SILO_RESOURCES', Type: 'PLAINTEXT', 'Value.$': '$.record.placement.siloResources' },
      ]),
    });
    // ...and where a silo forwards a returned tenant's calls: the pool's stage URL
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    const poolUrl = project.Properties.Environment.EnvironmentVariables.find(
      (variable: { Name: string }) => variable.Name === 'POOL_API_URL',
    );
    expect(JSON.stringify(poolUrl.Value)).toMatch(/"https:\/\/",\{"Ref":"TenantApi[0-9A-F]+"\},".execute-api."/);
  });

  it('deploys, copies while the pool serves, switches, waits out the drain, catches up, cleans, and announces; any failure is recorded', () => {
    const definition = definitionWith('DeploySilo');
    const order: string[] = [];
    for (let state = definition.StartAt; state; state = definition.States[state].Next) order.push(state);
    expect(order).toEqual([
      'MarkDeploying',
      'DeploySilo',
      'StartCopy',
      'CopyData',
      'SwitchToSilo',
      'WaitForDrain',
      'CatchUp',
      'CleanPoolCopy',
      'AnnounceComplete',
      'Placed',
    ]);
    const steps = {
      MarkDeploying: 'deploying',
      StartCopy: 'copy_start',
      CleanPoolCopy: 'clean',
    };
    for (const [state, step] of Object.entries(steps)) {
      expect(definition.States[state]).toMatchObject({
        Type: 'Task',
        Parameters: { Payload: { step, 'tenantId.$': '$.tenantId' } },
        ResultPath: '$.record',
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RecordFailure' }],
      });
    }
    expect(definition.States.StartCopy.Parameters.Payload['siloUrl.$']).toBe('$.build.siloUrl');
    expect(definition.States.WaitForDrain).toEqual({
      Type: 'Wait',
      TimestampPath: '$.switched.drainUntil',
      Next: 'CatchUp',
    });
    for (const [state, phase] of [
      ['DeploySilo', 'deploy'],
      ['CopyData', 'migrate'],
      ['SwitchToSilo', 'switch'],
      ['CatchUp', 'catch-up'],
    ]) {
      const build = definition.States[state];
      expect(build.Resource).toMatch(/:states:::codebuild:startBuild\.sync$/);
      expect(build.Parameters.EnvironmentVariablesOverride).toEqual(
        expect.arrayContaining([
          { Name: 'PHASE', Type: 'PLAINTEXT', Value: phase },
          { Name: 'TENANT_ID', Type: 'PLAINTEXT', 'Value.$': '$$.Execution.Input.tenantId' },
        ]),
      );
      expect(build.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RecordFailure' }]);
    }
    expect(definition.States.DeploySilo.ResultSelector['siloUrl.$']).toContain("@.Name == 'SILO_API_URL'");
    expect(definition.States.SwitchToSilo.ResultSelector['drainUntil.$']).toContain("@.Name == 'DRAIN_UNTIL'");
    for (const state of ['CopyData', 'SwitchToSilo', 'CatchUp']) {
      expect(definition.States[state].Parameters.EnvironmentVariablesOverride).toContainEqual({
        Name: 'SILO_RESOURCES',
        Type: 'PLAINTEXT',
        'Value.$': '$.build.siloResources',
      });
    }
    expect(definition.States.RecordFailure).toMatchObject({
      Parameters: { Payload: { step: 'fail', 'tenantId.$': '$$.Execution.Input.tenantId' } },
      Next: 'AnnounceFailure',
    });
    expect(definition.States.AnnounceFailure.Parameters.Entries[0]).toMatchObject({
      Source: PLACEMENT_EVENTS.source,
      DetailType: PLACEMENT_EVENTS.failed,
    });
    expect(definition.States.AnnounceComplete.Parameters.Entries[0].DetailType).toBe(PLACEMENT_EVENTS.completed);
    expect(definition.States.PlacementFailed.Type).toBe('Fail');
  });

  it("runs the build's every command under a profile whose credentials are the tenant's run session", () => {
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    const commands: string[] = JSON.parse(project.Properties.Source.BuildSpec).phases.build.commands;
    const profile = commands.indexOf('export AWS_PROFILE=tenant-run');
    expect(commands[profile - 1]).toContain(
      'credential_process = env -u AWS_PROFILE npm run --silent --prefix %s migrate-tenant -- session',
    );
    const firstAwsCall = commands.findIndex((c) =>
      /npx cdk|aws cloudformation|migrate-tenant -- (copy|purge|silo)/.test(c),
    );
    expect(profile).toBeGreaterThan(0);
    expect(profile).toBeLessThan(firstAwsCall);
  });

  it("builds silos with the pool's context and `cdk deploy` of the one tenant's stack, exporting its URL", () => {
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    const buildSpec = JSON.parse(project.Properties.Source.BuildSpec);
    const commands: string[] = buildSpec.phases.build.commands;
    expect(commands).toContain('echo "$PLATFORM_CONTEXT" > cdk.context.json');
    expect(commands.join('\n')).toContain(
      'npx cdk deploy "MultiTenantAiPlatform-silo-$TENANT_ID" -c siloTenants="$TENANT_ID" -c "silo.$TENANT_ID.region=$SILO_REGION" --require-approval never',
    );
    expect(commands.join('\n')).toContain('npm run --silent migrate-tenant -- copy "$TENANT_ID"');
    expect(commands.join('\n')).toContain('npm run --silent migrate-tenant -- catch-up "$TENANT_ID"');
    expect(buildSpec.env['exported-variables']).toEqual(['SILO_API_URL', 'SILO_RESOURCES', 'DRAIN_UNTIL']);
    expect(commands.join('\n')).toContain(
      'export DRAIN_UNTIL=$(npm run --silent migrate-tenant -- switch "$TENANT_ID")',
    );
    const variables = Object.fromEntries(
      project.Properties.Environment.EnvironmentVariables.map((v: { Name: string; Value: unknown }) => [
        v.Name,
        v.Value,
      ]),
    );
    const platformContext = JSON.parse(String(variables.PLATFORM_CONTEXT));
    expect(platformContext).toMatchObject({ searchSizing: 'production', 'silo.a-bank.region': 'eu-central-1' });
    expect(platformContext.siloTenants).toBeUndefined();
    expect(variables.TENANT_TABLE_NAME).toEqual({ Ref: expect.stringMatching(/^TenantRegistry/) });
  });

  it('refuses a silo region that is not a region name, before it goes into the bootstrap roles the builds may assume', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], 'silo.x-bank.region': 'eu-*' } });
    expect(() => addPlatformStacks(app)).toThrow(/a silo region is an AWS region name/);
  });

  it('runs every build as a session of its one tenant, which reaches no data without naming that tenant', () => {
    // The build's own role may do nothing but assume the run role (CodeBuild adds its logs and source).
    const runRoleId = logicalIdOfRole('A placement build for one tenant');
    const own = buildStatements().filter((s) => !JSON.stringify(s.Action).match(/logs:|codebuild:|s3:/));
    expect(own).toEqual([
      {
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [runRoleId, 'Arn'] },
      },
    ]);
    // Its sessions must carry exactly one tag, a non-empty tenantId.
    const trust = template.findResources('AWS::IAM::Role')[runRoleId].Properties.AssumeRolePolicyDocument.Statement;
    expect(trust).toContainEqual(
      expect.objectContaining({
        Action: 'sts:TagSession',
        Condition: {
          StringLike: { 'aws:RequestTag/tenantId': '?*' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenantId'] },
        },
      }),
    );
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    expect(project.Properties.Environment.EnvironmentVariables).toContainEqual({
      Name: 'TENANT_RUN_ROLE_ARN',
      Type: 'PLAINTEXT',
      Value: { 'Fn::GetAtt': [runRoleId, 'Arn'] },
    });
    // The session deploys through the default bootstrap's roles of the pool's and the silos' regions only.
    const run = statementsOfRole(runRoleId);
    const assumes = run.filter((s) => s.Action === 'sts:AssumeRole');
    expect(assumes.map((s) => JSON.stringify(s.Resource))).toEqual([
      expect.stringMatching(
        /:role\/cdk-hnb659fds-\*-".*\{"Ref":"AWS::Region"\}.*:role\/cdk-hnb659fds-\*-".*-eu-central-1"/,
      ),
    ]);
    // Every data statement names the session's tenant, in its resource or its condition.
    // (listing inference profiles, which IAM scopes to no resource, names no tenant's data: a retried
    // creation of a moving tenant's profiles finds its own by name)
    // A return's two writes to what the pool shares, each to one named resource: its ingest queue
    // (the worker runs a job only where the tenant's session finds its item) and, with a GPU
    // endpoint, that endpoint (each component created there must carry the tenant's tag, above).
    const toPool = run.filter((s) => s.Action === 'sqs:SendMessage');
    expect(toPool).toEqual([
      {
        Action: 'sqs:SendMessage',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^IngestJobs/), 'Arn'] },
      },
    ]);
    const data = run.filter(
      (s) => !['sts:AssumeRole', 'bedrock:ListInferenceProfiles', 'sqs:SendMessage'].includes(String(s.Action)),
    );
    expect(data.length).toBe(15);
    // ...a move copies the tenant's files: objects under its prefix only, their keys only through S3 for them
    expect(run).toContainEqual(
      expect.objectContaining({
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        Resource: { 'Fn::Join': ['', expect.arrayContaining([`:s3:::*/\${aws:PrincipalTag/tenantId}/*`])] },
      }),
    );
    expect(run).toContainEqual(
      expect.objectContaining({
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Condition: {
          StringLike: expect.objectContaining({
            'kms:EncryptionContext:aws:s3:arn': {
              'Fn::Join': ['', expect.arrayContaining([`:s3:::*/\${aws:PrincipalTag/tenantId}/*`])],
            },
          }),
        },
      }),
    );
    // ...a move creates adapter components only with its tenant's tag, on an endpoint tagged with it
    expect(run).toContainEqual(
      expect.objectContaining({
        Action: ['sagemaker:CreateInferenceComponent', 'sagemaker:AddTags'],
        Condition: { StringEquals: { 'aws:RequestTag/tenantId': `\${aws:PrincipalTag/tenantId}` } },
      }),
    );
    expect(run).toContainEqual(
      expect.objectContaining({
        Action: 'sagemaker:CreateInferenceComponent',
        Condition: { StringEquals: { 'aws:ResourceTag/tenantId': `\${aws:PrincipalTag/tenantId}` } },
      }),
    );
    // ...the decommission reads its own silo stack's status, and no other stack's
    expect(run).toContainEqual(
      expect.objectContaining({
        Action: 'cloudformation:DescribeStacks',
        Resource: {
          'Fn::Join': [
            '',
            expect.arrayContaining([`:stack/MultiTenantAiPlatform-silo-\${aws:PrincipalTag/tenantId}/*`]),
          ],
        },
      }),
    );
    for (const statement of data) {
      const named = JSON.stringify([statement.Resource, statement.Condition]).includes('aws:PrincipalTag/tenantId');
      expect([statement.Action, named]).toEqual([statement.Action, true]);
    }
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'events:PutEvents',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':event-bus/default'])] },
          }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp('TenantApiAdmin') }],
    });
  });
});

describe('offboarding a silo tenant (pool stack)', () => {
  // GIVEN the silo's decommission deploy (`-c silo.a-bank.decommission=true`)
  let decommissioned: Template;
  beforeAll(async () => {
    decommissioned = (await synthesized('decommissioned')).template(`${POOL}-silo-a-bank`);
  }, budget('decommissioned'));

  it('purges it in its silo and destroys the silo stack before the pool purges and tombstones', () => {
    const definition = definitionWith('ServedBySilo');
    expect(definition.States.WaitForDrain.Next).toBe('ServedBySilo');
    expect(definition.States.ServedBySilo).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.silo', BooleanEquals: true, Next: 'DecommissionSilo' }],
      Default: 'PurgeTenantData',
    });
    expect(definition.States.DecommissionSilo).toMatchObject({
      Resource: expect.stringMatching(/:states:::codebuild:startBuild\.sync$/),
      Next: 'PurgeTenantData',
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'AnnounceFailure' }],
    });
    expect(definition.States.DecommissionSilo.Parameters.EnvironmentVariablesOverride).toContainEqual({
      Name: 'PHASE',
      Type: 'PLAINTEXT',
      Value: 'decommission',
    });
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    const commands: string = JSON.parse(project.Properties.Source.BuildSpec).phases.build.commands.join('\n');
    const decommission =
      '-c siloTenants="$TENANT_ID" -c "silo.$TENANT_ID.region=$SILO_REGION" -c "silo.$TENANT_ID.decommission=true"';
    expect(commands).toContain('npm run --silent migrate-tenant -- purge "$TENANT_ID"');
    // (and, first of all, its suspension at the silo, the offboarding's first step)
    expect(commands).toContain(
      'if [ "$PHASE" = suspend ]; then npm run --silent migrate-tenant -- suspend "$TENANT_ID"; fi',
    );
    expect(commands).toContain(`npx cdk deploy "MultiTenantAiPlatform-silo-$TENANT_ID" ${decommission}`);
    expect(commands).toContain(`npx cdk destroy "MultiTenantAiPlatform-silo-$TENANT_ID" ${decommission} --force`);
  });

  it('decommissions at any moment of a move: waits for the silo stack to settle, and leaves alone one never created', () => {
    const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
    const commands: string[] = JSON.parse(project.Properties.Source.BuildSpec).phases.build.commands;
    const decommission = commands.filter((c) =>
      /^if \[ "\$PHASE" = (deploy \] \|\| \[ "\$PHASE" = )?decommission \]/.test(c),
    );
    const at = (pattern: RegExp) => decommission.findIndex((c) => pattern.test(c));
    // the silo's region (where it was deployed, else the one its move asked for, else its context
    // entry, else the pool's), for the deploy and the decommission alike
    expect(decommission[at(/SILO_REGION=/)]).toContain('migrate-tenant -- silo-region "$TENANT_ID"');
    // a bounded wait (120 checks 30 s apart: an hour) while the stack is in any *_IN_PROGRESS state
    const wait = decommission[at(/describe-stacks/)];
    expect(wait).toContain(
      `aws cloudformation describe-stacks --region "$SILO_REGION" --stack-name "MultiTenantAiPlatform-silo-$TENANT_ID" --query 'Stacks[0].StackStatus' --output text`,
    );
    expect(wait).toContain('for i in $(seq 1 120)');
    expect(wait).toContain('*_IN_PROGRESS) echo');
    expect(wait).toContain('sleep 30');
    // a stack that does not exist is NONE; any other error, or a stack still in progress, fails the build
    expect(wait).toContain("grep -q 'does not exist' stack-status.err && echo NONE");
    expect(decommission[at(/case "\$SILO_STACK_STATUS" in ""\|\*_IN_PROGRESS\)/)]).toContain('false');
    // the order: settle, purge, then deploy and destroy, both only for a stack that exists
    const [settled, purge, deploy, destroy] = [
      at(/describe-stacks/),
      at(/migrate-tenant -- purge/),
      at(/npx cdk deploy/),
      at(/npx cdk destroy/),
    ];
    expect(settled).toBeGreaterThan(-1);
    expect(settled).toBeLessThan(purge);
    expect(purge).toBeLessThan(deploy);
    expect(deploy).toBeLessThan(destroy);
    for (const step of [deploy, destroy]) expect(decommission[step]).toContain('[ "$SILO_STACK_STATUS" != NONE ]');
  });

  it("keeps a silo's data (retained, deletion-protected) until the decommission deploy lets it go", () => {
    const tables = Object.values(silo.findResources('AWS::DynamoDB::Table'));
    expect(tables).toHaveLength(4);
    for (const table of tables) {
      expect(table).toMatchObject({ DeletionPolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
    }
    for (const type of ['AWS::DynamoDB::Table', 'AWS::OpenSearchService::Domain', 'AWS::KMS::Key']) {
      for (const resource of Object.values(decommissioned.findResources(type))) {
        expect(resource.DeletionPolicy).toBe('Delete');
        expect(resource.Properties.DeletionProtectionEnabled ?? false).toBe(false);
      }
    }
  });
});

describe('a silo plane', () => {
  it('serves its one tenant: the functions know it, and tenant sessions may carry no other tag', () => {
    silo.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SILO_TENANT_ID: 'a-bank' }) },
    });
    silo.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sts:TagSession',
            Condition: Match.objectLike({ StringEquals: { 'aws:RequestTag/tenantId': 'a-bank' } }),
          }),
        ]),
      },
    });
  });

  it('has no pipeline of its own, and reports where its stores are for the copy', () => {
    silo.resourceCountIs('AWS::CodeBuild::Project', 0);
    // Its rules are the budget check's; none starts a move.
    expect(JSON.stringify(silo.findResources('AWS::Events::Rule'))).not.toContain('placement');
    silo.resourceCountIs('AWS::Events::Rule', 2);
    const outputs = silo.findOutputs('*', { Description: Match.stringLikeRegexp('placement pipeline') });
    expect(Object.keys(outputs)).toHaveLength(1);
    const resources = JSON.stringify(Object.values(outputs)[0].Value);
    for (const key of [
      'region',
      'apiUrl',
      'tenantTableName',
      'ledgerTableName',
      'opensearchEndpoint',
      'ingestQueueUrl',
    ]) {
      expect(resources).toContain(`\\"${key}\\"`);
    }
  });
});
