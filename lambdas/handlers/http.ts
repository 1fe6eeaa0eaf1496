import { isDeepStrictEqual } from 'node:util';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { type ErrorCode, errorBody, errorBodyFor, statusOf } from '../../contract/errors';
import { MAX_FORM_BYTES, MAX_UPLOAD_BYTES } from '../../contract/files';
import { dialectOf } from '../../contract/routes';
import type { LimitScope } from '../../contract/tenancy';
import { ZodError } from '../../contract/zod';
import { annotateTrace } from '../adapters/xray-annotations';
import { type AuditDetail, type AuditEntry, boundedAuditEntry } from '../core/audit';
import { PlatformError } from '../core/errors';
import type { UploadedForm } from '../core/files';
import { type ModelCall, modelCallBudgetMs } from '../core/metering';
import type { AuditLog, PlatformMetrics } from '../core/ports';
import { assertCredentialCurrent, assertNoTenantOverride, type TenantContext, tenantContexts } from '../core/tenant';
import { onStreamEnd } from '../streamed-response';
import { forwardToSilo } from './forward';
import { logger } from './logger';

export interface ApiContext extends Context {
  requestId: string;
  /** The error code of a failed request, for the audit trail. */
  errorCode?: ErrorCode;
}

export interface TenantApiContext extends ApiContext {
  /** When the handler took the request, by the injected clock. */
  startedAtMs: number;
  /** Aborts model calls while there is still time to settle them and answer (504). */
  modelCall: ModelCall;
  /** Frozen; taken from the authorizer's context only. */
  tenant: TenantContext;
  /** What the handler adds to this request's audit record (model, tokens, prompt if opted in). */
  audit: AuditDetail;
  /** The audit record the model call's settle wrote, if it did: written again only if the answer differs. */
  auditedAtSettle?: AuditEntry;
}

/** A parsed API Gateway proxy event: `body` is the decoded JSON value. */
export type ApiEvent = Omit<APIGatewayProxyEvent, 'body'> & { body: unknown };

type Request<C extends ApiContext> = middy.Request<ApiEvent, APIGatewayProxyResult, Error, C>;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** One page of a paged list: OpenAI's `list`, with the cursor to the next page (`null` at the end). */
export function listPage(data: readonly unknown[], nextCursor: string | undefined): APIGatewayProxyResult {
  return json(200, { object: 'list', data, next_cursor: nextCursor ?? null });
}

/** Messages may quote the request (an unknown key, a model name): cut so an answer never echoes a whole body. */
const MAX_ERROR_MESSAGE_CHARS = 500;

