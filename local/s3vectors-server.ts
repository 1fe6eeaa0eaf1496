import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { TENANT_SESSION_TAG } from '../contract/iam';
import { S3VECTORS_INDEXES_PER_BUCKET } from '../contract/search';
import { failAsAws, listenLocally, localServer, readBody, remember, sendAwsError, sigV4Scope } from './aws-wire';
import { Journal } from './journal';
import type { LocalSts } from './sts-server';

type Json = Record<string, unknown>;
type DistanceMetric = 'cosine' | 'euclidean';

/** An index's settings, as GetIndex answers them. */
interface IndexSettings {
  readonly dimension: number;
  readonly distanceMetric: DistanceMetric;
  readonly metadataConfiguration?: { readonly nonFilterableMetadataKeys: readonly string[] };
  /** Epoch seconds: how the SDK reads `creationTime`. */
  readonly creationTime: number;
}

interface StoredVector {
  /** 4 bytes a dimension, as S3 Vectors stores `float32`. */
  readonly data: Float32Array;
  readonly metadata?: Json;
}

interface VectorIndex {
  readonly settings: IndexSettings;
  readonly vectors: Map<string, StoredVector>;
}

/** Every change, journaled before it is acknowledged; vectors as base64 of their float32 bytes. */
type IndexEntry =
  | { readonly op: 'create'; readonly name: string; readonly settings: IndexSettings }
  | { readonly op: 'drop'; readonly name: string }
  | {
      readonly op: 'put';
      readonly name: string;
      readonly vectors: readonly { readonly key: string; readonly float32: string; readonly metadata?: Json }[];
    }
  | { readonly op: 'delete'; readonly name: string; readonly keys: readonly string[] };

/** S3 Vectors' documented limits. */
const LIMITS = {
  dimension: 4096,
  writeBatch: 500,
  getKeys: 100,
  topK: 100,
  listPage: 1000,
  defaultListPage: 500,
  keyLength: 1024,
  metadataKeys: 50,
  filterableMetadataBytes: 2 * 1024,
  metadataBytes: 40 * 1024,
  nonFilterableKeys: 10,
  requestBytes: 20 * 1024 * 1024,
} as const;
const ACCOUNT = '000000000000';
/** Index names as S3 Vectors allows them (its ARN pattern). */
const INDEX_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** An error as S3 Vectors sends it: the SDK reads its name from `x-amzn-errortype` (then body `code`, then `__type`). */
class S3VectorsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}
const invalid = (message: string) => new S3VectorsError(400, 'ValidationException', message);
const denied = (message: string) => new S3VectorsError(403, 'AccessDeniedException', message);

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isPrimitive = (value: unknown) => ['string', 'number', 'boolean'].includes(typeof value);
const isKey = (key: unknown): key is string =>
  typeof key === 'string' && key.length >= 1 && key.length <= LIMITS.keyLength;

/** An index and the ARN it has, as a request named it. */
type Target = { readonly name: string; readonly arn: string };
type Operation = (body: Json, target: Target) => Json;

