import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { startLocalSts } from '../../local/sts-server';
import { runPlacementBuild } from '../../pipeline/placement-build';

/** The pipeline's build commands that read `cdk deploy --outputs-file`, on a file as the CDK CLI writes it. */
describe('placement build commands', () => {
  const resources = {
    region: 'eu-central-1',
    apiUrl: 'https://silo-api.example/prod',
    tenantTableName: 'silo-tenants',
    ledgerTableName: 'silo-ledger',
    auditTableName: 'silo-audit',
    documentTableName: 'silo-documents',
    opensearchEndpoint: 'https://silo-search.example',
    vectorBucketName: 'platform-silo-vectors',
    ingestQueueUrl: 'https://silo-queue.example/111111111111/silo-ingest',
  };
  const dir = mkdtempSync(join(tmpdir(), 'outputs-'));
  const outputsFile = join(dir, 'silo-outputs.json');
  writeFileSync(
    outputsFile,
    JSON.stringify({
      'Platform-silo-a-bank': {
        DefaultTenantApiOpenAiBaseUrl1234: `${resources.apiUrl}/v1`,
        DefaultPlaneResourcesABCD: JSON.stringify(resources),
      },
    }),
  );
  const run = async (...args: string[]) => {
    const lines: string[] = [];
    await runPlacementBuild(args, {}, (line) => lines.push(line));
    return lines;
  };

  it('prints the silo URL and resources the state machine passes on', async () => {
    expect(await run('silo-url', outputsFile)).toEqual([resources.apiUrl]);
    expect(JSON.parse((await run('silo-resources', outputsFile))[0])).toEqual(resources);
  });

  it('refuses an outputs file without the resources output, and a copy without SILO_RESOURCES', async () => {
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, JSON.stringify({ 'Platform-silo-a-bank': {} }));
    await expect(run('silo-url', empty)).rejects.toThrow(/no PlaneResources output/);
    await expect(run('copy', 'a-bank')).rejects.toThrow();
    await expect(run('deploy')).rejects.toThrow(/usage/);
  });

  it("skips the silo purge of a tenant whose move ended before the copy recorded the silo's resources", async () => {
    const lines: string[] = [];
    const record = {
      tenantId: 'a-bank',
      status: 'offboarding',
      placement: { current: 'pool', desired: 'silo', status: 'failed', migrated: {}, updatedAt: '2025-01-01' },
    };
    const registry = { getTenant: async (id: string) => (id === 'a-bank' ? record : undefined) };
    await runPlacementBuild(
      ['purge', 'a-bank'],
      {},
      (line) => lines.push(line),
      undefined,
      () => registry as never,
    );
    expect(lines).toEqual([expect.stringMatching(/never recorded .*no data to purge there, skipped/)]);
    await runPlacementBuild(
      ['suspend', 'a-bank'],
      {},
      (line) => lines.push(line),
      undefined,
      () => registry as never,
    );
    expect(lines[1]).toMatch(/never recorded: no silo serves it, skipped/);
    await expect(
      runPlacementBuild(
        ['purge', 'b-bank'],
        {},
        () => undefined,
        undefined,
        () => registry as never,
      ),
    ).rejects.toThrow(/no tenant 'b-bank'/);
  });

  it("reads the move's direction from the pool's record: a return needs the pool's URL, where the silo forwards", async () => {
    const record = {
      tenantId: 'a-bank',
      status: 'active',
      placement: { current: 'silo', desired: 'pool', status: 'copying', migrated: {}, updatedAt: '2025-01-01' },
    };
    const registry = { getTenant: async () => record };
    const copy = (env: NodeJS.ProcessEnv) =>
      runPlacementBuild(
        ['copy', 'a-bank'],
        env,
        () => undefined,
        undefined,
        () => registry as never,
      );
    await expect(copy({ SILO_RESOURCES: JSON.stringify(resources) })).rejects.toThrow(
      /a return needs POOL_API_URL: where the silo forwards the tenant's calls/,
    );
  });

  it("prints the silo's region: where it was deployed, else the one its move asked for, else its configured one, else the pool's", async () => {
    const placement = { current: 'pool', desired: 'silo', status: 'deploying', migrated: {}, updatedAt: '2025-01-01' };
    const region = async (record: object, env: NodeJS.ProcessEnv = {}) => {
      const lines: string[] = [];
      const registry = { getTenant: async () => record };
      await runPlacementBuild(
        ['silo-region', 'a-bank'],
        env,
        (line) => lines.push(line),
        undefined,
        () => registry as never,
      );
      return lines;
    };
    const context = {
      PLATFORM_CONTEXT: JSON.stringify({ 'silo.a-bank.region': 'eu-west-1' }),
      AWS_REGION: 'us-east-1',
    };
    expect(await region({ placement: { ...placement, siloResources: JSON.stringify(resources) } }, context)).toEqual([
      'eu-central-1',
    ]);
    expect(await region({ placement: { ...placement, siloRegion: 'ap-south-1' } }, context)).toEqual(['ap-south-1']);
    expect(await region({ placement }, context)).toEqual(['eu-west-1']);
    expect(await region({ placement }, { AWS_REGION: 'us-east-1' })).toEqual(['us-east-1']);
  });

  it("prints, as the build profile's credential_process, a session of the run role tagged with its one tenant", async () => {
    const roleArn = 'arn:aws:iam::111111111111:role/placement-run';
    const buildCredentials = { accessKeyId: 'AKIABUILD', secretAccessKey: 'build-secret' };
    const sts = await startLocalSts({
      roleArn,
      requiredTags: ['tenantId'],
      platformCredentials: buildCredentials,
      tenantKnown: async (tenantId) => tenantId === 'a-bank',
    });
    try {
      const client = () =>
        new STSClient({ region: 'eu-central-1', endpoint: sts.endpoint, credentials: buildCredentials });
      const lines: string[] = [];
      await runPlacementBuild(
        ['session'],
        { TENANT_RUN_ROLE_ARN: roleArn, TENANT_ID: 'a-bank' },
        (l) => lines.push(l),
        client,
      );
      const printed = JSON.parse(lines[0]);
      expect(printed).toEqual({
        Version: 1,
        AccessKeyId: expect.stringMatching(/^ASIA/),
        SecretAccessKey: expect.any(String),
        SessionToken: expect.any(String),
        Expiration: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      // The session is the tenant's: the policies that name `${aws:PrincipalTag/tenantId}` see a-bank.
      expect(sts.sessionOf(printed.AccessKeyId)?.tags).toEqual({ tenantId: 'a-bank' });
      expect(sts.requests).toEqual([
        expect.objectContaining({ Action: 'AssumeRole', RoleArn: roleArn, 'Tags.member.1.Value': 'a-bank' }),
      ]);
      // Without the tenant there is no session, so no command runs with the build's own (empty) grants.
      await expect(
        runPlacementBuild(['session'], { TENANT_RUN_ROLE_ARN: roleArn }, () => undefined, client),
      ).rejects.toThrow(/TENANT_ID/);
    } finally {
      await sts.close();
    }
  });
});