export function errorResponse(
  code: ErrorCode,
  message: string,
  requestId?: string,
  headers?: Record<string, string>,
  dialect?: 'anthropic',
  /** A 409's resource as it is now, beside the error. */
  current?: unknown,
  /** A 429's scope: whose limit refused it (`tenant`, `project`, `key`, `user`), in the error (not in Anthropic's shape). */
  scope?: LimitScope,
) {
  const shown = message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS)}...` : message;
  const body =
    scope && dialect !== 'anthropic'
      ? { error: { ...errorBody(code, shown, requestId).error, scope } }
      : errorBodyFor(dialect, code, shown, requestId);
  return json(statusOf(code), current === undefined ? body : { ...body, current }, headers);
}

/** Every failure leaves as the one error shape; unexpected ones are logged and told apart from nothing. */
function errorResponses<C extends ApiContext>(): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, C> {
  return {
    before: (request: Request<C>) => {
      request.context.requestId = request.event.requestContext?.requestId ?? request.context.awsRequestId;
    },
    onError: (request: Request<C>) => {
      const { error } = request;
      const requestId = request.context.requestId;
      // Anthropic's routes answer in Anthropic's error shape, which its SDKs read.
      const dialect = dialectOf(request.event.resource);
      request.context.errorCode =
        error instanceof PlatformError ? error.code : error instanceof ZodError ? 'invalid_request' : 'internal_error';
      if (error instanceof PlatformError) {
        const retryAfter =
          error.retryAfterSeconds === undefined ? undefined : { 'retry-after': String(error.retryAfterSeconds) };
        request.response = errorResponse(
          error.code,
          error.message,
          requestId,
          retryAfter,
          dialect,
          error.current,
          error.scope,
        );
      } else if (error instanceof ZodError) {
        const issue = error.issues[0];
        const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
        request.response = errorResponse('invalid_request', `${where}${issue.message}`, requestId, undefined, dialect);
      } else {
        logger.error('unhandled error', { requestId, error: error as Error });
        request.response = errorResponse('internal_error', 'internal error', requestId, undefined, dialect);
      }
      request.response.headers = { ...request.response.headers, 'x-request-id': requestId };
    },
    after: (request: Request<C>) => {
      if (request.response)
        request.response.headers = { ...request.response.headers, 'x-request-id': request.context.requestId };
    },
  };
}

/** A request header by its lower-case name (API Gateway keeps the client's case). */
export function header(event: Pick<ApiEvent, 'headers'>, name: string): string | undefined {
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return entry?.[1] ?? undefined;
}

/** Deeper than any request the API defines (a JSON Schema may nest 32 levels inside a tool). */
const MAX_BODY_DEPTH = 64;

/** Whether a parsed JSON value nests deeper than `limit`: an iterative walk, linear in the value. */
function depthExceeds(root: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (value === null || typeof value !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Parses a JSON body, or keeps a file upload's form (`multipart/form-data`, up to a file's size and
 * its form) as bytes for its route to read. Written here rather than taken from
 * `@middy/http-json-body-parser`, which reports a wrong content type and broken JSON alike as 415,
 * where the API has distinct codes.
 */
function jsonBody<C extends ApiContext>(maxBytes: number): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, C> {
  return {
    before: ({ event }: Request<C>) => {
      // No body: routes that need one say so when their schema meets `undefined`.
      if (event.body === null || event.body === undefined || event.body === '') {
        event.body = undefined;
        return;
      }
      const bytes = Buffer.from(String(event.body), event.isBase64Encoded ? 'base64' : 'utf8');
      const contentType = header(event, 'content-type') ?? '';
      if (/^multipart\/form-data\s*;/i.test(contentType)) {
        if (bytes.byteLength > MAX_FORM_BYTES) {
          throw new PlatformError('payload_too_large', `an upload holds at most ${MAX_UPLOAD_BYTES} bytes of file`);
        }
        event.body = { bytes, contentType } satisfies UploadedForm;
        return;
      }
      if (bytes.byteLength > maxBytes) {
        throw new PlatformError('payload_too_large', `request body exceeds ${maxBytes} bytes`);
      }
      const raw = bytes.toString('utf8');
      if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType)) {
        throw new PlatformError('unsupported_content_type', 'content-type must be application/json');
      }
      try {
        // A leading byte order mark is not JSON, but some clients (PowerShell, Windows editors) send one.
        event.body = JSON.parse(raw.startsWith('\uFEFF') ? raw.slice(1) : raw);
      } catch {
        throw new PlatformError('invalid_json', 'request body is not valid JSON');
      }
      // JSON.parse reads any depth, but what recurses over the value later (stringify) does not.
      if (depthExceeds(event.body, MAX_BODY_DEPTH)) {
        throw new PlatformError('invalid_request', `request body nests deeper than ${MAX_BODY_DEPTH} levels`);
      }
    },
  };
}

/**
 * Builds the frozen tenant context from the authorizer's output, before the body is read, so that
 * every refusal after it (a malformed body too) is audited under the tenant.
 */
function tenantContext(now: () => number): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, TenantApiContext> {
  const fromAuthorizerContext = tenantContexts();
  return {
    before: ({ event, context }: Request<TenantApiContext>) => {
      context.tenant = fromAuthorizerContext(event.requestContext?.authorizer);
      const { tenantId, tier } = context.tenant;
      // Under Lambda tenant isolation, this environment is the invoked tenant's: it serves no other.
      if (context.tenantId !== undefined && context.tenantId !== tenantId) {
        throw new PlatformError('forbidden', 'this execution environment belongs to another tenant');
      }
      logger.appendKeys({ tenantId, tier, requestId: context.requestId, route: routeOf(event) });
      annotateTrace({ tenantId, tier });
      assertCredentialCurrent(context.tenant, now());
      context.modelCall = {
        requestId: context.requestId,
        signal: AbortSignal.timeout(modelCallBudgetMs(context.getRemainingTimeInMillis())),
        auditAtSettle: {
          entry: ({ inputTokens, outputTokens }) =>
            auditEntry(event, context, 200, isoTime(now), { inputTokens, outputTokens }),
          written: (entry) => {
            context.auditedAtSettle = entry;
          },
        },
      };
    },
  };
}

/** Refuses client attempts to name a tenant, in the parsed body, the query or the headers. */
function noTenantOverride(): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, TenantApiContext> {
  return {
    before: ({ event }: Request<TenantApiContext>) => {
      assertNoTenantOverride({ body: event.body, query: event.queryStringParameters, headers: event.headers });
    },
  };
}

/**
 * Writes the audit record of every tenant request that reached a handler, answered or failed. A
 * failed audit write is logged, not turned into a failed request: the model call already happened.
 * Registered first, so its `after` and `onError` run last, once the response exists.
 */
function auditTrail(
  audit: AuditLog,
  now: () => number,
): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, TenantApiContext> {
  const write = async ({ event, context, response }: Request<TenantApiContext>) => {
    if (!context.tenant || !response) return;
    // Under the settle's time and with what it billed, so that an answer that turned out otherwise
    // (blocked output, say) replaces that record instead of adding one.
    const settled = context.auditedAtSettle;
    const billed = settled && { inputTokens: settled.inputTokens, outputTokens: settled.outputTokens };
    const entry = auditEntry(event, context, response.statusCode, settled?.at ?? isoTime(now), billed);
    if (isDeepStrictEqual(entry, settled)) return;
    try {
      await audit.record(context.tenant, entry);
    } catch (error) {
      logger.error('audit write failed', { requestId: context.requestId, error: error as Error });
    }
  };
  return {
    before: ({ context }: Request<TenantApiContext>) => {
      context.audit = {};
    },
    after: async (request: Request<TenantApiContext>) => {
      withAttempts(request);
      // A streamed answer is audited when it has ended: with what its settle billed, and how it ended.
      const streamedAnswer = request.response && onStreamEnd(request.response, () => write(request));
      if (streamedAnswer) request.response = streamedAnswer;
      else await write(request);
    },
    onError: async (request: Request<TenantApiContext>) => {
      withAttempts(request);
      await write(request);
    },
  };
}

/** A routed model call's answer lists its attempts (`x-attempts: nova-lite=throttled, nova-micro=ok`). */
function withAttempts({ context, response }: Request<TenantApiContext>): void {
  const attempts = context.audit?.attempts;
  if (response && attempts && attempts.length > 0) {
    response.headers = { ...response.headers, 'x-attempts': attempts.join(', ') };
  }
}

/** The audit record of a tenant request answered with `status` at `at`, with what the handler added and `more`. */
function auditEntry(
  event: ApiEvent,
  context: TenantApiContext,
  status: number,
  at: string,
  more: AuditDetail = {},
): AuditEntry {
  return boundedAuditEntry({
    requestId: context.requestId,
    at,
    principal: context.tenant.principal,
    route: routeOf(event),
    status,
    ...(context.errorCode && { errorCode: context.errorCode }),
    ...context.audit,
    ...more,
  });
}

const isoTime = (now: () => number) => new Date(now()).toISOString();

/** `METHOD /resource`, e.g. `POST /v1/documents/{id}`: a bounded set, unlike paths. */
export function routeOf(event: Pick<ApiEvent, 'httpMethod' | 'resource'>): string {
  return `${event.httpMethod} ${event.resource}`;
}

/**
 * Counts every tenant request once it is answered (requests, latency, errors, refusals by code,
 * cache hits), and ends its log context. Registered first, so it runs after everything else.
 */
function requestMetrics(
  metrics: PlatformMetrics,
  now: () => number,
): MiddlewareObj<ApiEvent, APIGatewayProxyResult, Error, TenantApiContext> {
  const count = ({ event, context, response }: Request<TenantApiContext>) => {
    if (context.tenant && response) {
      metrics.request({
        tenantId: context.tenant.tenantId,
        tier: context.tenant.tier,
        requestId: context.requestId,
        route: routeOf(event),
        status: response.statusCode,
        ...(context.errorCode && { errorCode: context.errorCode }),
        latencyMs: now() - context.startedAtMs,
        ...(context.audit?.cache && { cache: context.audit.cache }),
      });
    }
    logger.resetKeys();
  };
  return {
    before: ({ context }: Request<TenantApiContext>) => {
      context.startedAtMs = now();
    },
    after: count,
    onError: count,
  };
}

/** A route behind the tenant authorizer. */
export function tenantApi(deps: {
  settings: { maxRequestBodyBytes: number };
  audit: AuditLog;
  metrics: PlatformMetrics;
  now: () => number;
}) {
  return (
    middy<ApiEvent, APIGatewayProxyResult, Error, TenantApiContext>()
      .use(requestMetrics(deps.metrics, deps.now))
      .use(auditTrail(deps.audit, deps.now))
      .use(errorResponses())
      // Before anything of the tenant's here: a forwarded call is the silo's to meter and audit; its
      // failure (the silo unreachable) is answered in the error shape, with this request's id.
      .use(forwardToSilo())
      .use(tenantContext(deps.now))
      .use(jsonBody(deps.settings.maxRequestBodyBytes))
      .use(noTenantOverride())
  );
}

/** An operator route (IAM on AWS). */
export function adminApi(deps: { settings: { maxRequestBodyBytes: number } }) {
  return middy<ApiEvent, APIGatewayProxyResult, Error, ApiContext>()
    .use(errorResponses())
    .use(jsonBody(deps.settings.maxRequestBodyBytes));
}
