import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { TENANT_SESSION_TAG } from '../contract/iam';
import {
  isPresigned,
  listenLocally,
  localServer,
  PRESIGN_PARAMETERS,
  presignedScope,
  readBody,
  remember,
  sigV4Scope,
} from './aws-wire';
import { Journal } from './journal';
import type { IssuedSession, LocalSts } from './sts-server';

interface StoredObject {
  readonly body: Buffer;
  readonly contentType: string;
  /** Epoch ms, whole seconds as S3's `Last-Modified` header has them. */
  readonly lastModified: number;
  readonly etag: string;
}

/** Every change, journaled before it is acknowledged; bodies as base64. */
type ObjectEntry =
  | {
      readonly op: 'put';
      readonly key: string;
      readonly body: string;
      readonly contentType: string;
      readonly lastModified: number;
    }
  | { readonly op: 'delete'; readonly keys: readonly string[] };

/** S3's documented limits, and the largest body local S3 reads (bodies are kept in memory). */
const LIMITS = { maxKeys: 1000, deleteBatch: 1000, keyBytes: 1024, bodyBytes: 512 * 1024 * 1024 } as const;
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
/** The query parameters of each request local S3 serves; any other fails loudly, so drift shows. */
const LIST_PARAMETERS = ['list-type', 'prefix', 'start-after', 'max-keys', 'continuation-token', 'x-id'];
/** Besides its signature's: what the SDK's presigner puts in a GetObject URL (headers it hoisted, the operation). */
const PRESIGNED_GET_PARAMETERS = ['X-Amz-Content-Sha256', 'x-amz-checksum-mode', 'x-id'];
/** The longest a presigned URL may be valid: a week. */
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

/** An error as S3 sends it: an XML `Error` with its `Code`, which the SDK reads as the error's name. */
class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
const denied = (action: string, resource: string) =>
  new S3Error(403, 'AccessDenied', `not authorized to perform: s3:${action} on resource: ${resource}`);
const notServed = (what: string) => new S3Error(501, 'NotImplemented', `local S3 does not serve ${what}`);

export interface LocalS3 {
  readonly endpoint: string;
  /** The latest requests received (method, key or listing prefix), newest last: tests assert the wire requests. */
  readonly requests: { method: string; path: string; query: Record<string, string> }[];
  /** How many requests it received since the start: benches count them (`requests` keeps only the latest). */
  readonly received: () => number;
  /**
   * The bucket's objects as an AWS service reads and writes them with its own role (Bedrock's
   * batch jobs): in process, bucket-wide, no tenant session; a put is journaled as any other.
   */
  readonly serviceObjects: LocalServiceObjects;
  close(): Promise<void>;
}

/** A bucket's objects, reached by key alone. */
export interface LocalServiceObjects {
  get(key: string): Buffer | undefined;
  put(key: string, body: Buffer): void;
}

/**
 * The S3 object subset the file store uses (PutObject, GetObject, ListObjectsV2, DeleteObject,
 * DeleteObjects; path-style `/<bucket>/<key>`, XML answers) for one bucket, objects in memory.
 * Requests must be SigV4-signed by a session of the local STS, and a session tagged `tenantId=X`
 * may reach only the keys `X/…` and list only under that prefix: the local stand-in for the tenant
 * role's prefix-scoped IAM policy. Anything else answers 501 `NotImplemented`, so drift fails loudly.
 */
