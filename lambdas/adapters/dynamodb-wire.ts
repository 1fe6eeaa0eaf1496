import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import { backoff, isRetryable } from './retry';

/** What the adapters use of a DynamoDB document client: `send` of its commands. */
export type DocumentClient = Pick<DynamoDBDocumentClient, 'send'>;

/** Where and how long: DynamoDB's endpoint, its region, and the waits that turn a stuck call into a retry. */
export interface DynamoDbWireOptions {
  readonly region: string;
  /** Absent: DynamoDB's regional endpoint. */
  readonly endpoint?: string;
  readonly credentials: () => Promise<AwsCredentialIdentity>;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Tries of a call that failed retryably (throttled, a 5xx, a timeout, a dropped connection). */
  readonly maxAttempts: number;
  /** The keep-alive pool to send through, shared by the clients of one endpoint; absent: its own. */
  readonly agent?: HttpAgent | HttpsAgent;
}

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

/** DynamoDB's regional endpoint, in the region's partition, as the SDK's endpoint rules resolve it. */
function regionalEndpoint(region: string): string {
  const suffix = DNS_SUFFIXES.find(([pattern]) => pattern.test(region))?.[1] ?? 'amazonaws.com';
  return `https://dynamodb.${region}.${suffix}`;
}

/** A document-client command as the adapters build them: its input, the fields it (un)marshals, the operation it wraps. */
interface DocumentCommand {
  readonly input: object;
  readonly inputKeyNodes?: unknown;
  readonly outputKeyNodes?: unknown;
  readonly clientCommand: { readonly constructor: { readonly name: string } };
}

const NEXT_LEVEL = '*';

/** Errors DynamoDB answers when it throttles: retried after the SDK's longer waits. */
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);
/** The SDK's standard retry bases: 100 ms, 500 ms after throttling (each try's wait up to twice more, capped at 1 s). */
const RETRY_BASE_MS = 100;
const THROTTLED_BASE_MS = 500;

/**
 * Marshals (or unmarshals) the fields of `obj` the command's key nodes name, as the document
 * client does: `{}` is every member, `{'*': nodes}` every entry at the next level, `null` the value.
 */
