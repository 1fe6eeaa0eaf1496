import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest } from '@smithy/types';

/**
 * The HTTP server of a local stand-in for an AWS service. Whatever a request does (a body cut
 * short, text that does not parse, a throw anywhere), it is answered by `fail` in that service's
 * own error shape, or its connection closed when the answer had begun: it never takes the platform
 * down. The handler is attached before the server listens, so no request waits on a half-built one.
 */
export function localServer(
  handle: (request: IncomingMessage, response: ServerResponse) => Promise<void>,
  fail: (response: ServerResponse, error: unknown) => void,
): Server {
  return createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) return void response.destroy();
      try {
        fail(response, error);
      } catch {
        response.destroy();
      }
    });
  });
}

/**
 * Starts `server` on a free port of 127.0.0.1: its endpoint, and how to stop it (open keep-alive
 * connections too, then `stopped`, the server's own clean-up, before it has closed).
 */
export async function listenLocally(
  server: Server,
  stopped?: () => void,
): Promise<{ endpoint: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      stopped?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads a request body whole; local servers only ever see small requests. */
export async function readBody(request: IncomingMessage, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** An error as AWS REST-JSON services send it: the type in `x-amzn-errortype`, the message in the body. */
export function sendAwsError(response: ServerResponse, status: number, type: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
  response.end(JSON.stringify({ message }));
}

/** How a REST-JSON AWS service answers a request it cannot read. */
export function failAsAws(response: ServerResponse, error: unknown): void {
  sendAwsError(response, 400, 'ValidationException', `malformed request: ${(error as Error).message}`);
}

/** An error as the DynamoDB JSON 1.0 protocol sends it: the type in `__type`. */
export function sendDynamoDbError(response: ServerResponse, status: number, type: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  response.end(JSON.stringify({ __type: type, message }));
}

/** A DynamoDB answer, as the in-process local DynamoDB hands it back: the HTTP status and the JSON body. */
export interface DynamoDbAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The local DynamoDB called in-process: an operation (`PutItem`) and its request body, as the SDK sends it. */
export type DynamoDbHandler = (operation: string, body: unknown) => Promise<DynamoDbAnswer>;

/** A DynamoDB answer on the wire, with a request id as DynamoDB's (52 characters) in `x-amzn-requestid`. */
export function sendDynamoDbAnswer(response: ServerResponse, answer: DynamoDbAnswer): void {
  const body = JSON.stringify(answer.body);
  response.writeHead(answer.status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': String(Buffer.byteLength(body)),
    'x-amzn-requestid': randomBytes(39).toString('base64').toUpperCase().replace(/[+/]/g, '0'),
  });
  response.end(body);
}

/** How DynamoDB answers a request it cannot read. */
export function failAsDynamoDb(response: ServerResponse, error: unknown): void {
  sendDynamoDbError(
    response,
    400,
    'com.amazon.coral.validate#ValidationException',
    `malformed request: ${(error as Error).message}`,
  );
}

/** The credential scope of a SigV4 `Authorization` header: access key id, region and service. */
export function sigV4Scope(
  authorization: string | undefined,
): { accessKeyId: string; region: string; service: string } | undefined {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.exec(
      authorization ?? '',
    );
  return match ? { accessKeyId: match[1], region: match[2], service: match[3] } : undefined;
}

/**
 * Checks a SigV4 signature by signing the same request again with the secret the local STS
 * issued: proof that the caller held the secret, not just the key id.
 */
export async function signatureMatches(
  request: IncomingMessage,
  body: Buffer,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): Promise<boolean> {
  const authorization = request.headers.authorization ?? '';
  const scope = sigV4Scope(authorization);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1].split(';') ?? [];
  const signedAtMs = amzDateMs(String(request.headers['x-amz-date'] ?? ''));
  if (!scope || signedAtMs === undefined) return false;
  // A signed `x-amz-content-sha256` stands for the body in the signature: it must be the body's.
  const claimedHash = request.headers['x-amz-content-sha256'];
  if (claimedHash !== undefined && claimedHash !== createHash('sha256').update(body).digest('hex')) return false;
  const unsigned: HttpRequest = {
    ...requestAsSigned(request, signedHeaders, scope.service, 'POST'),
    query: Object.fromEntries(new URL(request.url ?? '/', 'http://local').searchParams),
    body,
  };
  const signed = await signerFor(scope, credentials).sign(unsigned, { signingDate: new Date(signedAtMs) });
  return signed.headers.authorization === authorization;
}

/** The query parameters of a presigned (SigV4 query-authenticated) request: the URL holds its signature. */
export const PRESIGN_PARAMETERS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
] as const;

/** Whether a request is presigned: it carries any of the query parameters of SigV4's query authentication. */
export function isPresigned(query: Record<string, string>): boolean {
  return PRESIGN_PARAMETERS.some((name) => name in query);
}

/**
 * What a presigned request's query claims: the credential scope (as `sigV4Scope`), when it was signed
 * (epoch ms) and for how many seconds; undefined when it is not well formed.
 */