export interface LocalS3Vectors {
  readonly endpoint: string;
  /** The latest requests received (operation and parsed body), newest last: tests assert the exact wire requests. */
  readonly requests: { operation: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

/**
 * The S3 Vectors index and vector operations (REST-JSON, `POST /<Operation>`) for one vector
 * bucket, over an exact brute-force search. Requests must be SigV4-signed by a session of the local
 * STS, and a session tagged `tenantId=X` may act only on the index `t-X` of this bucket: the local
 * stand-in for the tenant role's index-scoped IAM policy. Other operations answer a 400, so drift fails loudly.
 */
export async function startLocalS3Vectors(options: {
  sts: LocalSts;
  /** The one vector bucket this plane has. */
  vectorBucketName: string;
  /** Journal file: every change on disk before it is acknowledged; replayed at start. Absent: in memory. */
  file?: string;
  /** The bucket's index quota: S3 Vectors' own unless a test wants a full bucket sooner. */
  indexesPerBucket?: number;
}): Promise<LocalS3Vectors> {
  const indexesPerBucket = options.indexesPerBucket ?? S3VECTORS_INDEXES_PER_BUCKET;
  const indexes = new Map<string, VectorIndex>();
  const journal = options.file ? new Journal<IndexEntry>(options.file) : undefined;
  for (const entry of journal?.read() ?? []) apply(entry);
  // Compacted at every start: the journal holds the indexes as they are, not their history.
  journal?.rewrite(snapshot(indexes));
  const requests: LocalS3Vectors['requests'] = [];

  /** Journals the change, then makes it: what is acknowledged is on disk. */
  function commit(entry: IndexEntry): Json {
    journal?.append([entry]);
    apply(entry);
    return {};
  }

  function apply(entry: IndexEntry): void {
    if (entry.op === 'create') indexes.set(entry.name, { settings: entry.settings, vectors: new Map() });
    else if (entry.op === 'drop') indexes.delete(entry.name);
    else if (entry.op === 'put') {
      for (const { key, float32, metadata } of entry.vectors)
        index(entry.name).vectors.set(key, { data: decodeVector(float32), metadata });
    } else for (const key of entry.keys) index(entry.name).vectors.delete(key);
  }

  function index(name: string): VectorIndex {
    const found = indexes.get(name);
    if (!found) throw new S3VectorsError(404, 'NotFoundException', `The specified index could not be found: ${name}`);
    return found;
  }

  /**
   * The index a request names (bucket and index names, or the index ARN), if the session may act on
   * it as the tenant role's policy allows: its own `t-<tenant>` index of this plane's bucket.
   */
  function tenantTarget(body: Json, operation: string, region: string, tenantId: string | undefined): Target {
    const bucketArn = `arn:aws:s3vectors:${region}:${ACCOUNT}:bucket/${options.vectorBucketName}`;
    const naming = 'name the index by indexArn alone, or by vectorBucketName (or vectorBucketArn) and indexName';
    let bucket: string;
    let name: string;
    if (body.indexArn !== undefined) {
      const arn = /^(arn:aws:s3vectors:[a-z0-9-]+:\d{12}:bucket\/[^/]+)\/index\/([^/]+)$/.exec(String(body.indexArn));
      if (!arn || [body.vectorBucketName, body.vectorBucketArn, body.indexName].some((v) => v !== undefined))
        throw invalid(naming);
      [bucket, name] = [arn[1], arn[2]];
    } else {
      if (
        typeof body.indexName !== 'string' ||
        (body.vectorBucketName === undefined) === (body.vectorBucketArn === undefined)
      )
        throw invalid(naming);
      // Both forms compared as ARNs, as IAM compares them.
      bucket = String(body.vectorBucketArn ?? `arn:aws:s3vectors:${region}:${ACCOUNT}:bucket/${body.vectorBucketName}`);
      name = body.indexName;
    }
    if (bucket !== bucketArn || tenantId === undefined || name !== `t-${tenantId}`)
      throw denied(`not authorized to perform: s3vectors:${operation} on resource: ${bucket}/index/${name}`);
    return { name, arn: `${bucketArn}/index/${name}` };
  }

  const operations: Record<string, Operation> = {
    CreateIndex: (body, { name, arn }) => {
      served(body, ['dataType', 'dimension', 'distanceMetric', 'metadataConfiguration']);
      if (!INDEX_NAME.test(name)) throw invalid('indexName must be 3 to 63 lowercase letters, digits, hyphens, dots');
      if (body.dataType !== 'float32') throw invalid('dataType must be float32');
      const dimension = integer(body.dimension, 'dimension', 1, LIMITS.dimension);
      const distanceMetric = (['cosine', 'euclidean'] as const).find((metric) => metric === body.distanceMetric);
      if (!distanceMetric) throw invalid('distanceMetric must be cosine or euclidean');
      const metadataConfiguration =
        body.metadataConfiguration === undefined
          ? undefined
          : { nonFilterableMetadataKeys: nonFilterableKeys(body.metadataConfiguration) };
      if (indexes.has(name)) throw new S3VectorsError(409, 'ConflictException', `index ${name} already exists`);
      if (indexes.size >= indexesPerBucket)
        throw new S3VectorsError(402, 'ServiceQuotaExceededException', 'the bucket has the most indexes it may');
      const settings = { dimension, distanceMetric, metadataConfiguration, creationTime: Date.now() / 1000 };
      commit({ op: 'create', name, settings });
      return { indexArn: arn };
    },
    GetIndex: (body, { name, arn }) => {
      served(body, []);
      const { settings } = index(name);
      const names = { vectorBucketName: options.vectorBucketName, indexName: name, indexArn: arn };
      return { index: { ...names, dataType: 'float32', ...settings } };
    },
    DeleteIndex: (body, { name }) => {
      served(body, []);
      index(name);
      return commit({ op: 'drop', name });
    },
    PutVectors: (body, { name }) => {
      served(body, ['vectors']);
      const items = body.vectors;
      if (!Array.isArray(items) || items.length < 1 || items.length > LIMITS.writeBatch)
        throw invalid(`vectors must hold 1 to ${LIMITS.writeBatch} vectors`);
      const { settings } = index(name);
      const vectors = items.map((item: unknown, i) => {
        const where = `vectors[${i}]`;
        if (!isObject(item) || !isKey(item.key))
          throw invalid(`${where}.key must be 1 to ${LIMITS.keyLength} characters`);
        const data = vectorData(item.data, settings.dimension, `${where}.data`);
        const metadata = metadataOf(item.metadata, nonFilterable(settings), `${where}.metadata`);
        return { key: item.key, float32: encodeVector(data), metadata };
      });
      return commit({ op: 'put', name, vectors });
    },
    GetVectors: (body, { name }) => {
      served(body, ['keys', 'returnData', 'returnMetadata']);
      const keys = keyList(body.keys, LIMITS.getKeys);
      const { vectors } = index(name);
      return { vectors: keys.filter((key) => vectors.has(key)).map((key) => described(vectors, key, body)) };
    },
    ListVectors: (body, { name }) => {
      served(body, ['maxResults', 'nextToken', 'returnData', 'returnMetadata']);
      const maxResults = integer(body.maxResults ?? LIMITS.defaultListPage, 'maxResults', 1, LIMITS.listPage);
      if (body.nextToken !== undefined && (typeof body.nextToken !== 'string' || body.nextToken === ''))
        throw invalid('nextToken must be one a previous ListVectors answered');
      // The token is the last key listed: pages in key order stay stable whatever is written between them.
      const after =
        body.nextToken === undefined ? undefined : Buffer.from(body.nextToken, 'base64url').toString('utf8');
      const { vectors } = index(name);
      const keys = [...vectors.keys()].filter((key) => after === undefined || key > after).sort();
      const page = keys.slice(0, maxResults);
      return {
        vectors: page.map((key) => described(vectors, key, body)),
        ...(keys.length > maxResults && { nextToken: Buffer.from(page[page.length - 1]).toString('base64url') }),
      };
    },
    QueryVectors: (body, { name }) => {
      served(body, ['topK', 'queryVector', 'filter', 'returnMetadata', 'returnDistance']);
      const topK = integer(body.topK, 'topK', 1, LIMITS.topK);
      const { settings, vectors } = index(name);
      const keep = body.filter === undefined ? () => true : compileFilter(body.filter, nonFilterable(settings));
      const query = vectorData(body.queryVector, settings.dimension, 'queryVector');
      const hits = [...vectors]
        .filter(([, vector]) => keep(vector.metadata ?? {}))
        .map(([key, vector]) => ({ key, vector, distance: distance(settings.distanceMetric, query, vector.data) }))
        .sort((a, b) => a.distance - b.distance || (a.key < b.key ? -1 : 1))
        .slice(0, topK);
      return {
        vectors: hits.map(({ key, vector, distance }) => ({
          key,
          ...(body.returnDistance === true && { distance }),
          ...(body.returnMetadata === true && vector.metadata && { metadata: vector.metadata }),
        })),
        distanceMetric: settings.distanceMetric,
      };
    },
    DeleteVectors: (body, { name }) => {
      served(body, ['keys']);
      const keys = keyList(body.keys, LIMITS.writeBatch);
      index(name);
      return commit({ op: 'delete', name, keys });
    },
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const raw = await readBody(request, LIMITS.requestBytes);
    const path = new URL(request.url ?? '/', 'http://local').pathname;
    const body: unknown = JSON.parse(raw.toString('utf8') || '{}');
    if (!isObject(body)) throw invalid('the request body must be a JSON object');
    const operation = path.slice(1);
    // Parsed PutVectors bodies are large: fewer are kept than `remember` keeps by default.
    remember(requests, { operation, body }, 100);
    const scope = sigV4Scope(request.headers.authorization);
    const session = scope?.service === 's3vectors' ? await options.sts.signedBy(request, raw) : undefined;
    if (!scope || !session)
      throw denied('requests need the SigV4 signature (service s3vectors) of a session the local STS issued');
    // The tenant role grants nothing on the bucket itself, which ListIndexes needs.
    if (operation === 'ListIndexes')
      throw denied('not authorized to perform: s3vectors:ListIndexes on the vector bucket');
    const serve = request.method === 'POST' && Object.hasOwn(operations, operation) ? operations[operation] : undefined;
    if (!serve) throw invalid(`local S3 Vectors does not serve ${request.method} ${path}`);
    const result = serve(body, tenantTarget(body, operation, scope.region, session.tags[TENANT_SESSION_TAG]));
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(result));
  }

  const server: Server = localServer(handle, sendS3VectorsError);
  const listening = await listenLocally(server, () => journal?.close());
  return {
    ...listening,
    requests,
  };
}

/** What is not an `S3VectorsError` was a request that could not be read: a 400 ValidationException. */
function sendS3VectorsError(response: ServerResponse, error: unknown): void {
  if (error instanceof S3VectorsError) sendAwsError(response, error.status, error.type, error.message);
  else failAsAws(response, error);
}

/** Refuses the fields local S3 Vectors does not implement (encryption, tags, segments, query paging), so drift fails loudly. */
function served(body: Json, fields: readonly string[]): void {
  const naming = ['vectorBucketName', 'vectorBucketArn', 'indexName', 'indexArn'];
  const extra = Object.keys(body).find((field) => !naming.includes(field) && !fields.includes(field));
  if (extra) throw invalid(`local S3 Vectors does not serve ${extra}`);
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    throw invalid(`${field} must be an integer from ${min} to ${max}`);
  return value as number;
}

function keyList(value: unknown, max: number): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > max || !value.every(isKey))
    throw invalid(`keys must be 1 to ${max} keys of 1 to ${LIMITS.keyLength} characters`);
  return value;
}

