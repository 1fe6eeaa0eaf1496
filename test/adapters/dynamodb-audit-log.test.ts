import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AUDIT_BY_REQUEST_INDEX } from '../../contract/tables';
import { DynamoDbAuditLog } from '../../lambdas/adapters/dynamodb-audit-log';
import type { AuditEntry } from '../../lambdas/core/audit';
import { type LocalDynamoDb, startLocalDynamoDb } from '../../local/dynamodb-server';
import { tenantContext } from '../support/tenant';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const DAY_MS = 86_400_000;
const now = Date.UTC(2026, 10, 24, 12, 0, 0);

const entry = (requestId: string, atMs: number): AuditEntry => ({
  requestId,
  at: new Date(atMs).toISOString(),
  principal: { type: 'api_key', id: 'k1' },
  route: 'POST /v1/chat/completions',
  status: 200,
  model: 'nova-micro',
  inputTokens: 3,
  outputTokens: 4,
});

describe('DynamoDbAuditLog against dynalite', () => {
  let dynamodb: LocalDynamoDb;
  let db: DynamoDBDocumentClient;
  let audit: DynamoDbAuditLog;
  const tenant = tenantContext('audited-co');

  beforeAll(async () => {
    dynamodb = await startLocalDynamoDb({
      tables: [{ name: 'audit', indexes: [AUDIT_BY_REQUEST_INDEX] }],
      credentials,
    });
    db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodb.endpoint, credentials }),
    );
    audit = new DynamoDbAuditLog(
      () => db,
      'audit',
      30,
      () => now,
    );
    // five records a minute apart, and one older than the 30-day retention
    for (let i = 0; i < 5; i++) await audit.record(tenant, entry(`req-${i}`, now - (5 - i) * 60_000));
    await audit.record(tenant, entry('req-expired', now - 31 * DAY_MS));
    await audit.record(tenantContext('other-co'), entry('req-other', now - 1000));
  });
  afterAll(async () => {
    db.destroy();
    await dynamodb.close();
  });

  it('pages newest first with an opaque cursor, skipping expired records', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit.list(tenant, { limit: 2, cursor });
      seen.push(...page.entries.map((e) => e.requestId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['req-4', 'req-3', 'req-2', 'req-1', 'req-0']);
  });

  it('finds a record by request id in the caller partition only', async () => {
    expect(await audit.get(tenant, 'req-2')).toEqual(entry('req-2', now - 3 * 60_000));
    expect(await audit.get(tenant, 'req-other')).toBeUndefined();
    expect(await audit.get(tenant, 'req-expired')).toBeUndefined();
  });

  it('refuses a cursor that is not one of its own', async () => {
    await expect(
      audit.list(tenant, { limit: 2, cursor: Buffer.from('QUOTA#2026-11').toString('base64url') }),
    ).rejects.toMatchObject({
      code: 'invalid_request',
    });
  });

  it('deletes all of one tenant and reports the count', async () => {
    expect(await audit.deleteAll('audited-co')).toBe(6);
    expect((await audit.list(tenant, { limit: 10 })).entries).toEqual([]);
    expect(await audit.get(tenantContext('other-co'), 'req-other')).toMatchObject({ requestId: 'req-other' });
  });
});
