import {
  type _Object,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { FILE_ID_PATTERN } from '../../contract/files';
import { PlatformError } from '../core/errors';
import type { BatchPartSection, FileStore, StoredFile } from '../core/ports';
import type { TenantContext } from '../core/tenant';
import { perTenant } from './per-tenant';
import type { StsTenantCredentials } from './sts-tenant-credentials';

/** The ids the platform makes: anything else names no file, and never reaches S3. */
const PURPOSES: readonly StoredFile['purpose'][] = ['batch', 'batch_output'];
/** S3's longest key, in UTF-8 bytes; its largest ListObjectsV2 page and DeleteObjects batch. */
const MAX_KEY_BYTES = 1024;
const PAGE = 1000;

/**
 * Files in S3: each under its tenant's prefix of the plane's files bucket, reached only with the
 * tenant's scoped session (IAM allows its objects `<tenantId>/*` and listing under that prefix).
 * The key carries everything the port reads (`<tenantId>/<fileId>/<purpose>/<encoded filename>`),
 * so a listing answers with neither a HEAD per file nor an index beside the bucket; the size and
 * time are S3's own.
 */
export class S3FileStore implements FileStore {
  /** One client per tenant, signing with that tenant's scoped credentials. */
  private readonly client = perTenant(
    (tenantId) => new S3Client({ ...this.config, credentials: () => this.credentials.credentialsFor(tenantId) }),
  );

  constructor(
    private readonly bucket: string,
    /** Region, and in local mode the endpoint (path-style); the credentials are the tenant's. */
    private readonly config: S3ClientConfig,
    private readonly credentials: Pick<StsTenantCredentials, 'credentialsFor'>,
  ) {}

  async put(
    tenant: TenantContext,
    file: Omit<StoredFile, 'bytes' | 'createdAt'>,
    body: Uint8Array,
  ): Promise<StoredFile> {
    if (!FILE_ID_PATTERN.test(file.id)) throw new Error(`'${file.id}' is not a file id`);
    const key = fileKey(tenant.tenantId, file);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new PlatformError('invalid_request', 'filename is too long');
    await this.client(tenant.tenantId).send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }),
    );
    // The time S3 gave the object, as every later read reports it.
    const stored = await this.get(tenant, file.id);
    // Deleted between its put and this read (its id listed meanwhile): the caller's race, a 409.
    if (!stored) throw new PlatformError('conflict', `file ${file.id} was deleted as it was stored`);
    return stored;
  }

  async get(tenant: TenantContext, id: string): Promise<StoredFile | undefined> {
    const object = await this.find(tenant.tenantId, id);
    return object && storedFile(tenant.tenantId, object);
  }

  async content(tenant: TenantContext, id: string): Promise<Uint8Array | undefined> {
    const object = await this.find(tenant.tenantId, id);
    if (!object?.Key) return undefined;
    try {
      const answer = await this.client(tenant.tenantId).send(
        new GetObjectCommand({ Bucket: this.bucket, Key: object.Key }),
      );
      return answer.Body ? await answer.Body.transformToByteArray() : new Uint8Array();
    } catch (error) {
      // Deleted since it was listed.
      if ((error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async downloadUrl(tenant: TenantContext, id: string, expiresInSeconds: number): Promise<string | undefined> {
    const object = await this.find(tenant.tenantId, id);
    if (!object?.Key) return undefined;
    // Signed with the tenant's session, as every read is: IAM confines the URL to the tenant's prefix,
    // and it dies with the session (at least the credentials' refresh margin away).
    return getSignedUrl(this.client(tenant.tenantId), new GetObjectCommand({ Bucket: this.bucket, Key: object.Key }), {
      expiresIn: expiresInSeconds,
    });
  }

  async list(
    tenant: TenantContext,
    page: { readonly limit: number; readonly after?: string },
  ): Promise<{ readonly files: StoredFile[]; readonly hasMore: boolean }> {
    const { tenantId } = tenant;
    if (page.after !== undefined && !FILE_ID_PATTERN.test(page.after))
      throw new PlatformError('invalid_request', 'after must be a file id');
    // One more than asked tells whether there is more; ids are distinct, but a file is never counted twice.
    const wanted = page.limit + 1;
    const files = new Map<string, StoredFile>();
    let continuationToken: string | undefined;
    do {
      const answer = await this.client(tenantId).send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: `${tenantId}/`,
          // `~` sorts after every character of a purpose, so the listing resumes at the next id.
          ...(page.after !== undefined &&
            continuationToken === undefined && { StartAfter: `${tenantId}/${page.after}/~` }),
          MaxKeys: Math.min(PAGE, wanted - files.size),
          ContinuationToken: continuationToken,
        }),
      );
      for (const object of answer.Contents ?? []) {
        const file = storedFile(tenantId, object);
        if (file && !files.has(file.id)) files.set(file.id, file);
      }
      continuationToken = answer.IsTruncated ? answer.NextContinuationToken : undefined;
    } while (continuationToken !== undefined && files.size < wanted);
    const listed = [...files.values()];
    return { files: listed.slice(0, page.limit), hasMore: listed.length > page.limit };
  }

  async delete(tenant: TenantContext, id: string): Promise<boolean> {
    const object = await this.find(tenant.tenantId, id);
    if (!object?.Key) return false;
    await this.client(tenant.tenantId).send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key }));
    return true;
  }

  async deleteAll(tenantId: string): Promise<number> {
    const client = this.client(tenantId);
    let deleted = 0;
    for (;;) {
      // From the start each time: what was listed is gone, so the next page is the first again.
      const answer = await client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${tenantId}/`, MaxKeys: PAGE }),
      );
      const keys = (answer.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length === 0) return deleted;
      const result = await client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }),
      );
      const failed = result.Errors ?? [];
      if (failed.length > 0)
        throw new Error(`S3 did not delete ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message}`);
      deleted += keys.length;
    }
  }

  async putPart(
    tenant: TenantContext,
    batchId: string,
    section: BatchPartSection,
    name: string,
    body: Uint8Array,
  ): Promise<void> {
    await this.putObject(tenant.tenantId, `${batchPrefix(tenant.tenantId, batchId)}${section}/${name}`, body);
  }

  parts(
    tenant: TenantContext,
    batchId: string,
    section: BatchPartSection,
    names: readonly string[],
  ): Promise<Uint8Array[]> {
    const prefix = `${batchPrefix(tenant.tenantId, batchId)}${section}/`;
    return this.readAll(
      tenant.tenantId,
      names.map((name) => `${prefix}${name}`),
    );
  }

  async putJobInput(tenant: TenantContext, batchId: string, body: Uint8Array) {
    const job = `${batchPrefix(tenant.tenantId, batchId)}${JOB}`;
    await this.putObject(tenant.tenantId, `${job}input.jsonl`, body);
    return { inputUri: `s3://${this.bucket}/${job}input.jsonl`, outputUri: `s3://${this.bucket}/${job}output/` };
  }

  async jobOutputs(tenant: TenantContext, batchId: string): Promise<Uint8Array[]> {
    const output = `${batchPrefix(tenant.tenantId, batchId)}${JOB}output/`;
    // Bedrock writes `<job id>/input.jsonl.out` and a manifest beside it: the records only.
    const keys = (await this.keysUnder(tenant.tenantId, output)).filter((key) => key.endsWith('.jsonl.out'));
    return this.readAll(tenant.tenantId, keys);
  }

  async deleteParts(tenant: TenantContext, batchId: string): Promise<void> {
    const keys = await this.keysUnder(tenant.tenantId, batchPrefix(tenant.tenantId, batchId));
    for (let at = 0; at < keys.length; at += PAGE) {
      const Objects = keys.slice(at, at + PAGE).map((Key) => ({ Key }));
      await this.client(tenant.tenantId).send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } }),
      );
    }
  }

  private async putObject(tenantId: string, key: string, body: Uint8Array): Promise<void> {
    await this.client(tenantId).send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }),
    );
  }

  /** The objects at `keys`, in order. */
  private async readAll(tenantId: string, keys: readonly string[]): Promise<Uint8Array[]> {
    const client = this.client(tenantId);
    return Promise.all(
      keys.map(async (Key) => {
        const answer = await client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
        return answer.Body ? await answer.Body.transformToByteArray() : new Uint8Array();
      }),
    );
  }

  private async keysUnder(tenantId: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let continuationToken: string | undefined;
    do {
      const answer = await this.client(tenantId).send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: continuationToken }),
      );
      for (const object of answer.Contents ?? []) if (object.Key) keys.push(object.Key);
      continuationToken = answer.IsTruncated ? answer.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
    return keys;
  }

  /** The object of the file `id`, if the tenant has one; an id the platform cannot have made is not looked for. */
  private async find(tenantId: string, id: string): Promise<_Object | undefined> {
    if (!FILE_ID_PATTERN.test(id)) return undefined;
    const answer = await this.client(tenantId).send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${tenantId}/${id}/`, MaxKeys: 1 }),
    );
    return answer.Contents?.[0];
  }
}

/**
 * Where a running batch keeps its parts (`lines/`, `records/`) and its Bedrock job's input and output (`job/`):
 * under the tenant's prefix (its session reaches them, offboarding deletes them) but never a file's
 * key (`parts` is no file id), so no listing of files shows them.
 */
function batchPrefix(tenantId: string, batchId: string): string {
  return `${tenantId}/parts/${batchId}/`;
}
const JOB = 'job/';

/** Where a file is kept: everything the port lists is in its key. */
function fileKey(tenantId: string, file: Omit<StoredFile, 'bytes' | 'createdAt'>): string {
  return `${tenantId}/${file.id}/${file.purpose}/${encodeURIComponent(file.filename)}`;
}

/** The file a listed object is; undefined for a key that is not one (nothing the store wrote). */
function storedFile(tenantId: string, object: _Object): StoredFile | undefined {
  const prefix = `${tenantId}/`;
  if (!object.Key?.startsWith(prefix)) return undefined;
  const [id, purpose, name, ...rest] = object.Key.slice(prefix.length).split('/');
  const known = PURPOSES.find((p) => p === purpose);
  if (!FILE_ID_PATTERN.test(id) || !known || name === undefined || rest.length > 0) return undefined;
  let filename: string;
  try {
    filename = decodeURIComponent(name);
  } catch {
    return undefined;
  }
  return {
    id,
    filename,
    purpose: known,
    bytes: object.Size ?? 0,
    createdAt: Math.floor((object.LastModified?.getTime() ?? 0) / 1000),
  };
}
