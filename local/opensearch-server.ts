import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { listenLocally, localServer, readBody, remember } from './aws-wire';
import { Journal } from './journal';
import type { LocalSts } from './sts-server';

type Json = Record<string, unknown>;
type Source = Record<string, unknown>;

interface LocalIndex {
  readonly vectorField: string;
  readonly dimension: number;
  /** The mapping's fields (`dynamic: strict`: no others). */
  readonly properties: Readonly<Record<string, Json>>;
  /** Field types that dynamic `object` fields took from the first document that used them, as OpenSearch fixes them. */
  readonly dynamicTypes: Map<string, FieldType>;
  /** Documents without their vector, which lives in `vectors` as a Float32Array (4 bytes a dimension). */
  readonly docs: Map<string, Source>;
  readonly vectors: Map<string, Float32Array>;
}

type FieldType = 'long' | 'float' | 'boolean' | 'text' | 'object';

/** OpenSearch's default `index.mapping.total_fields.limit`. */
const TOTAL_FIELDS_LIMIT = 1000;

/** Every change to the indexes, journaled before it is acknowledged; vectors as base64 of their float32 bytes. */
type IndexEntry =
  | { readonly op: 'create'; readonly name: string; readonly body: Json }
  | { readonly op: 'drop'; readonly name: string }
  | { readonly op: 'put'; readonly name: string; readonly docs: readonly [string, Source, string][] }
  | { readonly op: 'delete'; readonly name: string; readonly ids: readonly string[] };

/** An error as OpenSearch answers it; anything outside the subset answers 400 so adapter drift fails loudly. */
class OpenSearchError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    reason: string,
  ) {
    super(reason);
  }
}
const unsupported = (what: string) =>
  new OpenSearchError(400, 'illegal_argument_exception', `not in the local OpenSearch subset: ${what}`);

function allowedKeys(body: Json, keys: readonly string[], where: string): void {
  const extra = Object.keys(body).filter((key) => !keys.includes(key));
  if (extra.length > 0) throw new OpenSearchError(400, 'parsing_exception', `[${where}] unknown field [${extra[0]}]`);
}

/** `term`, `terms` and `bool` (`filter`/`must`/`must_not`) over keyword-like fields: the filters the adapter sends. */
function matches(source: Source, query: Json | undefined, flatObjects: ReadonlySet<string> = new Set()): boolean {
  if (!query) return true;
  const [kind, ...rest] = Object.keys(query);
  if (rest.length > 0) throw new OpenSearchError(400, 'parsing_exception', 'a query object holds one query');
  const value = query[kind] as Json;
  const field = (name: string) =>
    name.split('.').reduce<unknown>((node, part) => (node as Json | undefined)?.[part], source);
  switch (kind) {
    case 'term': {
      const [[name, expected]] = Object.entries(value);
      const wanted = typeof expected === 'object' && expected !== null ? (expected as Json).value : expected;
      const found = field(name);
      // A flat_object keeps every leaf as a keyword: 2024, "2024" and true, "true" are the same term.
      const flat = name.includes('.') && flatObjects.has(name.split('.')[0]);
      return flat ? found !== undefined && String(found) === String(wanted) : found === wanted;
    }
    case 'terms': {
      const [[name, expected]] = Object.entries(value);
      return Array.isArray(expected) && expected.includes(field(name));
    }
    case 'bool': {
      allowedKeys(value, ['filter', 'must', 'must_not'], 'bool');
      const list = (c: unknown) => (c === undefined ? [] : Array.isArray(c) ? c : [c]) as Json[];
      const clauses = [value.filter, value.must].flatMap(list);
      return (
        clauses.every((clause) => ('knn' in clause ? true : matches(source, clause, flatObjects))) &&
        !list(value.must_not).some((clause) => matches(source, clause, flatObjects))
      );
    }
    case 'match_all':
      return true;
    default:
      throw unsupported(`query [${kind}]`);
  }
}