const nonFilterable = (settings: IndexSettings) => settings.metadataConfiguration?.nonFilterableMetadataKeys ?? [];

function nonFilterableKeys(configuration: unknown): string[] {
  const keys = isObject(configuration) ? configuration.nonFilterableMetadataKeys : undefined;
  const fits = (key: unknown) => typeof key === 'string' && key.length >= 1 && key.length <= 63;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > LIMITS.nonFilterableKeys || !keys.every(fits))
    throw invalid(`nonFilterableMetadataKeys must be 1 to ${LIMITS.nonFilterableKeys} keys of 1 to 63 characters`);
  return keys;
}

/** `{float32: [...]}` of the index's dimension; a number float32 cannot hold (or NaN, which the SDK sends as text) is refused. */
function vectorData(value: unknown, dimension: number, field: string): Float32Array {
  const numbers = isObject(value) ? value.float32 : undefined;
  const vector =
    Array.isArray(numbers) && numbers.every((n) => typeof n === 'number') ? Float32Array.from(numbers) : undefined;
  if (!vector || vector.length !== dimension || !vector.every(Number.isFinite))
    throw invalid(`${field} must be ${dimension} finite float32 numbers, the index dimension`);
  return vector;
}

/** Metadata within S3 Vectors' limits: strings, numbers, booleans and lists of them; 2 KB filterable, 40 KB in all. */
function metadataOf(value: unknown, nonFilterable: readonly string[], field: string): Json | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid(`${field} must be a JSON object`);
  const entries = Object.entries(value);
  if (entries.length > LIMITS.metadataKeys) throw invalid(`${field} has more than ${LIMITS.metadataKeys} keys`);
  if (!entries.every(([, v]) => isPrimitive(v) || (Array.isArray(v) && v.every(isPrimitive))))
    throw invalid(`${field} values must be strings, numbers, booleans or lists of them`);
  const filterable = Object.fromEntries(entries.filter(([key]) => !nonFilterable.includes(key)));
  if (Buffer.byteLength(JSON.stringify(filterable)) > LIMITS.filterableMetadataBytes)
    throw invalid(`${field}: filterable metadata is over ${LIMITS.filterableMetadataBytes} bytes`);
  if (Buffer.byteLength(JSON.stringify(value)) > LIMITS.metadataBytes)
    throw invalid(`${field}: metadata is over ${LIMITS.metadataBytes} bytes`);
  return value;
}

