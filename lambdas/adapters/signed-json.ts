import { createHmac, hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AwsCredentialIdentity } from '@smithy/types';

/** A keep-alive connection pool for `endpoint`'s protocol. */
export function keepAliveAgent(endpoint: string | undefined): HttpAgent | HttpsAgent {
  const options = { keepAlive: true, maxSockets: 50 };
  return endpoint?.startsWith('http:') ? new HttpAgent(options) : new HttpsAgent(options);
}

/** The DNS suffix of each partition whose is not `amazonaws.com` (the SDK's partitions.json): China's, the isolated regions'. */
const DNS_SUFFIXES: readonly (readonly [RegExp, string])[] = [
  [/^cn-/, 'amazonaws.com.cn'],
  [/^eusc-/, 'amazonaws.eu'],
  [/^us-iso-/, 'c2s.ic.gov'],
  [/^us-isob-/, 'sc2s.sgov.gov'],
  [/^eu-isoe-/, 'cloud.adc-e.uk'],
  [/^us-isof-/, 'csp.hci.ic.gov'],
];

/**
 * A service's endpoint (`dynamodb`, `bedrock-runtime`) as the SDK resolves it when none is
 * configured: the environment's `AWS_ENDPOINT_URL_<SERVICE>` (`AWS_ENDPOINT_URL_DYNAMODB`,
 * `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`) or `AWS_ENDPOINT_URL`, else the regional endpoint in the
 * region's partition.
 */
export function serviceEndpoint(host: string, region: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[`AWS_ENDPOINT_URL_${host.toUpperCase().replace(/-/g, '_')}`] ?? env.AWS_ENDPOINT_URL;
  if (configured) return configured;
  const suffix = DNS_SUFFIXES.find(([pattern]) => pattern.test(region))?.[1] ?? 'amazonaws.com';
  return `https://${host}.${region}.${suffix}`;
}

/** Signing keys by day, region, service and secret: one a day per set of credentials (the SDK keeps 50 too). */
const signingKeys = new Map<string, Buffer>();
const MAX_SIGNING_KEYS = 50;

function signingKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  const name = `${shortDate}/${region}/${service}/${secret}`;
  let key = signingKeys.get(name);
  if (!key) {
    key = createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
    for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
    if (signingKeys.size >= MAX_SIGNING_KEYS) signingKeys.delete(signingKeys.keys().next().value as string);
    signingKeys.set(name, key);
  }
  return key;
}

/** Canonical paths by path: a client calls a handful (`/`, a model's `converse`), so each is escaped once. */
const canonicalPaths = new Map<string, string>();
const MAX_CANONICAL_PATHS = 256;

function canonicalPath(path: string): string {
  let canonical = canonicalPaths.get(path);
  if (canonical === undefined) {
    canonical = escapedPath(path);
    if (canonicalPaths.size >= MAX_CANONICAL_PATHS) canonicalPaths.delete(canonicalPaths.keys().next().value as string);
    canonicalPaths.set(path, canonical);
  }
  return canonical;
}

/** A path as SigV4 signs it (the SDK's `uriEscapePath`): `.` and `..` resolved, each segment URI-escaped once more. */
function escapedPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '..') segments.pop();
    else if (segment !== '' && segment !== '.') segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return encodeURIComponent(normalized)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}

const sha256Hex = (text: string) => hash('sha256', text, 'hex');

/** The last second signed and its `x-amz-date`: calls in the same second share the string (an ISO format and a regex each). */
let lastSecond = Number.NaN;
let lastLongDate = '';

function amzDate(now: Date): string {
  const second = Math.floor(now.getTime() / 1000);
  if (second !== lastSecond) {
    lastLongDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    lastSecond = second;
  }
  return lastLongDate;
}

/**
 * The headers of a SigV4-signed POST of `body` to `path` on `host`, as the SDK's `SignatureV4` signs
 * them (its `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256` and `authorization`; the
 * local servers check them with it) at half its CPU: its generic pipeline (a hash object per digest,
 * an HMAC a call to name its key cache, any request's form canonicalized) took 30 to 45 µs a
 * signature here, this 15 to 20. `headers` are the caller's own: lower-case names, single-line values.
 */
export function sigV4Headers(
  request: { host: string; path: string; headers: Record<string, string>; body: string },
  credentials: AwsCredentialIdentity,
  scope: { region: string; service: string },
  now = new Date(),
): Record<string, string> {
  const longDate = amzDate(now);
  const shortDate = longDate.slice(0, 8);
  const credentialScope = `${shortDate}/${scope.region}/${scope.service}/aws4_request`;
  const payloadHash = sha256Hex(request.body);
  // Copied, then added to: a spread followed by more properties took V8 several µs here.
  const headers: Record<string, string> = {};
  for (const name in request.headers) headers[name] = request.headers[name];
  headers.host = request.host;
  headers['x-amz-date'] = longDate;
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
  headers['x-amz-content-sha256'] = payloadHash;
  const names = Object.keys(headers).sort();
  const signedNames = names.join(';');
  const canonicalRequest = `POST\n${canonicalPath(request.path)}\n\n${names.map((name) => `${name}:${headers[name]}\n`).join('')}\n${signedNames}\n${payloadHash}`;
  const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${credentialScope}\n${sha256Hex(canonicalRequest)}`;
  const key = signingKey(credentials.secretAccessKey, shortDate, scope.region, scope.service);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedNames}, Signature=${signature}`;
  return headers;
}