/** The `term` filters on `tenant_id` anywhere in a filter tree: what the shared index demands of a tenant session. */
function tenantTerms(query: unknown): string[] {
  if (typeof query !== 'object' || query === null) return [];
  const node = query as Json;
  const here = (node.term as Json | undefined)?.tenant_id;
  return [
    ...(here === undefined ? [] : [String(typeof here === 'object' ? (here as Json).value : here)]),
    ...Object.values(node).flatMap((child) => (Array.isArray(child) ? child.flatMap(tenantTerms) : tenantTerms(child))),
  ];
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

export interface LocalOpenSearch {
  readonly endpoint: string;
  /** Every request received, newest last: tests assert the exact wire requests. */
  readonly requests: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}

/**
 * The OpenSearch REST subset the vector index adapter uses (index create/delete/exists with
 * `knn_vector` mappings, `_bulk`, `_search` with `knn` + filters, `_delete_by_query`, `_count`),
 * over an exact brute-force cosine search. Requests must be SigV4-signed by a tenant session of the
 * local STS, and may touch only that tenant's index, or the shared index with that tenant's
 * `tenant_id` filter and routing: the local stand-in for index-scoped IAM and for the adapter's duty.
 */
export async function startLocalOpenSearch(options: {
  sts: LocalSts;
  sharedIndex: string;
  /** The journal that keeps indexes between runs (every change is on disk before it is acknowledged); in memory only without. */
  file?: string;
}): Promise<LocalOpenSearch> {
  const indices = new Map<string, LocalIndex>();
  const journal = options.file ? new Journal<IndexEntry>(options.file) : undefined;
  for (const entry of journal?.read() ?? []) apply(entry);
  // Compacted at every start: the log holds the indexes as they are, not their history.
  const compact = () => journal?.rewrite(snapshot(indices));
  compact();
  const requests: LocalOpenSearch['requests'] = [];

  /** Journals the changes, then makes them: what is acknowledged is on disk. */
  function commit(entries: readonly IndexEntry[]): void {
    journal?.append(entries);
    for (const entry of entries) apply(entry);
  }

  function apply(entry: IndexEntry): void {
    if (entry.op === 'create') indices.set(entry.name, newIndex(entry.body));
    else if (entry.op === 'drop') indices.delete(entry.name);
    else if (entry.op === 'put') {
      const target = index(entry.name);
      for (const [id, doc, vector] of entry.docs) {
        recordDynamicTypes(target, doc, target.dynamicTypes);
        target.docs.set(id, doc);
        target.vectors.set(id, decodeVector(vector));
      }
    } else {
      const target = index(entry.name);
      for (const id of entry.ids) {
        target.docs.delete(id);
        target.vectors.delete(id);
      }
    }
  }

  function index(name: string): LocalIndex {
    const found = indices.get(name);
    if (!found) throw new OpenSearchError(404, 'index_not_found_exception', `no such index [${name}]`);
    return found;
  }

  function authorize(tenantId: string, indexName: string, url: URL, body: unknown, operation: string): void {
    if (indexName === `t-${tenantId}`) return;
    const shared = indexName === options.sharedIndex;
    const scoped =
      operation === 'create' ||
      operation === 'exists' ||
      (url.searchParams.get('routing') === tenantId &&
        tenantTerms(body).length > 0 &&
        tenantTerms(body).every((t) => t === tenantId));
    if (!shared || !scoped)
      throw new OpenSearchError(403, 'security_exception', `no permissions for [${operation}] on [${indexName}]`);
  }

  function createIndex(name: string, body: Json): Json {
    if (indices.has(name))
      throw new OpenSearchError(400, 'resource_already_exists_exception', `index [${name}] already exists`);
    allowedKeys(body, ['settings', 'mappings'], 'create index');
    newIndex(body);
    commit([{ op: 'create', name, body }]);
    return { acknowledged: true, shards_acknowledged: true, index: name };
  }

  function bulk(tenantId: string, url: URL, defaultIndex: string | undefined, text: string): Json {
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    if (lines.length % 2 !== 0)
      throw new OpenSearchError(400, 'illegal_argument_exception', 'bulk body must be action and document pairs');
    const items: Json[] = [];
    const accepted: [string, Source, string][] = [];
    // Types the accepted documents of this request fix, seen by the documents after them.
    const staged = new Map<string, FieldType>();
    let errors = false;
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i]) as Json;
      if (!('index' in action)) throw unsupported(`bulk action [${Object.keys(action)[0]}]`);
      const meta = action.index as Json;
      // As with `rest.action.multi.allow_explicit_index: false` on the domain.
      if (meta._index !== undefined || defaultIndex === undefined) {
        throw new OpenSearchError(400, 'illegal_argument_exception', 'explicit index in bulk is not allowed');
      }
      const name = defaultIndex;
      const doc = JSON.parse(lines[i + 1]) as Source;
      const routed = new URL(url);
      if (meta.routing !== undefined) routed.searchParams.set('routing', String(meta.routing));
      authorize(tenantId, name, routed, { term: { tenant_id: doc.tenant_id } }, 'bulk');
      const target = index(name);
      const refusal = mappingRefusal(target, doc, staged);
      if (refusal) {
        // As OpenSearch does: the item fails, the rest of the request goes on.
        errors = true;
        items.push({ index: { _index: name, _id: meta._id, status: 400, error: refusal } });
        continue;
      }
      recordDynamicTypes(target, doc, staged);
      const { [target.vectorField]: vector, ...rest } = doc;
      accepted.push([String(meta._id), rest, encodeVector(vector as number[])]);
      items.push({ index: { _index: name, _id: meta._id, status: 201, result: 'created' } });
    }
    if (accepted.length > 0 && defaultIndex !== undefined) commit([{ op: 'put', name: defaultIndex, docs: accepted }]);
    return { took: 1, errors, items };
  }

  function search(name: string, body: Json): Json {
    allowedKeys(body, ['size', '_source', 'query', 'sort', 'search_after'], 'search');
    const target = index(name);
    const query = (body.query ?? { match_all: {} }) as Json;
    const knnClause = (query.knn ??
      ((query.bool as Json | undefined)?.must as Json[] | undefined)?.find((c) => 'knn' in c)?.knn) as Json | undefined;
    const knn = knnClause?.[target.vectorField] as Json | undefined;
    if (knnClause && !knn) throw unsupported('knn on a field that is not the index vector field');
    const filter = (knn?.filter as Json | undefined) ?? ('bool' in query ? query : undefined);
    const size = Number(body.size ?? 10);
    // Field sorts, ascending only (what exports page by with `search_after`).
    const sort = ((body.sort as Json[] | undefined) ?? []).map((clause) => {
      const [[field, order]] = Object.entries(clause);
      if (order !== 'asc' || knn) throw unsupported('sorts other than ascending fields of a non-knn search');
      return field;
    });
    const after =
      body.search_after === undefined
        ? undefined
        : Object.fromEntries(sort.map((field, i) => [field, (body.search_after as unknown[])[i]]));
    const excluded = new Set<string>(((body._source as Json | undefined)?.excludes as string[] | undefined) ?? []);
    const hits = [...target.docs.entries()]
      .filter(([, doc]) => matches(doc, filter, flatObjectFields(target)))
      .map(([id, doc]) => ({
        id,
        doc,
        score: knn ? (1 + cosine(knn.vector as number[], target.vectors.get(id) ?? [])) / 2 : 1,
      }))
      .sort((a, b) => b.score - a.score || compareBy(sort, a.doc, b.doc))
      .filter((hit) => after === undefined || compareBy(sort, hit.doc, after) > 0)
      .slice(0, Math.min(size, knn ? Number(knn.k ?? size) : size));
    return {
      took: 1,
      timed_out: false,
      hits: {
        total: { value: hits.length, relation: 'eq' },
        max_score: hits[0]?.score ?? null,
        hits: hits.map(({ id, doc, score }) => ({
          _index: name,
          _id: id,
          _score: score,
          _source: Object.fromEntries(
            Object.entries({ ...doc, [target.vectorField]: target.vectors.get(id) })
              .filter(([field]) => !excluded.has(field))
              .map(([field, value]) => [field, value instanceof Float32Array ? Array.from(value) : value]),
          ),
        })),
      },
    };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const reply = (status: number, body?: Json) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      const raw = (await readBody(request)).toString('utf8');
      const url = new URL(request.url ?? '/', 'http://local');
      const method = request.method ?? 'GET';
      remember(requests, { method, path: `${url.pathname}${url.search}`, body: raw });
      const session = await options.sts.signedBy(request, Buffer.from(raw));
      if (!session) {
        throw new OpenSearchError(403, 'security_exception', 'requests need the signature of a tenant session');
      }
      const tenantId = session.tags.tenantId;
      const [, name, action] = url.pathname.split('/');
      const body = (raw && !raw.includes('\n') ? JSON.parse(raw) : {}) as Json;
      if (name === '_bulk' && method === 'POST') return reply(200, bulk(tenantId, url, undefined, raw));
      if (!name || name.startsWith('_')) throw unsupported(`${method} ${url.pathname}`);
      if (action === undefined) {
        if (method === 'HEAD') {
          authorize(tenantId, name, url, body, 'exists');
          return reply(indices.has(name) ? 200 : 404);
        }
        if (method === 'PUT') {
          authorize(tenantId, name, url, body, 'create');
          return reply(200, createIndex(name, body));
        }
        if (method === 'DELETE') {
          authorize(tenantId, name, url, body, 'delete');
          index(name);
          commit([{ op: 'drop', name }]);
          return reply(200, { acknowledged: true });
        }
      }
      if (action === '_bulk' && (method === 'POST' || method === 'PUT'))
        return reply(200, bulk(tenantId, url, name, raw));
      authorize(tenantId, name, url, body, action ?? method);
      if (action === '_search' && (method === 'POST' || method === 'GET')) return reply(200, search(name, body));
      if (action === '_count' && (method === 'POST' || method === 'GET')) {
        allowedKeys(body, ['query'], 'count');
        return reply(200, {
          count: [...index(name).docs.values()].filter((doc) =>
            matches(doc, body.query as Json, flatObjectFields(index(name))),
          ).length,
        });
      }
      if (action === '_delete_by_query' && method === 'POST') {
        allowedKeys(body, ['query'], 'delete_by_query');
        const target = index(name);
        const doomed = [...target.docs.entries()]
          .filter(([, doc]) => matches(doc, body.query as Json, flatObjectFields(target)))
          .map(([id]) => id);
        if (doomed.length > 0) commit([{ op: 'delete', name, ids: doomed }]);
        return reply(200, { took: 1, deleted: doomed.length, total: doomed.length, failures: [] });
      }
      throw unsupported(`${method} ${url.pathname}`);
    } catch (error) {
      sendOpenSearchError(response, error);
    }
  }

  const server: Server = localServer(handle, sendOpenSearchError);
  const listening = await listenLocally(server, () => compact());
  return {
    ...listening,
    requests,
  };
}