/** A vector as GetVectors and ListVectors answer it: data and metadata only when asked for. */
function described(vectors: ReadonlyMap<string, StoredVector>, key: string, body: Json): Json {
  const vector = vectors.get(key) as StoredVector;
  return {
    key,
    ...(body.returnData === true && { data: { float32: Array.from(vector.data) } }),
    ...(body.returnMetadata === true && vector.metadata && { metadata: vector.metadata }),
  };
}

type Predicate = (metadata: Json) => boolean;

/**
 * A QueryVectors filter as a predicate over a vector's metadata, or the ValidationException for it.
 * Keys of an object all hold (`$and` and `$or` take lists of filters); a bare value is `$eq`.
 * Non-filterable keys read as absent: they are not indexed for filtering.
 */
function compileFilter(filter: unknown, nonFilterable: readonly string[]): Predicate {
  if (!isObject(filter) || Object.keys(filter).length === 0) throw invalid('a filter must be a non-empty JSON object');
  const clauses = Object.entries(filter).map(([key, value]): Predicate => {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`${key} takes a non-empty list of filters`);
      const parts = value.map((part) => compileFilter(part, nonFilterable));
      return key === '$and' ? (m) => parts.every((p) => p(m)) : (m) => parts.some((p) => p(m));
    }
    if (key.startsWith('$')) throw invalid(`unknown filter operator ${key}`);
    const conditions = isObject(value) ? Object.entries(value) : [['$eq', value] as const];
    if (conditions.length === 0) throw invalid(`the filter on ${key} has no operator`);
    const tests = conditions.map(([operator, operand]) => condition(key, operator, operand));
    const hidden = nonFilterable.includes(key);
    return (m) => tests.every((test) => test(hidden ? undefined : m[key]));
  });
  return (m) => clauses.every((clause) => clause(m));
}

