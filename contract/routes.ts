/**
 * The one route table: the CDK API builds its resources and methods from it, and the local
 * platform routes HTTP requests with it, so both serve exactly the same routes.
 */

/** `tenant`: the tenant authorizer; `admin`: IAM (SigV4) on AWS, the operator token locally. */
export type RouteAuth = 'tenant' | 'admin';

/** A Lambda handler: `lambdas/handlers/<name>.ts`, exporting `handler` (AWS) and `create` (local). */
export type HandlerName =
  | 'chat-completions'
  | 'embeddings'
  | 'models'
  | 'documents'
  | 'retrieve'
  | 'usage'
  | 'audit'
  | 'sessions'
  | 'admin';

/** The handlers that call models: the ones Lambda tenant isolation gives an execution environment per tenant. */
export const MODEL_CALLING_HANDLERS: readonly HandlerName[] = [
  'chat-completions',
  'embeddings',
  'documents',
  'retrieve',
];

/** Every Lambda of the platform: the route handlers, the authorizer, and those off the request path. */
export type FunctionName =
  | HandlerName
  | 'authorizer'
  | 'ingest-worker'
  | 'offboarding'
  | 'placement'
  | 'adapter-workflow'
  | 'budget-alerts';

export interface Route {
  /** `ANY`: every method, as API Gateway's `ANY` method. */
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'ANY';
  /** API Gateway resource path; `{name}` is a path parameter. */
  readonly path: string;
  readonly handler: HandlerName;
  readonly auth: RouteAuth;
  /** Answered as a stream (API Gateway's `STREAM` transfer mode), its handler given `STREAMING_HANDLER_TIMEOUT_SECONDS`. */
  readonly streaming?: boolean;
  /**
   * `anthropic`: Anthropic's Messages API, whose clients send their key as `x-api-key` (or a
   * Bearer token) and read errors in Anthropic's shape.
   */
  readonly dialect?: 'anthropic';
}