export interface SignedJsonOptions {
  /** The SigV4 signing name: `dynamodb`, `bedrock`. */
  readonly service: string;
  readonly region: string;
  readonly endpoint: string;
  readonly credentials: () => Promise<AwsCredentialIdentity>;
  readonly connectionTimeoutMs: number;
  /** Absent: no bound on the whole request (a model's answer takes as long as it takes; a signal ends it). */
  readonly requestTimeoutMs?: number;
  /** The keep-alive pool to send through, shared by the clients of one endpoint; absent: its own. */
  readonly agent?: HttpAgent | HttpsAgent;
}

/** What a service answered: its status, headers and body. */
export interface JsonAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/**
 * JSON requests to an AWS service, SigV4-signed (`sigV4Headers`) and sent over a
 * keep-alive agent, with a bound on connecting and (given one) on the whole request, each a
 * `TimeoutError`, and an abort signal that ends a request as an `AbortError`: the transport of the
 * hot path's lean clients, without the SDK's per-call pipeline (`npm run bench -- sdk`).
 */
export class SignedJson {
  private readonly url: URL;
  /** The endpoint's own path (a proxy's prefix), before each operation's: the SDK keeps it so. */
  private readonly basePath: string;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly options: SignedJsonOptions) {
    this.url = new URL(options.endpoint);
    this.basePath = this.url.pathname.replace(/\/$/, '');
    this.agent = options.agent ?? keepAliveAgent(this.url.href);
  }

  async post(path: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<JsonAnswer> {
    const prefixed = this.basePath + path;
    const { region, service } = this.options;
    const signed = sigV4Headers(
      { host: this.url.host, path: prefixed, headers, body },
      await this.options.credentials(),
      {
        region,
        service,
      },
    );
    // A flat list of names and values: Node writes it as given, where an object's headers are each
    // set and checked again (5 to 10 µs a call); they are ours and the SDK's, valid already.
    const raw: string[] = [];
    for (const name in signed) raw.push(name, signed[name]);
    // Unsigned, as the SDK sends it.
    raw.push('content-length', String(Buffer.byteLength(body)));
    return this.send(prefixed, raw, body, signal);
  }

  private send(path: string, headers: string[], body: string, signal?: AbortSignal): Promise<JsonAnswer> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { connectionTimeoutMs, requestTimeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const fail = (name: string, message: string) => () => call.destroy(Object.assign(new Error(message), { name }));
      // Ended by its signal, whatever Node reports of the cut (before the answer, or in its body): an AbortError.
      const failed = (error: Error) => {
        clearTimeout(whole);
        reject(
          signal?.aborted
            ? Object.assign(new Error(`the ${this.options.service} call was aborted`), { name: 'AbortError' })
            : error,
        );
      };
      const call = send(
        {
          agent: this.agent,
          hostname: this.url.hostname,
          port: this.url.port,
          method: 'POST',
          path,
          headers,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(whole);
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
          response.on('error', failed);
        },
      );
      const whole =
        requestTimeoutMs === undefined
          ? undefined
          : setTimeout(
              fail('TimeoutError', `no answer from ${this.options.service} within ${requestTimeoutMs} ms`),
              requestTimeoutMs,
            );
      call.on('socket', (socket) => {
        if (socket.connecting) {
          const connecting = setTimeout(
            fail('TimeoutError', `no connection to ${this.options.service} within ${connectionTimeoutMs} ms`),
            connectionTimeoutMs,
          );
          socket.once('connect', () => clearTimeout(connecting));
        }
      });
      if (signal) {
        // Our own listener rather than the `signal` option, which also watches the request's end
        // with a set of listeners (`finished`) of its own: 10 µs a call where this takes 3.
        const abort = () => call.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        if (signal.aborted) abort();
        else {
          signal.addEventListener('abort', abort, { once: true });
          call.once('close', () => signal.removeEventListener('abort', abort));
        }
      }
      call.on('error', failed);
      call.end(body);
    });
  }
}

/**
 * An AWS JSON error as the SDK throws it: named by its type (the body's `__type`, or the
 * `x-amzn-errortype` header), its message, the HTTP status, and `$retryable` for a 5xx or a 429; a
 * body that is not JSON (a proxy's HTML 502 or 503) leaves the status alone to say what failed. With
 * the body, for what a service adds to its errors.
 */
export function awsError(answer: JsonAnswer, service: string): { error: Error; body: Record<string, unknown> } {
  let body: Record<string, unknown> = {};
  try {
    body = answer.text ? (JSON.parse(answer.text) as Record<string, unknown>) : {};
  } catch {
    // a proxy's page: the status says it
  }
  // As the SDK reads it: the header first, then the body's; either may carry a `:<namespace URL>` suffix.
  const type = String(answer.headers['x-amzn-errortype'] || body.__type || '').split(':')[0];
  const status = answer.status;
  const error = Object.assign(new Error(String(body.message ?? body.Message ?? `${service} answered ${status}`)), {
    name: type.slice(type.lastIndexOf('#') + 1) || (status >= 500 ? 'InternalServerError' : 'UnknownError'),
    $metadata: { httpStatusCode: status },
    ...(status >= 500 && { $retryable: {} }),
    // A 429 is throttling to the SDK, whatever its name (Bedrock's ModelNotReadyException, say).
    ...(status === 429 && { $retryable: { throttling: true } }),
  });
  return { error, body };
}
