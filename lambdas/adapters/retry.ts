/** Errors worth another try: throttling, transient server errors, timeouts and dropped connections. */
const RETRYABLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

export function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, $retryable } = error as Error & { code?: string; $retryable?: unknown };
  return RETRYABLE_NAMES.has(error.name) || RETRYABLE_CODES.has(code ?? '') || $retryable !== undefined;
}

/**
 * Runs `operation` until it succeeds, a non-retryable error occurs, or `attempts` are spent, with
 * exponential backoff and full jitter. Only for idempotent operations.
 */
export async function withRetries<T>(operation: () => Promise<T>, attempts = 4, baseDelayMs = 25): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1000, baseDelayMs * 2 ** attempt)));
    }
  }
}