export const ROUTES: readonly Route[] = [
  { method: 'POST', path: '/v1/chat/completions', handler: 'chat-completions', auth: 'tenant', streaming: true },
  // The Responses API: served by the chat function, over the same core.
  { method: 'POST', path: '/v1/responses', handler: 'chat-completions', auth: 'tenant', streaming: true },
  { method: 'GET', path: '/v1/responses/{id}', handler: 'chat-completions', auth: 'tenant', streaming: true },
  { method: 'DELETE', path: '/v1/responses/{id}', handler: 'chat-completions', auth: 'tenant', streaming: true },
  {
    method: 'GET',
    path: '/v1/responses/{id}/input_items',
    handler: 'chat-completions',
    auth: 'tenant',
    streaming: true,
  },
  // The Anthropic Messages API: served by the chat function too.
  {
    method: 'POST',
    path: '/v1/messages',
    handler: 'chat-completions',
    auth: 'tenant',
    streaming: true,
    dialect: 'anthropic',
  },
  {
    method: 'POST',
    path: '/v1/messages/count_tokens',
    handler: 'chat-completions',
    auth: 'tenant',
    streaming: true,
    dialect: 'anthropic',
  },
  { method: 'POST', path: '/v1/embeddings', handler: 'embeddings', auth: 'tenant' },
  { method: 'GET', path: '/v1/models', handler: 'models', auth: 'tenant' },
  { method: 'GET', path: '/v1/models/{id}', handler: 'models', auth: 'tenant' },
  // What the caller can call: the models handler lists its prompt templates too.
  { method: 'GET', path: '/v1/prompts', handler: 'models', auth: 'tenant' },
  { method: 'POST', path: '/v1/documents', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/documents', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/documents/{id}', handler: 'documents', auth: 'tenant' },
  { method: 'DELETE', path: '/v1/documents/{id}', handler: 'documents', auth: 'tenant' },
  { method: 'POST', path: '/v1/retrieve', handler: 'retrieve', auth: 'tenant' },
  { method: 'POST', path: '/v1/files', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/files', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/files/{id}', handler: 'documents', auth: 'tenant' },
  { method: 'DELETE', path: '/v1/files/{id}', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/files/{id}/content', handler: 'documents', auth: 'tenant' },
  { method: 'POST', path: '/v1/batches', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/batches', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/batches/{id}', handler: 'documents', auth: 'tenant' },
  { method: 'POST', path: '/v1/batches/{id}/cancel', handler: 'documents', auth: 'tenant' },
  { method: 'GET', path: '/v1/usage', handler: 'usage', auth: 'tenant' },
  // The caller's account: its usage, and its API keys (ids and status).
  { method: 'GET', path: '/v1/api-keys', handler: 'usage', auth: 'tenant' },
  { method: 'GET', path: '/v1/audit', handler: 'audit', auth: 'tenant' },
  { method: 'GET', path: '/v1/audit/{requestId}', handler: 'audit', auth: 'tenant' },
  { method: 'GET', path: '/v1/sessions/{id}', handler: 'sessions', auth: 'tenant' },
  { method: 'DELETE', path: '/v1/sessions/{id}', handler: 'sessions', auth: 'tenant' },
  { method: 'POST', path: '/admin/tenants', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}/audit', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}', handler: 'admin', auth: 'admin' },
  { method: 'PATCH', path: '/admin/tenants/{id}', handler: 'admin', auth: 'admin' },
  { method: 'DELETE', path: '/admin/tenants/{id}', handler: 'admin', auth: 'admin' },
  { method: 'POST', path: '/admin/tenants/{id}/promote', handler: 'admin', auth: 'admin' },
  { method: 'POST', path: '/admin/tenants/{id}/demote', handler: 'admin', auth: 'admin' },
  { method: 'POST', path: '/admin/tenants/{id}/reindex', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}/routing', handler: 'admin', auth: 'admin' },
  { method: 'PUT', path: '/admin/tenants/{id}/routing', handler: 'admin', auth: 'admin' },
  { method: 'POST', path: '/admin/tenants/{id}/api-keys', handler: 'admin', auth: 'admin' },
  { method: 'DELETE', path: '/admin/tenants/{id}/api-keys/{keyId}', handler: 'admin', auth: 'admin' },
  { method: 'PATCH', path: '/admin/tenants/{id}/api-keys/{keyId}', handler: 'admin', auth: 'admin' },
  { method: 'POST', path: '/admin/tenants/{id}/adapters', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}/adapters', handler: 'admin', auth: 'admin' },
  { method: 'DELETE', path: '/admin/tenants/{id}/adapters/{name}', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}/prompts', handler: 'admin', auth: 'admin' },
  { method: 'PUT', path: '/admin/tenants/{id}/prompts/{name}', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/tenants/{id}/prompts/{name}', handler: 'admin', auth: 'admin' },
  { method: 'DELETE', path: '/admin/tenants/{id}/prompts/{name}', handler: 'admin', auth: 'admin' },
  { method: 'GET', path: '/admin/usage', handler: 'admin', auth: 'admin' },
  // Any other tenant path: authenticated first, so a bad credential is a 401 on every path, and a
  // good one learns the path does not exist (404). API Gateway prefers every route above to it.
  { method: 'ANY', path: '/v1/{proxy+}', handler: 'models', auth: 'tenant' },
];

/** The catch-all of the tenant paths: its handler answers 404. */
export const UNKNOWN_TENANT_PATH = '/v1/{proxy+}';

/** The authorizer's Allow covers every tenant route of the stage, since API Gateway reuses a cached policy across routes. */
export const TENANT_ROUTE_PREFIX = '/v1/';

/**
 * The authorizer context key of a Deny's reason: the ACCESS_DENIED response appends it to its
 * message (`$context.authorizer.denyReason`), so a refused tenant learns why, and where to go.
 */
export const AUTHORIZER_DENY_REASON = 'denyReason';

/**
 * The authorizer context key of a Forward: the silo's URL a moved tenant's request goes on to,
 * before the handler does anything of its own (`lambdas/handlers/forward.ts`).
 */
export const AUTHORIZER_FORWARD_TO = 'forwardTo';

/**
 * The header a plane's forward adds to the call it passes on: a call that came forwarded is never
 * forwarded again (the two planes' cached decisions may name each other for a moment around a
 * return's switch).
 */
export const FORWARDED_HEADER = 'x-platform-forwarded';

/**
 * API Gateway's own answers (no Lambda ran), in the platform's error shape. Keys are
 * API Gateway `ResponseType`s; the local front answers the same way.
 */
export const GATEWAY_RESPONSES = {
  UNAUTHORIZED: { status: 401, code: 'unauthenticated', message: 'missing or invalid credential' },
  ACCESS_DENIED: { status: 403, code: 'forbidden', message: 'this credential may not call this route' },
  MISSING_AUTHENTICATION_TOKEN: { status: 404, code: 'not_found', message: 'no such route' },
  BAD_REQUEST_PARAMETERS: {
    status: 400,
    code: 'invalid_request',
    message: 'the request path or parameters are malformed',
  },
  REQUEST_TOO_LARGE: { status: 413, code: 'payload_too_large', message: 'request too large' },
  THROTTLED: { status: 429, code: 'rate_limited', message: 'too many requests' },
  AUTHORIZER_FAILURE: {
    status: 503,
    code: 'upstream_unavailable',
    message: 'authorization is unavailable, retry shortly',
  },
  DEFAULT_5XX: { status: 502, code: 'upstream_error', message: 'the platform could not serve the request' },
} as const;

export type GatewayResponseType = keyof typeof GATEWAY_RESPONSES;

/** The dialect of a resource path (`event.resource`), if its route has one. */
export function dialectOf(resource: string | undefined): Route['dialect'] {
  return ROUTES.find((route) => route.path === resource)?.dialect;
}

/** The credential of a request: its `Authorization` header, or on Anthropic's routes an `x-api-key` as a Bearer token. */
export function credentialOf(headers: Readonly<Record<string, string | undefined>>): string | undefined {
  const find = (name: string) => Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  const apiKey = find('x-api-key');
  return find('authorization') ?? (apiKey ? `Bearer ${apiKey}` : undefined);
}