export async function startLocalS3(options: {
  sts: Pick<LocalSts, 'signedBy' | 'presignedBy'>;
  /** The one bucket this plane has. */
  bucketName: string;
  /** Journal file: every change on disk before it is acknowledged; replayed at start. Absent: in memory. */
  file?: string;
  now?: () => number;
}): Promise<LocalS3> {
  const now = options.now ?? Date.now;
  const objects = new Map<string, StoredObject>();
  const journal = options.file ? new Journal<ObjectEntry>(options.file) : undefined;
  for (const entry of journal?.read() ?? []) apply(entry);
  // Compacted at every start: the journal holds the objects as they are, not their history.
  journal?.rewrite(
    [...objects].map(([key, object]) => ({
      op: 'put' as const,
      key,
      body: object.body.toString('base64'),
      contentType: object.contentType,
      lastModified: object.lastModified,
    })),
  );
  const requests: LocalS3['requests'] = [];
  let received = 0;

  /** S3's `Last-Modified` has whole seconds: what a listing and a GET report agree. */
  const lastModifiedNow = () => Math.floor(now() / 1000) * 1000;

  function commit(entry: ObjectEntry): void {
    journal?.append([entry]);
    apply(entry);
  }

  function apply(entry: ObjectEntry): void {
    if (entry.op === 'delete') for (const key of entry.keys) objects.delete(key);
    else {
      const body = Buffer.from(entry.body, 'base64');
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      objects.set(entry.key, { body, contentType: entry.contentType, lastModified: entry.lastModified, etag });
    }
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const [rawPath, rawQuery = ''] = (request.url ?? '/').split('?');
    const query = Object.fromEntries(new URLSearchParams(rawQuery));
    const method = request.method ?? 'GET';
    const raw = await readBody(request, LIMITS.bodyBytes);
    received++;
    remember(requests, { method, path: rawPath, query }, 200);
    const presigned = isPresigned(query);
    const session = presigned ? await presignedSession(request, method, query) : await signedSession(request, raw);
    const tenantId = session.tags[TENANT_SESSION_TAG];
    // What the tenant role's policy allows: objects under its prefix, listings of that prefix.
    const own = (key: string) => tenantId !== undefined && key.startsWith(`${tenantId}/`);
    const [, bucket = '', ...rest] = rawPath.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const arn = `arn:aws:s3:::${bucket}`;
    if (bucket !== options.bucketName) throw denied('*', arn);
    if (key === '') {
      if (method === 'GET' && query['list-type'] === '2') return listObjects(response, query, own);
      if (method === 'POST' && 'delete' in query) return deleteObjects(request, response, raw, own);
      throw notServed(`${method} on the bucket with ${Object.keys(query).join(', ') || 'no query'}`);
    }
    if (Object.keys(query).some((name) => name !== 'x-id') && !presigned)
      throw notServed(`${method} ${Object.keys(query).join(', ')}`);
    if (method === 'PUT') {
      if (!own(key)) throw denied('PutObject', `${arn}/${key}`);
      if (request.headers['x-amz-copy-source'] !== undefined) throw notServed('CopyObject');
      if (Buffer.byteLength(key) > LIMITS.keyBytes) throw new S3Error(400, 'KeyTooLongError', 'Your key is too long');
      const contentType = String(request.headers['content-type'] ?? 'binary/octet-stream');
      commit({ op: 'put', key, body: raw.toString('base64'), contentType, lastModified: lastModifiedNow() });
      response.writeHead(200, { etag: objects.get(key)?.etag ?? '' });
      return void response.end();
    }
    if (method === 'GET') {
      if (!own(key)) throw denied('GetObject', `${arn}/${key}`);
      const object = objects.get(key);
      if (!object) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      response.writeHead(200, {
        'content-type': object.contentType,
        'content-length': String(object.body.length),
        'last-modified': new Date(object.lastModified).toUTCString(),
        etag: object.etag,
      });
      return void response.end(object.body);
    }
    if (method === 'DELETE') {
      if (!own(key)) throw denied('DeleteObject', `${arn}/${key}`);
      // S3 answers the same whether the key was there or not.
      if (objects.has(key)) commit({ op: 'delete', keys: [key] });
      response.writeHead(204);
      return void response.end();
    }
    throw notServed(`${method} on an object`);
  }

  /** The session whose SigV4 `Authorization` header signed the request. */
  async function signedSession(request: IncomingMessage, raw: Buffer): Promise<IssuedSession> {
    const scope = sigV4Scope(request.headers.authorization);
    const session = scope?.service === 's3' ? await options.sts.signedBy(request, raw) : undefined;
    if (!session) {
      throw new S3Error(
        403,
        'AccessDenied',
        'requests need the SigV4 signature (service s3) of a session the local STS issued',
      );
    }
    return session;
  }

  /**
   * The session that presigned the request's URL (SigV4 query authentication), as S3 checks one: a
   * GetObject only (all the platform presigns), no `Authorization` header beside it, not expired by
   * this server's clock, signed by a current session of the local STS.
   */
  async function presignedSession(
    request: IncomingMessage,
    method: string,
    query: Record<string, string>,
  ): Promise<IssuedSession> {
    if (request.headers.authorization !== undefined) {
      throw new S3Error(
        400,
        'InvalidArgument',
        'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
      );
    }
    const scope = presignedScope(query);
    if (scope?.service !== 's3')
      throw new S3Error(400, 'AuthorizationQueryParametersError', 'the presigned URL is not a SigV4 one for s3');
    if (scope.expiresSeconds > MAX_PRESIGNED_SECONDS) {
      throw new S3Error(
        400,
        'AuthorizationQueryParametersError',
        'X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than 604800 seconds',
      );
    }
    const unknown = Object.keys(query).find(
      (name) => !(PRESIGN_PARAMETERS as readonly string[]).includes(name) && !PRESIGNED_GET_PARAMETERS.includes(name),
    );
    if (method !== 'GET' || unknown) throw notServed(`presigned ${method}${unknown ? ` with ${unknown}` : ''}`);
    if (now() > scope.signedAtMs + scope.expiresSeconds * 1000)
      throw new S3Error(403, 'AccessDenied', 'Request has expired');
    const session = await options.sts.presignedBy(request);
    if (!session) {
      throw new S3Error(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
    }
    return session;
  }

  /** ListObjectsV2, in key order; the continuation token is the last key listed. */
  function listObjects(response: ServerResponse, query: Record<string, string>, own: (key: string) => boolean): void {
    const unknown = Object.keys(query).find((name) => !LIST_PARAMETERS.includes(name));
    if (unknown) throw notServed(`ListObjectsV2 with ${unknown}`);
    const prefix = query.prefix ?? '';
    // The policy's condition `s3:prefix` StringLike `<tenantId>/*`: no listing of the whole bucket.
    if (!own(prefix)) throw denied('ListBucket', `arn:aws:s3:::${options.bucketName}`);
    const maxKeys = query['max-keys'] === undefined ? LIMITS.maxKeys : Number(query['max-keys']);
    if (!Number.isInteger(maxKeys) || maxKeys < 0)
      throw new S3Error(400, 'InvalidArgument', 'max-keys must be a non-negative integer');
    const token = query['continuation-token'];
    let after = query['start-after'];
    if (token !== undefined) {
      after = Buffer.from(token, 'base64url').toString('utf8');
      if (token === '' || !own(after))
        throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect');
    }
    const keys = [...objects.keys()]
      .filter((key) => key.startsWith(prefix) && (after === undefined || key > after))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = keys.slice(0, Math.min(maxKeys, LIMITS.maxKeys));
    const truncated = keys.length > page.length;
    const contents = page.map((key) => {
      const object = objects.get(key) as StoredObject;
      return `<Contents><Key>${xml(key)}</Key><LastModified>${new Date(object.lastModified).toISOString()}</LastModified><ETag>${xml(object.etag)}</ETag><Size>${object.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
    });
    const next =
      truncated && page.length > 0
        ? `<NextContinuationToken>${Buffer.from(page[page.length - 1]).toString('base64url')}</NextContinuationToken>`
        : '';
    sendXml(
      response,
      200,
      `<ListBucketResult xmlns="${XMLNS}"><Name>${xml(options.bucketName)}</Name><Prefix>${xml(prefix)}</Prefix>${
        query['start-after'] === undefined ? '' : `<StartAfter>${xml(query['start-after'])}</StartAfter>`
      }${token === undefined ? '' : `<ContinuationToken>${xml(token)}</ContinuationToken>`}<KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents.join('')}${next}</ListBucketResult>`,
    );
  }

  /** DeleteObjects: each key allowed or refused on its own, as S3 checks `s3:DeleteObject` per key. */
  function deleteObjects(
    request: IncomingMessage,
    response: ServerResponse,
    raw: Buffer,
    own: (key: string) => boolean,
  ): void {
    const checksummed = Object.keys(request.headers).some(
      (name) => name === 'content-md5' || name.startsWith('x-amz-checksum-'),
    );
    if (!checksummed)
      throw new S3Error(
        400,
        'InvalidRequest',
        'Missing required header for this request: Content-MD5 or x-amz-checksum-*',
      );
    const body = raw.toString('utf8');
    const keys = [...body.matchAll(/<Object>\s*<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Object>/g)].map((match) =>
      unxml(match[1]),
    );
    if (!/^(<\?xml[^>]*\?>)?\s*<Delete[\s>]/.test(body) || keys.length < 1 || keys.length > LIMITS.deleteBatch)
      throw new S3Error(
        400,
        'MalformedXML',
        'The XML you provided was not well formed or did not validate against our published schema',
      );
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(body);
    const allowed = keys.filter(own);
    const refused = keys.filter((key) => !own(key));
    const present = allowed.filter((key) => objects.has(key));
    if (present.length > 0) commit({ op: 'delete', keys: present });
    const deleted = quiet ? [] : allowed.map((key) => `<Deleted><Key>${xml(key)}</Key></Deleted>`);
    const errors = refused.map(
      (key) => `<Error><Key>${xml(key)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
    );
    sendXml(response, 200, `<DeleteResult xmlns="${XMLNS}">${deleted.join('')}${errors.join('')}</DeleteResult>`);
  }

  const server: Server = localServer(handle, (response, error) => {
    if (error instanceof S3Error) sendXml(response, error.status, s3ErrorXml(error.code, error.message));
    else sendXml(response, 400, s3ErrorXml('InvalidRequest', `malformed request: ${(error as Error).message}`));
  });
  const listening = await listenLocally(server, () => journal?.close());
  return {
    ...listening,
    requests,
    received: () => received,
    serviceObjects: {
      get: (key) => objects.get(key)?.body,
      put: (key, body) =>
        commit({
          op: 'put',
          key,
          body: body.toString('base64'),
          contentType: 'binary/octet-stream',
          lastModified: lastModifiedNow(),
        }),
    },
  };
}

function s3ErrorXml(code: string, message: string): string {
  return `<Error><Code>${code}</Code><Message>${xml(message)}</Message><RequestId>${randomUUID()}</RequestId></Error>`;
}

function sendXml(response: ServerResponse, status: number, body: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  response.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': String(Buffer.byteLength(text)),
    'x-amz-request-id': randomUUID(),
  });
  response.end(text);
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

function unxml(text: string): string {
  return text.replace(
    /&(amp|lt|gt|quot|apos|#(\d+)|#x([0-9a-fA-F]+));/g,
    (_, name: string, dec?: string, hex?: string) => {
      if (dec) return String.fromCodePoint(Number(dec));
      if (hex) return String.fromCodePoint(Number.parseInt(hex, 16));
      return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name] as string;
    },
  );
}