/** An error as OpenSearch answers it; what is not an `OpenSearchError` was a request it could not parse. */
function sendOpenSearchError(response: ServerResponse, error: unknown): void {
  const failure =
    error instanceof OpenSearchError ? error : new OpenSearchError(400, 'parsing_exception', (error as Error).message);
  const cause = { type: failure.type, reason: failure.message };
  response.writeHead(failure.status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: { root_cause: [cause], ...cause }, status: failure.status }));
}

/** An empty index for a create-index body, or the error OpenSearch would give for it. */
function newIndex(body: Json): LocalIndex {
  const properties = ((body.mappings as Json | undefined)?.properties ?? {}) as Record<string, Json>;
  const vectors = Object.entries(properties).filter(([, p]) => p.type === 'knn_vector');
  const [vectorField, mapping] = vectors[0] ?? [];
  const method = mapping?.method as Json | undefined;
  if (
    vectors.length !== 1 ||
    !Number.isInteger(mapping?.dimension) ||
    method?.name !== 'hnsw' ||
    method.space_type !== 'cosinesimil'
  ) {
    throw unsupported('an index needs exactly one knn_vector field with a dimension and an hnsw/cosinesimil method');
  }
  if (
    (body.settings as Json | undefined)?.index === undefined ||
    ((body.settings as Json).index as Json).knn !== true
  ) {
    throw new OpenSearchError(400, 'illegal_argument_exception', 'knn_vector fields need index.knn: true');
  }
  return {
    vectorField,
    dimension: Number(mapping.dimension),
    properties,
    dynamicTypes: new Map(),
    docs: new Map(),
    vectors: new Map(),
  };
}

