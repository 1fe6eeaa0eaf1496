import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { convertToAttr, convertToNative, unmarshall } from '@aws-sdk/util-dynamodb';
import { withSdkRetries } from './retry';
import { awsError, SignedJson, type SignedJsonOptions, serviceEndpoint } from './signed-json';

/** What the adapters use of a DynamoDB document client: `send` of its commands. */
export type DocumentClient = Pick<DynamoDBDocumentClient, 'send'>;

/** Where and how long: DynamoDB's endpoint, its region, and the waits that turn a stuck call into a retry. */
export type DynamoDbWireOptions = Omit<SignedJsonOptions, 'service' | 'endpoint' | 'requestTimeoutMs'> & {
  /** Absent: DynamoDB's regional endpoint. */
  readonly endpoint?: string;
  readonly requestTimeoutMs: number;
  /** Tries of a call that failed retryably (throttled, a 5xx, a timeout, a dropped connection). */
  readonly maxAttempts: number;
};

/** A document-client command as the adapters build them: its input, the fields it (un)marshals, the operation it wraps. */
interface DocumentCommand {
  readonly input: object;
  readonly inputKeyNodes?: unknown;
  readonly outputKeyNodes?: unknown;
  readonly clientCommand: { readonly constructor: { readonly name: string } };
}

const NEXT_LEVEL = '*';

const MARSHALL_OPTIONS = { removeUndefinedValues: true, convertTopLevelContainer: true };

/**
 * One value as `marshall(value, MARSHALL_OPTIONS)` converts it: strings, safe numbers and booleans
 * (most of an item's values) here, the rest by the SDK's `convertToAttr`, whose generic checks (a
 * constructor's name, then another's, arrays built to test a number) were most of a write's marshalling.
 */
function marshallValue(value: never): unknown {
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number' && Math.abs(value) <= Number.MAX_SAFE_INTEGER) return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  return convertToAttr(value, MARSHALL_OPTIONS);
}

// `unmarshall(value, {convertWithoutMapWrapper})`, without its options object and check per value.
const UNMARSHALL_OPTIONS = { convertWithoutMapWrapper: true };
const unmarshallValue = (value: never) => convertToNative(value, UNMARSHALL_OPTIONS);

/**
 * Marshals (or unmarshals) the fields of `obj` the command's key nodes name, as the document
 * client does: `{}` is every member, `{'*': nodes}` every entry at the next level, `null` the value.
 */
function translate(obj: unknown, nodes: unknown, convert: (value: never) => unknown): unknown {
  if (obj === undefined) return undefined;
  if (nodes === null) return convert(obj as never);
  const named = nodes as Record<string, unknown>;
  const keys = Object.keys(named);
  if (keys.length === 0 || (keys.length === 1 && keys[0] === NEXT_LEVEL)) {
    const next = keys.length === 0 ? null : named[NEXT_LEVEL];
    if (Array.isArray(obj)) return obj.map((value) => translate(value, next, convert));
    // Loops, not `Object.fromEntries(Object.entries(...).map(...))`: this runs on every member of every item.
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj as object)) {
      out[key] = translate((obj as Record<string, unknown>)[key], next, convert);
    }
    return out;
  }
  const out = (Array.isArray(obj) ? [...obj] : { ...(obj as object) }) as Record<string, unknown>;
  for (const key of keys) {
    const value = translate((obj as Record<string, unknown>)[key], named[key], convert);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * DynamoDB's JSON protocol, SigV4-signed as the SDK signs (`sigV4Headers`) and sent over one keep-alive
 * agent: the document client's commands, as built, without the SDK's per-call pipeline (its
 * endpoint rules, middleware stack and serde cost 0.49 ms of CPU a call where this costs about
 * 0.16: `npm run bench -- sdk`). Marshals as the document client does (undefined values removed),
 * answers its output shape, and throws DynamoDB's errors by their names (`CancellationReasons`
 * kept), as the adapters' error handling reads them. Retryable failures are tried again, with
 * exponential backoff and full jitter.
 */
export class DynamoDbWire implements DocumentClient {
  private readonly transport: SignedJson;

  constructor(private readonly options: DynamoDbWireOptions) {
    this.transport = new SignedJson({
      ...options,
      service: 'dynamodb',
      endpoint: options.endpoint ?? serviceEndpoint('dynamodb', options.region),
    });
  }

  // The document client's `send` is overloaded per command: this one serves them all.
  send: DocumentClient['send'] = (async (command: DocumentCommand) => {
    const operation = command.clientCommand.constructor.name.replace(/Command$/, '');
    const marshalled = translate(command.input, command.inputKeyNodes, marshallValue) as Record<string, unknown>;
    // TransactWriteItems' idempotency token, which the SDK fills in once a call and sends on each try:
    // a try whose write landed but whose answer was lost is then answered success by DynamoDB, not
    // cancelled by its own write's condition (or, unconditioned, applied twice).
    const input =
      operation === 'TransactWriteItems'
        ? { ...marshalled, ClientRequestToken: marshalled.ClientRequestToken ?? randomUUID() }
        : marshalled;
    const output = await withSdkRetries(() => this.call(operation, input), this.options.maxAttempts);
    return {
      ...(translate(output, command.outputKeyNodes, unmarshallValue) as object),
      $metadata: {},
    };
  }) as never;

  /** One signed request; DynamoDB's answer, or its error by name. */
  private async call(operation: string, input: unknown): Promise<unknown> {
    const answer = await this.transport.post(
      '/',
      { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
      JSON.stringify(input),
    );
    if (answer.status === 200) return answer.text ? JSON.parse(answer.text) : {};
    const { error, body } = awsError(answer, 'DynamoDB');
    const reasons = (body as { CancellationReasons?: Record<string, unknown>[] }).CancellationReasons;
    throw Object.assign(error, {
      ...(Array.isArray(reasons) && {
        CancellationReasons: reasons.map((reason) =>
          reason.Item ? { ...reason, Item: unmarshall(reason.Item as never) } : reason,
        ),
      }),
    });
  }
}