function condition(key: string, operator: string, operand: unknown): (value: unknown) => boolean {
  // A list value satisfies a test when one of its elements does (documented for `$eq`).
  const anyOf = (test: (v: unknown) => boolean) => (value: unknown) =>
    Array.isArray(value) ? value.some(test) : test(value);
  switch (operator) {
    case '$eq':
    case '$ne': {
      if (!isPrimitive(operand)) throw invalid(`${operator} on ${key} takes a string, number or boolean`);
      const equal = anyOf((v) => v === operand);
      return operator === '$eq' ? equal : (v) => !equal(v);
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (typeof operand !== 'number') throw invalid(`${operator} on ${key} takes a number`);
      const holds = (v: number) =>
        ({ $gt: v > operand, $gte: v >= operand, $lt: v < operand, $lte: v <= operand })[operator];
      return anyOf((v) => typeof v === 'number' && holds(v));
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand) || operand.length === 0 || !operand.every(isPrimitive))
        throw invalid(`${operator} on ${key} takes a non-empty list of strings, numbers or booleans`);
      const member = anyOf((v) => operand.includes(v));
      return operator === '$in' ? member : (v) => !member(v);
    }
    case '$exists':
      if (typeof operand !== 'boolean') throw invalid(`$exists on ${key} takes a boolean`);
      return (v) => (v !== undefined) === operand;
    default:
      throw invalid(`unknown filter operator ${operator}`);
  }
}

/** Cosine distance (1 - cosine similarity) or euclidean distance, as S3 Vectors reports them. */
function distance(metric: DistanceMetric, a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  let squares = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
    squares += (a[i] - b[i]) ** 2;
  }
  if (metric === 'euclidean') return Math.sqrt(squares);
  return normA === 0 || normB === 0 ? 1 : 1 - dot / Math.sqrt(normA * normB);
}

const encodeVector = (vector: Float32Array) =>
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');

// Copied into an ArrayBuffer of its own: a Buffer's offset in its pool need not be 4-aligned.
const decodeVector = (encoded: string) => new Float32Array(Uint8Array.from(Buffer.from(encoded, 'base64')).buffer);

/** The entries that rebuild the indexes as they are now. */
function snapshot(indexes: ReadonlyMap<string, VectorIndex>): IndexEntry[] {
  return [...indexes].flatMap(([name, { settings, vectors }]): IndexEntry[] => [
    { op: 'create', name, settings },
    {
      op: 'put',
      name,
      vectors: [...vectors].map(([key, { data, metadata }]) => ({ key, float32: encodeVector(data), metadata })),
    },
  ]);
}