const flatObjectFields = (target: LocalIndex) =>
  new Set(
    Object.entries(target.properties)
      .filter(([, p]) => p.type === 'flat_object')
      .map(([name]) => name),
  );

function fieldType(value: unknown): FieldType {
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'long' : 'float';
  if (typeof value === 'object' && value !== null) return 'object';
  return 'text';
}

/** Whether a value can go into a field of this type, as OpenSearch coerces (a number into text, "12" into long). */
function fits(type: FieldType, value: unknown): boolean {
  if (type === 'text') return typeof value !== 'object' || value === null;
  if (type === 'boolean') return typeof value === 'boolean' || value === 'true' || value === 'false';
  if (type === 'long' || type === 'float') {
    return (
      typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
    );
  }
  return typeof value === 'object' && value !== null;
}

/** The subfields of a document's dynamic `object` fields, with their value. */
function dynamicFields(target: LocalIndex, doc: Source): [string, unknown][] {
  return Object.entries(target.properties)
    .filter(
      ([name, p]) => p.type === 'object' && p.dynamic !== false && typeof doc[name] === 'object' && doc[name] !== null,
    )
    .flatMap(([name]) =>
      Object.entries(doc[name] as Json).map(([key, value]): [string, unknown] => [`${name}.${key}`, value]),
    );
}

