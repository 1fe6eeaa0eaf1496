import { type ErrorCode, statusOf } from '../../contract/errors';

/** The one error type of the core: a stable code, a message safe to show the caller. */
export class PlatformError extends Error {
  readonly status: number;
  /** Seconds the caller should wait before retrying (429 and 503). */
  readonly retryAfterSeconds?: number;
  /** The resource as it is now, for a 409: what the caller's change lost to. */
  readonly current?: unknown;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: { readonly retryAfterSeconds?: number; readonly current?: unknown } = {},
  ) {
    super(message);
    this.name = 'PlatformError';
    this.status = statusOf(code);
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.current = details.current;
  }
}