export function presignedScope(
  query: Record<string, string>,
): { accessKeyId: string; region: string; service: string; signedAtMs: number; expiresSeconds: number } | undefined {
  const credential = /^([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request$/.exec(query['X-Amz-Credential'] ?? '');
  const signedAtMs = amzDateMs(query['X-Amz-Date'] ?? '');
  const expires = query['X-Amz-Expires'] ?? '';
  if (
    !credential ||
    signedAtMs === undefined ||
    !/^\d{1,7}$/.test(expires) ||
    query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256' ||
    !/^[0-9a-f]{64}$/.test(query['X-Amz-Signature'] ?? '') ||
    !query['X-Amz-SignedHeaders']
  )
    return undefined;
  return {
    accessKeyId: credential[1],
    region: credential[2],
    service: credential[3],
    signedAtMs,
    expiresSeconds: Number(expires),
  };
}

/**
 * Checks a presigned request's signature by presigning the same request again with the secret the
 * local STS issued, as `signatureMatches` does for a signed `Authorization` header. The payload of a
 * presigned S3 request is never signed (`UNSIGNED-PAYLOAD`).
 */
export async function presignatureMatches(
  request: IncomingMessage,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): Promise<boolean> {
  const url = new URL(request.url ?? '/', 'http://local');
  const given = Object.fromEntries(url.searchParams);
  const scope = presignedScope(given);
  // The signer below signs the session's own token, whatever the URL holds: the URL's must be that one.
  if (!scope || given['X-Amz-Security-Token'] !== credentials.sessionToken) return false;
  const signedHeaders = given['X-Amz-SignedHeaders'].split(';');
  const asSigned = requestAsSigned(request, signedHeaders, scope.service, 'GET');
  // The rest of the query as it came (what the signer hoisted into it included); the signer adds its own.
  const query = Object.fromEntries(
    Object.entries(given).filter(([name]) => !(PRESIGN_PARAMETERS as readonly string[]).includes(name)),
  );
  const payload = 'x-amz-content-sha256';
  const presigned = await signerFor(scope, credentials).presign(
    {
      ...asSigned,
      query,
      // The payload's hash only for the signer to read, neither signed nor hoisted; the signed headers stay headers.
      headers: { ...asSigned.headers, [payload]: 'UNSIGNED-PAYLOAD' },
    },
    {
      signingDate: new Date(scope.signedAtMs),
      expiresIn: scope.expiresSeconds,
      unsignableHeaders: new Set([payload]),
      unhoistableHeaders: new Set([payload, ...signedHeaders]),
    },
  );
  return presigned.query?.['X-Amz-Signature'] === given['X-Amz-Signature'];
}

/** The signer that checks a request signed for `scope` (S3 signs its path as sent; every other service normalizes and encodes it again). */
function signerFor(
  scope: { readonly region: string; readonly service: string },
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): SignatureV4 {
  return new SignatureV4({
    credentials,
    region: scope.region,
    service: scope.service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: scope.service !== 's3',
  });
}

/** The request as it was signed: its method, host, path (S3's as sent: keys encoded once, dot segments kept) and signed headers. */
function requestAsSigned(
  request: IncomingMessage,
  signedHeaders: readonly string[],
  service: string,
  defaultMethod: string,
): Omit<HttpRequest, 'query' | 'body'> {
  const headers = Object.fromEntries(signedHeaders.map((name) => [name, String(request.headers[name] ?? '')]));
  const [host, port] = (headers.host ?? '').split(':');
  return {
    method: request.method ?? defaultMethod,
    protocol: 'http:',
    hostname: host,
    port: Number(port),
    path: service === 's3' ? (request.url ?? '/').split('?')[0] : new URL(request.url ?? '/', 'http://local').pathname,
    headers,
  };
}

/** An `X-Amz-Date` (`20261201T100000Z`) as epoch ms; undefined when it is not one. */
function amzDateMs(amzDate: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Keeps the latest requests a local server received, for tests to inspect, without growing forever under `npm start`. */
export function remember<T>(log: T[], entry: T, max = 1000): void {
  log.push(entry);
  if (log.length > max) log.splice(0, log.length - max);
}

const eventStreamCodec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes).toString('utf8'),
  (text) => new Uint8Array(Buffer.from(text, 'utf8')),
);

/** One message of AWS's binary event stream (`application/vnd.amazon.eventstream`), as the SDKs read it. */
export function eventStreamMessage(eventType: string, payload: unknown): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(Buffer.from(JSON.stringify(payload)));
  return eventStreamCodec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': {
        type: 'string',
        value: payload instanceof Uint8Array ? 'application/octet-stream' : 'application/json',
      },
      ':message-type': { type: 'string', value: 'event' },
    },
    body,
  });
}

/** An exception in an event stream: how a service reports a failure after the stream has begun. */
export function eventStreamException(exceptionType: string, message: string): Uint8Array {
  return eventStreamCodec.encode({
    headers: {
      ':exception-type': { type: 'string', value: exceptionType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'exception' },
    },
    body: new Uint8Array(Buffer.from(JSON.stringify({ message }))),
  });
}

/** The words of a text with the spaces after them: how local models stream, a word a chunk. */
export function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}
