import { type ErrorCode, statusOf } from '../../contract/errors';
import type { LimitScope } from '../../contract/tenancy';

/**
 * Why a model provider did not answer: it throttled the call or was unavailable (it did not run),
 * it failed (it may have run), it did not answer in time, or the request was too long for the
 * model's context. What a route's fallback conditions are read from.
 */
export type UpstreamFailure = 'throttled' | 'unavailable' | 'failed' | 'timeout' | 'context_length';

/** The one error type of the core: a stable code, a message safe to show the caller. */
export class PlatformError extends Error {
  readonly status: number;
  /** Seconds the caller should wait before retrying (429 and 503). */
  readonly retryAfterSeconds?: number;
  /** The resource as it is now, for a 409: what the caller's change lost to. */
  readonly current?: unknown;
  /** A model provider's failure: why it did not answer. */
  readonly upstream?: UpstreamFailure;
  /** A refusal's (429) scope: whose limit it was, the tenant's or one of its keys' or end users'. */
  readonly scope?: LimitScope;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: {
      readonly retryAfterSeconds?: number;
      readonly current?: unknown;
      readonly upstream?: UpstreamFailure;
      readonly scope?: LimitScope;
    } = {},
  ) {
    super(message);
    this.name = 'PlatformError';
    this.status = statusOf(code);
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.current = details.current;
    this.upstream = details.upstream;
    this.scope = details.scope;
  }
}
