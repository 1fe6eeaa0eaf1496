import { STSClient } from '@aws-sdk/client-sts';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import { type LocalSts, startLocalSts } from '../../local/sts-server';

const ROLE_ARN = 'arn:aws:iam::000000000000:role/tenant-access';
const BASE = { accessKeyId: 'base', secretAccessKey: 'base' };

describe('StsTenantCredentials against the local STS', () => {
  let sts: LocalSts;
  let client: STSClient;
  let clock: number;
  let credentials: StsTenantCredentials;

  beforeAll(async () => {
    sts = await startLocalSts({
      roleArn: ROLE_ARN,
      requiredTags: ['tenantId'],
      platformCredentials: BASE,
      tenantKnown: async (tenantId) => tenantId !== 'unknown-co',
    });
    client = new STSClient({ region: 'eu-west-1', endpoint: sts.endpoint, credentials: BASE, maxAttempts: 1 });
  });
  beforeEach(() => {
    clock = Date.now();
    credentials = new StsTenantCredentials(client, ROLE_ARN, () => clock);
  });
  afterAll(async () => {
    client.destroy();
    await sts.close();
  });

  it('sends AssumeRole with the role, a per-tenant session name, 15 minutes and the tenantId tag', async () => {
    const issued = await credentials.credentialsFor('acme');
    expect(sts.requests.at(-1)).toEqual({
      Action: 'AssumeRole',
      Version: '2011-06-15',
      RoleArn: ROLE_ARN,
      RoleSessionName: 'tenant-acme',
      DurationSeconds: '900',
      'Tags.member.1.Key': 'tenantId',
      'Tags.member.1.Value': 'acme',
    });
    expect(issued.accessKeyId).toMatch(/^ASIA/);
    expect(issued.sessionToken).toBeTruthy();
    expect(sts.sessionOf(issued.accessKeyId)?.tags).toEqual({ tenantId: 'acme' });
  });

  it('caches per tenant until shortly before expiry, then renews', async () => {
    const before = sts.requests.length;
    const first = await credentials.credentialsFor('cache-a');
    expect(await credentials.credentialsFor('cache-a')).toBe(first);
    const other = await credentials.credentialsFor('cache-b');
    expect(other.accessKeyId).not.toBe(first.accessKeyId);
    expect(sts.requests.length - before).toBe(2);
    // 14 minutes later the 15-minute session is within the renewal margin
    clock += 14 * 60_000;
    const renewed = await credentials.credentialsFor('cache-a');
    expect(renewed.accessKeyId).not.toBe(first.accessKeyId);
    expect(sts.requests.length - before).toBe(3);
  });

  it('shares one AssumeRole between concurrent first requests of a tenant', async () => {
    const before = sts.requests.length;
    const all = await Promise.all(Array.from({ length: 10 }, () => credentials.credentialsFor('burst')));
    expect(new Set(all.map((c) => c.accessKeyId)).size).toBe(1);
    expect(sts.requests.length - before).toBe(1);
  });

  it('does not cache a refusal', async () => {
    const wrongRole = new StsTenantCredentials(client, 'arn:aws:iam::000000000000:role/other', () => clock);
    await expect(wrongRole.credentialsFor('acme')).rejects.toThrow(/not authorized/);
    await expect(wrongRole.credentialsFor('acme')).rejects.toThrow(/not authorized/);
    expect(sts.requests.filter((r) => r.RoleArn.endsWith('/other'))).toHaveLength(2);
  });

  it('issues sessions only to the platform, and only for tenants the registry holds', async () => {
    await expect(credentials.credentialsFor('unknown-co')).rejects.toThrow(/registry does not hold/);
    const stranger = new STSClient({
      region: 'eu-west-1',
      endpoint: sts.endpoint,
      credentials: { accessKeyId: 'stranger', secretAccessKey: 'base' },
      maxAttempts: 1,
    });
    const forged = new STSClient({
      region: 'eu-west-1',
      endpoint: sts.endpoint,
      credentials: { accessKeyId: 'base', secretAccessKey: 'guessed' },
      maxAttempts: 1,
    });
    for (const client of [stranger, forged]) {
      await expect(new StsTenantCredentials(client, ROLE_ARN).credentialsFor('acme')).rejects.toThrow(
        /security token included in the request is invalid/,
      );
      client.destroy();
    }
  });
});