function translate(obj: unknown, nodes: unknown, convert: (value: never) => unknown): unknown {
  if (obj === undefined) return undefined;
  if (nodes === null) return convert(obj as never);
  const keys = Object.keys(nodes as object);
  if (keys.length === 0) {
    return Array.isArray(obj)
      ? obj.map((value) => translate(value, null, convert))
      : Object.fromEntries(Object.entries(obj as object).map(([key, value]) => [key, translate(value, null, convert)]));
  }
  if (keys.length === 1 && keys[0] === NEXT_LEVEL) {
    const next = (nodes as Record<string, unknown>)[NEXT_LEVEL];
    return Array.isArray(obj)
      ? obj.map((value) => translate(value, next, convert))
      : Object.fromEntries(Object.entries(obj as object).map(([key, value]) => [key, translate(value, next, convert)]));
  }
  const out = (Array.isArray(obj) ? [...obj] : { ...(obj as object) }) as Record<string, unknown>;
  for (const [key, child] of Object.entries(nodes as object)) {
    const value = translate((obj as Record<string, unknown>)[key], child, convert);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * DynamoDB's JSON protocol, signed with the SDK's own SigV4 signer and sent over one keep-alive
 * agent: the document client's commands, as built, without the SDK's per-call pipeline (its
 * endpoint rules, middleware stack and serde cost 0.49 ms of CPU a call where this costs about
 * 0.16: `npm run bench -- sdk`). Marshals as the document client does (undefined values removed),
 * answers its output shape, and throws DynamoDB's errors by their names (`CancellationReasons`
 * kept), as the adapters' error handling reads them. Retryable failures are tried again, with
 * exponential backoff and full jitter.
 */
export class DynamoDbWire implements DocumentClient {
  private readonly url: URL;
  private readonly signer: SignatureV4;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly options: DynamoDbWireOptions) {
    this.url = new URL(options.endpoint ?? regionalEndpoint(options.region));
    this.signer = new SignatureV4({
      credentials: options.credentials,
      region: options.region,
      service: 'dynamodb',
      sha256: Hash.bind(null, 'sha256'),
    });
    this.agent = options.agent ?? keepAliveAgent(this.url.href);
  }

  // The document client's `send` is overloaded per command: this one serves them all.
  send: DocumentClient['send'] = (async (command: DocumentCommand) => {
    const operation = command.clientCommand.constructor.name.replace(/Command$/, '');
    const marshalled = translate(command.input, command.inputKeyNodes, (value: never) =>
      marshall(value, { removeUndefinedValues: true, convertTopLevelContainer: true }),
    ) as Record<string, unknown>;
    // TransactWriteItems' idempotency token, which the SDK fills in once a call and sends on each try:
    // a try whose write landed but whose answer was lost is then answered success by DynamoDB, not
    // cancelled by its own write's condition (or, unconditioned, applied twice).
    const input =
      operation === 'TransactWriteItems'
        ? { ...marshalled, ClientRequestToken: marshalled.ClientRequestToken ?? randomUUID() }
        : marshalled;
    for (let attempt = 1; ; attempt++) {
      try {
        const output = await this.call(operation, input);
        return {
          ...(translate(output, command.outputKeyNodes, (value: never) =>
            unmarshall(value, { convertWithoutMapWrapper: true } as never),
          ) as object),
          $metadata: {},
        };
      } catch (error) {
        if (attempt >= this.options.maxAttempts || !isRetryable(error)) throw error;
        // The SDK's bases: throttling waits longer (up to 1 s), so a hot partition is not hit harder.
        await backoff(attempt, THROTTLING.has((error as Error).name) ? THROTTLED_BASE_MS : RETRY_BASE_MS);
      }
    }
  }) as never;

  /** One signed request; DynamoDB's answer, or its error by name. */
  private async call(operation: string, input: unknown): Promise<unknown> {
    const body = JSON.stringify(input);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: this.url.port ? Number(this.url.port) : undefined,
      path: '/',
      headers: {
        host: this.url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
      },
      body,
    });
    const { status, text } = await this.post(signed.headers, body);
    let answer: Record<string, unknown>;
    try {
      answer = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch (error) {
      // Not JSON: a proxy's or load balancer's page (an HTML 502 or 503). As the SDK does, the status
      // alone then says what failed: a 5xx is retried, not thrown as a SyntaxError nobody retries.
      if (status === 200) throw error;
      answer = {};
    }
    if (status === 200) return answer;
    const type = String(answer.__type ?? '');
    const error = Object.assign(new Error(String(answer.message ?? answer.Message ?? `DynamoDB answered ${status}`)), {
      name: type.slice(type.lastIndexOf('#') + 1) || (status >= 500 ? 'InternalServerError' : 'UnknownError'),
      $metadata: { httpStatusCode: status },
      ...(Array.isArray(answer.CancellationReasons) && {
        CancellationReasons: answer.CancellationReasons.map((reason: Record<string, unknown>) =>
          reason.Item ? { ...reason, Item: unmarshall(reason.Item as never) } : reason,
        ),
      }),
      ...(status >= 500 && { $retryable: {} }),
    });
    throw error;
  }

  /** The request over the keep-alive agent, with a bound on connecting and on the whole request. */
  private post(headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const timeout = (name: string, message: string) => () =>
        call.destroy(Object.assign(new Error(message), { name }));
      const call = send(
        {
          agent: this.agent,
          hostname: this.url.hostname,
          port: this.url.port,
          method: 'POST',
          path: '/',
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(whole);
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          response.on('error', reject);
        },
      );
      const whole = setTimeout(
        timeout('TimeoutError', `no answer from DynamoDB within ${this.options.requestTimeoutMs} ms`),
        this.options.requestTimeoutMs,
      );
      call.on('socket', (socket) => {
        if (socket.connecting) {
          const connecting = setTimeout(
            timeout('TimeoutError', `no connection to DynamoDB within ${this.options.connectionTimeoutMs} ms`),
            this.options.connectionTimeoutMs,
          );
          socket.once('connect', () => clearTimeout(connecting));
        }
      });
      call.on('error', (error) => {
        clearTimeout(whole);
        reject(error);
      });
      call.end(body);
    });
  }
}
