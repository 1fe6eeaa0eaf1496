import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { DynamoDbLedger } from '../../lambdas/adapters/dynamodb-ledger';
import type { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import type { TenantScopedDynamoDb } from '../../lambdas/adapters/tenant-scoped-dynamodb';
import { leadingKeys } from '../../local/dynamodb-front';
import type { LocalPlatform } from '../../local/platform';
import { call, localDynamoDb, onboard, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 };

describe('tenant-scoped credentials, enforced below the handlers (local STS + LeadingKeys front)', () => {
  let platform: LocalPlatform;
  let scoped: TenantScopedDynamoDb;
  let credentials: StsTenantCredentials;
  let ownRole: DynamoDBDocumentClient;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ scoped, credentials, ownRole } = localDynamoDb(platform));
    for (const id of ['alpha-co', 'bravo-co']) {
      const { apiKey } = await onboard(platform, id);
      expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(
        200,
      );
      expect((await call(platform, 'GET', '/v1/usage', { credential: apiKey })).status).toBe(200);
      expect((await call(platform, 'GET', '/v1/audit', { credential: apiKey })).status).toBe(200);
    }
  });
  afterAll(() => platform.close());

  it("made every ledger and audit call of the requests above with that tenant's own session", () => {
    const tenantData = platform.dynamodbDecisions.filter((d) => d.tables.some((t) => t === 'ledger' || t === 'audit'));
    expect(tenantData.length).toBeGreaterThanOrEqual(2 * 6);
    for (const decision of tenantData) {
      expect(decision).toMatchObject({ allowed: true, leadingKeys: [`TENANT#${decision.tenantTag}`] });
    }
    expect(new Set(tenantData.map((d) => d.tenantTag))).toEqual(new Set(['alpha-co', 'bravo-co']));
  });

  it("stops a handler bug that names another tenant's key: the ledger with alpha's client reading bravo", async () => {
    // GIVEN a ledger wired wrongly: whatever tenant it is asked about, it signs as alpha
    const buggyLedger = new DynamoDbLedger(() => scoped('alpha-co'), 'ledger', { reservationTtlMs: 300_000 });
    // WHEN it reads bravo's usage THEN IAM (here, the LeadingKeys front) refuses
    await expect(
      buggyLedger.usage(tenantContext('bravo-co'), { from: '2000-01-01', to: '2999-12-31' }),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(
      scoped('alpha-co').send(
        new GetCommand({ TableName: 'ledger', Key: { pk: 'TENANT#bravo-co', sk: 'QUOTA#2026-11' } }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(
      scoped('alpha-co').send(
        new BatchWriteCommand({
          RequestItems: {
            audit: [
              { PutRequest: { Item: { pk: 'TENANT#alpha-co', sk: 'AUDIT#x', requestId: 'x' } } },
              { DeleteRequest: { Key: { pk: 'TENANT#bravo-co', sk: 'AUDIT#y' } } },
            ],
          },
        }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('lets a tenant session reach its own partition and nothing else: no Scan, the registry read-only', async () => {
    const own = await scoped('bravo-co').send(
      new QueryCommand({
        TableName: 'ledger',
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': 'pk' },
        ExpressionAttributeValues: { ':p': 'TENANT#bravo-co' },
      }),
    );
    expect(own.Items?.length).toBeGreaterThan(0);
    expect(own.Items?.every((item) => item.pk === 'TENANT#bravo-co')).toBe(true);
    await expect(scoped('bravo-co').send(new ScanCommand({ TableName: 'ledger' }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    // the registry: its own partition (its record, its adapters) read-only; no other partition, no key
    const profile = await scoped('bravo-co').send(
      new GetCommand({ TableName: 'tenants', Key: { pk: 'TENANT#bravo-co', sk: 'PROFILE' } }),
    );
    expect(profile.Item?.tenantId).toBe('bravo-co');
    const denied = { name: 'AccessDeniedException' };
    await expect(
      scoped('bravo-co').send(new PutCommand({ TableName: 'tenants', Item: { ...profile.Item, tier: 'enterprise' } })),
    ).rejects.toMatchObject(denied);
    for (const pk of ['TENANT#alpha-co', 'APIKEY#0000000000000000']) {
      await expect(
        scoped('bravo-co').send(new GetCommand({ TableName: 'tenants', Key: { pk, sk: 'PROFILE' } })),
      ).rejects.toMatchObject(denied);
    }
  });

  it("refuses the functions' own credentials on tenant tables: tenant data needs a tenant session", async () => {
    await expect(
      ownRole.send(new GetCommand({ TableName: 'ledger', Key: { pk: 'TENANT#alpha-co', sk: 'QUOTA#2026-11' } })),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(
      ownRole.send(
        new PutCommand({ TableName: 'audit', Item: { pk: 'TENANT#alpha-co', sk: 'AUDIT#z', requestId: 'z' } }),
      ),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
  });

  it("refuses a tenant session on the ingest queue, which only the functions' roles may send to", async () => {
    const send = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) =>
      new SQSClient({ region: 'us-east-1', endpoint: platform.endpoints.sqs, credentials, maxAttempts: 1 }).send(
        new SendMessageCommand({
          QueueUrl: platform.sqs.queueUrl,
          MessageBody: JSON.stringify({ tenantId: 'bravo-co', documentId: 'doc_forged', batch: 0 }),
        }),
      );
    await expect(send(await credentials.credentialsFor('alpha-co'))).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(send({ accessKeyId: 'AKIASTRANGER', secretAccessKey: 'whatever' })).rejects.toMatchObject({
      name: 'AccessDenied',
    });
  });

  it("refuses a request signed with a tenant session's key id but not its secret", async () => {
    const alpha = await credentials.credentialsFor('alpha-co');
    const forger = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: platform.endpoints.dynamodb,
        credentials: { ...alpha, secretAccessKey: 'guessed-secret' },
        maxAttempts: 1,
      }),
    );
    await expect(
      forger.send(new GetCommand({ TableName: 'ledger', Key: { pk: 'TENANT#alpha-co', sk: 'QUOTA#2026-11' } })),
    ).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
  });

  it("refuses a request signed with a tenant session's key and secret but without its token, or with another's", async () => {
    const alpha = await credentials.credentialsFor('alpha-co');
    const bravo = await credentials.credentialsFor('bravo-co');
    for (const sessionToken of [undefined, bravo.sessionToken]) {
      const forger = DynamoDBDocumentClient.from(
        new DynamoDBClient({
          region: 'us-east-1',
          endpoint: platform.endpoints.dynamodb,
          credentials: { accessKeyId: alpha.accessKeyId, secretAccessKey: alpha.secretAccessKey, sessionToken },
          maxAttempts: 1,
        }),
      );
      await expect(
        forger.send(new GetCommand({ TableName: 'ledger', Key: { pk: 'TENANT#alpha-co', sk: 'QUOTA#2026-11' } })),
      ).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    }
  });

  it('refuses a request signed with a key no one issued, on every table, and no session for an unknown tenant', async () => {
    const stranger = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: platform.endpoints.dynamodb,
        credentials: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'whatever' },
        maxAttempts: 1,
      }),
    );
    for (const table of ['tenants', 'ledger', 'audit', 'documents']) {
      await expect(
        stranger.send(new GetCommand({ TableName: table, Key: { pk: 'TENANT#alpha-co', sk: 'PROFILE' } })),
      ).rejects.toMatchObject({ name: 'UnrecognizedClientException' });
    }
    stranger.destroy();
    await expect(credentials.credentialsFor('never-onboarded')).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});

describe('leadingKeys (what the local front reads as IAM would)', () => {
  it('reads the partition key of item operations, queries by attribute name, and every batch entry', () => {
    expect(leadingKeys('GetItem', { TableName: 't', Key: { pk: { S: 'TENANT#a' } } })).toEqual([
      { table: 't', key: 'TENANT#a' },
    ]);
    expect(
      leadingKeys('Query', {
        TableName: 't',
        KeyConditionExpression: '#x = :v AND begins_with(sk, :p)',
        ExpressionAttributeNames: { '#x': 'pk' },
        ExpressionAttributeValues: { ':v': { S: 'TENANT#b' }, ':p': { S: 'A' } },
      }),
    ).toEqual([{ table: 't', key: 'TENANT#b' }]);
    expect(
      leadingKeys('BatchWriteItem', {
        RequestItems: {
          t: [
            { PutRequest: { Item: { pk: { S: 'TENANT#a' } } } },
            { DeleteRequest: { Key: { pk: { S: 'TENANT#b' } } } },
          ],
        },
      }),
    ).toEqual([
      { table: 't', key: 'TENANT#a' },
      { table: 't', key: 'TENANT#b' },
    ]);
  });

  it('finds nothing for operations with no leading key, so a tenant session is refused them', () => {
    expect(leadingKeys('Scan', { TableName: 't' })).toBeUndefined();
    expect(
      leadingKeys('Query', {
        TableName: 't',
        KeyConditionExpression: 'sk = :v',
        ExpressionAttributeValues: { ':v': { S: 'x' } },
      }),
    ).toBeUndefined();
  });
});
