import { type ErrorCode, statusOf } from '../../contract/errors';

/** The one error type of the core: a stable code, a message safe to show the caller. */
export class PlatformError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds the caller should wait before retrying (429 only). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'PlatformError';
    this.status = statusOf(code);
  }
}
