import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { S3FileStore } from '../../lambdas/adapters/s3-file-store';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import { type LocalS3, startLocalS3 } from '../../local/s3-server';
import { type LocalSts, startLocalSts } from '../../local/sts-server';
import { tenantContext } from '../support/tenant';

const ROLE_ARN = 'arn:aws:iam::000000000000:role/tenant-access';
const PLATFORM = { accessKeyId: 'platform', secretAccessKey: 'platform-secret' };
const BUCKET = 'plane-files';
const acme = tenantContext('acme');
const globex = tenantContext('globex');
const bytes = (text: string) => new Uint8Array(Buffer.from(text));

describe('S3FileStore, against the local S3 with tenant sessions of the local STS', () => {
  let sts: LocalSts;
  let stsClient: STSClient;
  let credentials: StsTenantCredentials;
  let s3: LocalS3;
  let clock: number;
  let dataDir: string;
  const clients: S3Client[] = [];

  const config = () => ({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    requestHandler: new NodeHttpHandler(),
  });
  /** A raw S3 client signing with `tenantId`'s session: what any code holding that session could send. */
  const sessionClient = (tenantId: string) => {
    const client = new S3Client({ ...config(), credentials: () => credentials.credentialsFor(tenantId) });
    clients.push(client);
    return client;
  };
  const newStore = () => new S3FileStore(BUCKET, config(), credentials);
  let store: S3FileStore;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'local-s3-'));
    sts = await startLocalSts({
      roleArn: ROLE_ARN,
      requiredTags: ['tenantId'],
      platformCredentials: PLATFORM,
      tenantKnown: async () => true,
    });
    stsClient = new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, credentials: PLATFORM });
    credentials = new StsTenantCredentials(stsClient, ROLE_ARN);
    clock = Date.parse('2026-12-01T10:00:00Z');
    s3 = await startLocalS3({ sts, bucketName: BUCKET, file: join(dataDir, 's3.journal'), now: () => clock });
  });
  beforeEach(async () => {
    store = newStore();
    await store.deleteAll('acme');
    await store.deleteAll('globex');
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    stsClient.destroy();
    await s3.close();
    await sts.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stores a file under its tenant prefix and reads it back by listing alone', async () => {
    // WHEN
    const stored = await store.put(
      acme,
      { id: 'file-b1', filename: 'in put/é.jsonl', purpose: 'batch' },
      bytes('{"a":1}\n'),
    );

    // THEN
    const expected = { id: 'file-b1', filename: 'in put/é.jsonl', purpose: 'batch', bytes: 8, createdAt: clock / 1000 };
    expect(stored).toEqual(expected);
    expect(await store.get(acme, 'file-b1')).toEqual(expected);
    expect(Buffer.from((await store.content(acme, 'file-b1')) ?? []).toString()).toBe('{"a":1}\n');
    // Found by listing its id's prefix, then read.
    expect(s3.requests.at(-2)).toMatchObject({
      method: 'GET',
      path: `/${BUCKET}/`,
      query: { prefix: 'acme/file-b1/' },
    });
    const listed = await sessionClient('acme').send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'acme/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([`acme/file-b1/batch/${encodeURIComponent('in put/é.jsonl')}`]);
  });

  it('answers undefined for an unknown id, and for a malformed one without calling S3', async () => {
    // GIVEN
    const before = s3.requests.length;

    // WHEN / THEN
    expect(await store.get(acme, 'file-../globex')).toBeUndefined();
    expect(await store.content(acme, 'not-a-file')).toBeUndefined();
    expect(await store.delete(acme, 'file-X')).toBe(false);
    expect(s3.requests.length).toBe(before);
    expect(await store.get(acme, 'file-missing')).toBeUndefined();
    expect(await store.content(acme, 'file-missing')).toBeUndefined();
  });

  it("keeps each tenant to its own files: another tenant's id is not found", async () => {
    // GIVEN
    await store.put(globex, { id: 'file-g1', filename: 'secret.jsonl', purpose: 'batch' }, bytes('globex'));

    // WHEN / THEN
    expect(await store.get(acme, 'file-g1')).toBeUndefined();
    expect(await store.content(acme, 'file-g1')).toBeUndefined();
    expect(await store.delete(acme, 'file-g1')).toBe(false);
    expect((await store.list(acme, { limit: 10 })).files).toEqual([]);
    expect(await store.deleteAll('acme')).toBe(0);
    expect(await store.get(globex, 'file-g1')).toMatchObject({ id: 'file-g1', bytes: 6 });
  });

  it("refuses tenant A's session any read, listing, write or delete of tenant B's objects", async () => {
    // GIVEN
    await store.put(globex, { id: 'file-g1', filename: 'secret.jsonl', purpose: 'batch' }, bytes('globex'));
    const key = 'globex/file-g1/batch/secret.jsonl';
    const acmeSession = sessionClient('acme');

    // WHEN / THEN
    const refused = { name: 'AccessDenied', $metadata: expect.objectContaining({ httpStatusCode: 403 }) };
    await expect(acmeSession.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject(refused);
    await expect(
      acmeSession.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'globex/' })),
    ).rejects.toMatchObject(refused);
    // The whole bucket is no prefix of its own either.
    await expect(acmeSession.send(new ListObjectsV2Command({ Bucket: BUCKET }))).rejects.toMatchObject(refused);
    await expect(
      acmeSession.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'acme', StartAfter: 'globex/' })),
    ).rejects.toMatchObject(refused);
    await expect(acmeSession.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject(
      refused,
    );
    await expect(
      acmeSession.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'globex/file-x/batch/x', Body: 'x' })),
    ).rejects.toMatchObject(refused);
    const batch = await acmeSession.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: key }], Quiet: true } }),
    );
    expect(batch.Errors).toEqual([expect.objectContaining({ Key: key, Code: 'AccessDenied' })]);
    expect(Buffer.from((await store.content(globex, 'file-g1')) ?? []).toString()).toBe('globex');
  });

  it('refuses a request no local STS session signed', async () => {
    // GIVEN
    const forged = new S3Client({ ...config(), credentials: { accessKeyId: 'ASIAFORGED', secretAccessKey: 'x' } });
    clients.push(forged);

    // WHEN / THEN
    await expect(forged.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'acme/' }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
  });

  describe('download URLs, presigned with the tenant session', () => {
    /** What S3 answers a URL's GET: its status, and its body, or the `Code` of its XML error. */
    const download = async (url: string, headers: Record<string, string> = {}) => {
      const answer = await fetch(url, { headers });
      const body = await answer.text();
      return { status: answer.status, body: answer.ok ? body : /<Code>(\w+)<\/Code>/.exec(body)?.[1] };
    };
    /** When the URL was signed (its `X-Amz-Date`): the SDK signs by the system clock, S3 checks by its own. */
    const signedAt = (url: string) =>
      Date.parse(
        (new URL(url).searchParams.get('X-Amz-Date') ?? '').replace(
          /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
          '$1-$2-$3T$4:$5:$6Z',
        ),
      );
    let url: string;

    beforeEach(async () => {
      await store.put(acme, { id: 'file-big', filename: 'out put/é.jsonl', purpose: 'batch_output' }, bytes('acme\n'));
      await store.put(globex, { id: 'file-g1', filename: 'secret.jsonl', purpose: 'batch' }, bytes('globex'));
      url = (await store.downloadUrl(acme, 'file-big', 300)) as string;
    });
    afterEach(() => {
      clock = Date.parse('2026-12-01T10:00:00Z');
    });

    it("reads the tenant's own object, signed by its session for the time asked", async () => {
      // WHEN
      const answer = await download(url);

      // THEN
      expect(answer).toEqual({ status: 200, body: 'acme\n' });
      const query = new URL(url).searchParams;
      expect(query.get('X-Amz-Expires')).toBe('300');
      const session = sts.sessionOf((query.get('X-Amz-Credential') ?? '').split('/')[0]);
      expect(session?.tags).toEqual({ tenantId: 'acme' });
      expect(query.get('X-Amz-Security-Token')).toBe(session?.sessionToken);
      expect(new URL(url).pathname).toBe(
        `/${BUCKET}/acme/file-big/batch_output/${encodeURIComponent(encodeURIComponent('out put/é.jsonl'))}`,
      );
      // No URL for a file the tenant does not have: another's, or none.
      expect(await store.downloadUrl(acme, 'file-g1', 300)).toBeUndefined();
      expect(await store.downloadUrl(acme, 'file-missing', 300)).toBeUndefined();
      expect(await store.downloadUrl(globex, 'file-big', 300)).toBeUndefined();
    });

    it("refuses a key outside the tenant's prefix: an edited URL, or one its session signed", async () => {
      // GIVEN
      const edited = new URL(url);
      edited.pathname = `/${BUCKET}/globex/file-g1/batch/secret.jsonl`;
      const signedForGlobex = await getSignedUrl(
        sessionClient('acme'),
        new GetObjectCommand({ Bucket: BUCKET, Key: 'globex/file-g1/batch/secret.jsonl' }),
        { expiresIn: 300 },
      );

      // WHEN / THEN
      expect(await download(edited.href)).toEqual({ status: 403, body: 'SignatureDoesNotMatch' });
      expect(await download(signedForGlobex)).toEqual({ status: 403, body: 'AccessDenied' });
    });

    it('refuses a URL once it expired by the S3 clock', async () => {
      // GIVEN
      clock = signedAt(url) + 300_000;
      expect((await download(url)).status).toBe(200);

      // WHEN
      clock += 1_000;

      // THEN
      expect(await download(url)).toEqual({ status: 403, body: 'AccessDenied' });
    });

    it('refuses a tampered URL, and one sent with an Authorization header too (one auth mechanism only)', async () => {
      // GIVEN
      const longer = new URL(url);
      longer.searchParams.set('X-Amz-Expires', '604800');
      const otherSignature = new URL(url);
      const signature = otherSignature.searchParams.get('X-Amz-Signature') as string;
      otherSignature.searchParams.set('X-Amz-Signature', `${signature[0] === '0' ? '1' : '0'}${signature.slice(1)}`);
      const withoutToken = new URL(url);
      withoutToken.searchParams.delete('X-Amz-Security-Token');
      const globexUrl = new URL((await store.downloadUrl(globex, 'file-g1', 300)) as string);
      const otherToken = new URL(url);
      otherToken.searchParams.set('X-Amz-Security-Token', globexUrl.searchParams.get('X-Amz-Security-Token') as string);

      // WHEN / THEN
      for (const tampered of [longer, otherSignature, withoutToken, otherToken]) {
        expect(await download(tampered.href)).toEqual({ status: 403, body: 'SignatureDoesNotMatch' });
      }
      expect(await download(url, { authorization: 'Bearer sk-anything' })).toEqual({
        status: 400,
        body: 'InvalidArgument',
      });
      expect(await download(url)).toEqual({ status: 200, body: 'acme\n' });
    });
  });

  it('lists in key order (newest first, as the core makes ids), pages with after, and says when there is more', async () => {
    // GIVEN: ids that sort newest first, and one id a prefix of another
    for (const id of ['file-a', 'file-b', 'file-bb', 'file-c', 'file-d']) {
      await store.put(acme, { id, filename: `${id}.jsonl`, purpose: 'batch' }, bytes(id));
    }

    // WHEN
    const first = await store.list(acme, { limit: 2 });
    const second = await store.list(acme, { limit: 2, after: first.files.at(-1)?.id });
    const third = await store.list(acme, { limit: 2, after: 'file-bb' });
    const all = await store.list(acme, { limit: 5 });

    // THEN
    expect(first).toEqual({
      files: [expect.objectContaining({ id: 'file-a' }), expect.objectContaining({ id: 'file-b' })],
      hasMore: true,
    });
    expect(second.files.map((f) => f.id)).toEqual(['file-bb', 'file-c']);
    expect(second.hasMore).toBe(true);
    expect(third).toEqual({
      files: [expect.objectContaining({ id: 'file-c' }), expect.objectContaining({ id: 'file-d' })],
      hasMore: false,
    });
    expect(all.hasMore).toBe(false);
    expect(all.files).toHaveLength(5);
    expect(s3.requests.at(-1)?.query).toMatchObject({ 'max-keys': '6', prefix: 'acme/' });
    expect(s3.requests.at(-2)?.query).toMatchObject({ 'start-after': 'acme/file-bb/~', 'max-keys': '3' });
    await expect(store.list(acme, { limit: 2, after: 'acme/../' })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('deletes one file, then every file of a tenant in batches, counting them', async () => {
    // GIVEN
    await store.put(acme, { id: 'file-1', filename: 'a', purpose: 'batch' }, bytes('1'));
    await store.put(acme, { id: 'file-2', filename: 'b', purpose: 'batch_output' }, bytes('22'));
    await store.put(acme, { id: 'file-3', filename: 'c', purpose: 'batch' }, bytes('333'));
    await store.put(globex, { id: 'file-9', filename: 'g', purpose: 'batch' }, bytes('g'));

    // WHEN / THEN
    expect(await store.delete(acme, 'file-1')).toBe(true);
    expect(await store.delete(acme, 'file-1')).toBe(false);
    expect(await store.get(acme, 'file-1')).toBeUndefined();
    expect(await store.get(acme, 'file-2')).toMatchObject({ purpose: 'batch_output', bytes: 2 });
    expect(await store.deleteAll('acme')).toBe(2);
    expect(s3.requests.some((r) => r.method === 'POST' && 'delete' in r.query)).toBe(true);
    expect((await store.list(acme, { limit: 10 })).files).toEqual([]);
    expect(await store.get(globex, 'file-9')).toBeDefined();
  });

  it('deletes more than one DeleteObjects batch', async () => {
    // GIVEN
    const raw = sessionClient('acme');
    for (let from = 0; from < 1005; from += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, 1005 - from) }, (_, i) =>
          raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: `acme/file-n${from + i}/batch/x`, Body: 'x' })),
        ),
      );
    }

    // WHEN / THEN
    expect(await store.deleteAll('acme')).toBe(1005);
    expect((await store.list(acme, { limit: 1 })).files).toEqual([]);
  });

  it('keeps its objects across a restart when given a journal', async () => {
    // GIVEN
    await store.put(acme, { id: 'file-kept', filename: 'k.jsonl', purpose: 'batch' }, bytes('kept'));
    await s3.close();

    // WHEN
    s3 = await startLocalS3({ sts, bucketName: BUCKET, file: join(dataDir, 's3.journal'), now: () => clock });
    store = newStore();

    // THEN
    expect(await store.get(acme, 'file-kept')).toMatchObject({ filename: 'k.jsonl', createdAt: clock / 1000 });
    expect(Buffer.from((await store.content(acme, 'file-kept')) ?? []).toString()).toBe('kept');
  });

  it("lets a service's role (a Bedrock job) read and write any key in process, its writes journaled like a tenant's", async () => {
    // GIVEN a job's input, put by the tenant
    const { inputUri } = await store.putJobInput(acme, 'batch_svc', bytes('{"recordId":"r1"}\n'));
    expect(inputUri).toBe(`s3://${BUCKET}/acme/parts/batch_svc/job/input.jsonl`);

    // WHEN the service reads it and writes the job's output beside it
    const input = s3.serviceObjects.get('acme/parts/batch_svc/job/input.jsonl');
    s3.serviceObjects.put('acme/parts/batch_svc/job/output/job1/input.jsonl.out', Buffer.from('{"recordId":"r1"}\n'));
    s3.serviceObjects.put('acme/parts/batch_svc/job/output/job1/manifest.json.out', Buffer.from('{}'));
    await s3.close();
    s3 = await startLocalS3({ sts, bucketName: BUCKET, file: join(dataDir, 's3.journal'), now: () => clock });
    store = newStore();

    // THEN
    expect(input?.toString()).toBe('{"recordId":"r1"}\n');
    expect(s3.serviceObjects.get('acme/parts/batch_svc/job/nothing')).toBeUndefined();
    const outputs = await store.jobOutputs(acme, 'batch_svc');
    expect(outputs.map((output) => Buffer.from(output).toString())).toEqual(['{"recordId":"r1"}\n']);
  });
});
