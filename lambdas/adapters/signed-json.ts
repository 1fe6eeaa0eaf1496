import type { IncomingHttpHeaders } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
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
 * JSON requests to an AWS service, signed with the SDK's own SigV4 signer and sent over a
 * keep-alive agent, with a bound on connecting and (given one) on the whole request, each a
 * `TimeoutError`, and an abort signal that ends a request as an `AbortError`: the transport of the
 * hot path's lean clients, without the SDK's per-call pipeline (`npm run bench -- sdk`).
 */
export class SignedJson {
  private readonly url: URL;
  /** The endpoint's own path (a proxy's prefix), before each operation's: the SDK keeps it so. */
  private readonly basePath: string;
  private readonly signer: SignatureV4;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly options: SignedJsonOptions) {
    this.url = new URL(options.endpoint);
    this.basePath = this.url.pathname.replace(/\/$/, '');
    this.signer = new SignatureV4({
      credentials: options.credentials,
      region: options.region,
      service: options.service,
      sha256: Hash.bind(null, 'sha256'),
    });
    this.agent = options.agent ?? keepAliveAgent(this.url.href);
  }

  async post(path: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<JsonAnswer> {
    const prefixed = this.basePath + path;
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: this.url.port ? Number(this.url.port) : undefined,
      path: prefixed,
      headers: { ...headers, host: this.url.host },
      body,
    });
    return this.send(prefixed, signed.headers, body, signal);
  }

  private send(path: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<JsonAnswer> {
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
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
          signal,
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
