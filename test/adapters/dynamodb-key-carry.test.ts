import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbTenantRegistry } from '../../lambdas/adapters/dynamodb-tenant-registry';
import type { StoredApiKey } from '../../lambdas/core/ports';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';

/**
 * A return's keys on dynalite: the build's session carries them into the tenant's own list (all
 * `dynamodb:LeadingKeys` lets it write), and the pool's step makes them keys, never another
 * tenant's, never bringing a revoked one back.
 */
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const key = (keyId: string, tenantId: string, status: StoredApiKey['status'] = 'active'): StoredApiKey => ({
  keyId,
  tenantId,
  secretHash: `hash-of-${keyId}-${tenantId}`,
  status,
  createdAt: '2026-12-01T00:00:00.000Z',
});

describe('carrying a returning tenant’s API keys into the pool', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  let registry: DynamoDbTenantRegistry;
  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({ tables: [{ name: 'tenants' }], credentials });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    registry = new DynamoDbTenantRegistry(db, 'tenants');
  });
  afterAll(() => dynamodb.close());

  it('writes only the tenant’s own partition, then adopts: new keys, a revocation, never a revoked key back, never another tenant’s', async () => {
    await registry.putApiKey(key('k-old', 'back-co'));
    await registry.putApiKey(key('k-revoked-here', 'back-co'));
    await registry.putApiKey(key('k-taken', 'other-co'));
    // revoked at the pool after the switch (the safe direction is legal while the tenant returns)
    await registry.putApiKey(key('k-revoked-here', 'back-co', 'revoked'));
    const before = (await db.send(new ScanCommand({ TableName: 'tenants' }))).Items ?? [];

    await registry.carryApiKeys('back-co', [
      key('k-old', 'back-co', 'revoked'),
      key('k-new', 'back-co'),
      key('k-revoked-here', 'back-co'),
      key('k-taken', 'back-co'),
    ]);
    const carried = (await db.send(new ScanCommand({ TableName: 'tenants' }))).Items ?? [];
    const changed = carried.filter((item) => !before.some((old) => JSON.stringify(old) === JSON.stringify(item)));
    // every item the carry wrote is in the tenant's own partition, the only one its session may write
    expect(changed.map((item) => item.pk)).toEqual(changed.map(() => 'TENANT#back-co'));
    expect(changed.length).toBe(3);
    expect(await registry.getApiKey('k-new')).toBeUndefined();

    expect(await registry.adoptCarriedKeys('back-co')).toBe(3);
    expect(await registry.getApiKey('k-new')).toEqual(key('k-new', 'back-co'));
    expect((await registry.getApiKey('k-old'))?.status).toBe('revoked');
    expect((await registry.getApiKey('k-revoked-here'))?.status).toBe('revoked');
    expect(await registry.getApiKey('k-taken')).toEqual(key('k-taken', 'other-co'));
    const listed = await registry.listApiKeys('back-co');
    expect(listed.map((k) => [k.keyId, k.status]).sort()).toEqual([
      ['k-new', 'active'],
      ['k-old', 'revoked'],
      ['k-revoked-here', 'revoked'],
    ]);
    // nothing left carried: a second adoption has nothing to do, and the hashes are off the tenant's list
    expect(await registry.adoptCarriedKeys('back-co')).toBe(0);
    const entries = (await db.send(new ScanCommand({ TableName: 'tenants' }))).Items ?? [];
    expect(entries.filter((item) => 'carriedHash' in item)).toEqual([]);
    // offboarding the tenant deletes its keys and never the other tenant's
    expect(await registry.deleteApiKeys('back-co')).toBe(3);
    expect(await registry.getApiKey('k-taken')).toEqual(key('k-taken', 'other-co'));
  });
});