function recordDynamicTypes(target: LocalIndex, doc: Source, types: Map<string, FieldType>): void {
  for (const [path, value] of dynamicFields(target, doc)) {
    if (!target.dynamicTypes.has(path) && !types.has(path)) types.set(path, fieldType(value));
  }
}

/** Why OpenSearch would refuse this document under the index's mapping, if it would. */
function mappingRefusal(target: LocalIndex, doc: Source, staged: ReadonlyMap<string, FieldType>): Json | undefined {
  const unknown = Object.keys(doc).find((field) => !(field in target.properties));
  if (unknown) return { type: 'strict_dynamic_mapping_exception', reason: `unknown field [${unknown}]` };
  const vector = doc[target.vectorField];
  if (!Array.isArray(vector) || vector.length !== target.dimension) {
    return { type: 'mapper_parsing_exception', reason: 'vector dimension mismatch' };
  }
  const fields = dynamicFields(target, doc);
  for (const [path, value] of fields) {
    const type = target.dynamicTypes.get(path) ?? staged.get(path);
    if (type && !fits(type, value)) {
      return { type: 'mapper_parsing_exception', reason: `failed to parse field [${path}] of type [${type}]` };
    }
  }
  const known = new Set([...target.dynamicTypes.keys(), ...staged.keys()]);
  const total = Object.keys(target.properties).length + known.size + fields.filter(([path]) => !known.has(path)).length;
  if (total > TOTAL_FIELDS_LIMIT) {
    return {
      type: 'illegal_argument_exception',
      reason: `Limit of total fields [${TOTAL_FIELDS_LIMIT}] has been exceeded`,
    };
  }
  return undefined;
}

/** Orders documents by the sort fields, as OpenSearch compares keyword and numeric values. */
function compareBy(fields: readonly string[], a: Json, b: Json): number {
  for (const field of fields) {
    const [x, y] = [a[field], b[field]] as [string | number, string | number];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const encodeVector = (vector: ArrayLike<number>) => Buffer.from(Float32Array.from(vector).buffer).toString('base64');

function decodeVector(encoded: string): Float32Array {
  const bytes = Buffer.from(encoded, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** The entries that rebuild the indexes as they are now. */
function snapshot(indices: ReadonlyMap<string, LocalIndex>): IndexEntry[] {
  return [...indices].flatMap(([name, target]): IndexEntry[] => [
    { op: 'create', name, body: { settings: { index: { knn: true } }, mappings: { properties: target.properties } } },
    {
      op: 'put',
      name,
      docs: [...target.docs].map(([id, doc]): [string, Source, string] => [
        id,
        doc,
        encodeVector(target.vectors.get(id) ?? []),
      ]),
    },
  ]);
}
