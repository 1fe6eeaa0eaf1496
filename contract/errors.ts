/** Stable error codes of the public API (API.md), their HTTP statuses, and the one error body. */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_json'
  | 'unsupported_content_type'
  | 'tenant_override_forbidden'
  | 'unknown_model'
  | 'content_blocked'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'tokens_per_minute_exceeded'
  | 'quota_exceeded'
  | 'budget_exceeded'
  | 'internal_error'
  | 'upstream_error'
  | 'upstream_unavailable'
  | 'upstream_timeout';

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_json: 400,
  unsupported_content_type: 400,
  tenant_override_forbidden: 400,
  unknown_model: 400,
  content_blocked: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  tokens_per_minute_exceeded: 429,
  quota_exceeded: 429,
  budget_exceeded: 429,
  internal_error: 500,
  upstream_error: 502,
  upstream_unavailable: 503,
  upstream_timeout: 504,
};

/** OpenAI-style error `type`, derived from the status so clients can branch on either. */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; type: string; request_id?: string };
}

export function errorBody(code: ErrorCode, message: string, requestId?: string): ErrorBody {
  return { error: { code, message, type: errorType(STATUS_BY_CODE[code]), request_id: requestId } };
}

/** Anthropic's error `type` for a status. */
function anthropicErrorType(status: number): string {
  if (status === 413) return 'request_too_large';
  if (status === 503) return 'overloaded_error';
  return errorType(status);
}

/** Anthropic's error body, which its SDKs read on the Messages routes: the code leads the message. */
export function anthropicErrorBody(code: ErrorCode, message: string) {
  return { type: 'error', error: { type: anthropicErrorType(STATUS_BY_CODE[code]), message: `${code}: ${message}` } };
}

/** The error body of a route: Anthropic's on its routes, the platform's everywhere else. */
export function errorBodyFor(dialect: 'anthropic' | undefined, code: ErrorCode, message: string, requestId?: string) {
  return dialect === 'anthropic' ? anthropicErrorBody(code, message) : errorBody(code, message, requestId);
}

export function statusOf(code: ErrorCode): number {
  return STATUS_BY_CODE[code];
}
