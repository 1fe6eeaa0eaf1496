/** Errors worth another try: throttling, transient server errors, timeouts and dropped connections. */
const RETRYABLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TransactionConflictException',
  // A try of a TransactWriteItems while an earlier one with its ClientRequestToken is still being applied.
  'TransactionInProgressException',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
// The SDK's transient network errors, a failed name lookup included: Lambda's resolver answers EAI_AGAIN
// for a moment under load, and DynamoDbWire (which retries by this list) must try again as the SDK did.
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Duck-typed rather than `instanceof Error`: network errors can come from another realm (and the
 * SDK then wraps them as "AWS SDK error wrapper for TimeoutError: ...").
 */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, code, message, $retryable } = error as {
    name?: string;
    code?: string;
    message?: string;
    $retryable?: unknown;
  };
  return (
    RETRYABLE_NAMES.has(name ?? '') ||
    RETRYABLE_CODES.has(code ?? '') ||
    $retryable !== undefined ||
    /^AWS SDK error wrapper for (TimeoutError|Error: (socket hang up|read ECONNRESET))/.test(message ?? '')
  );
}

/**
 * Runs `operation` until it succeeds, a non-retryable error occurs, or `attempts` are spent, with
 * exponential backoff and full jitter. Only for idempotent operations.
 */
export function withRetries<T>(operation: () => Promise<T>, attempts = 4, baseDelayMs = 25): Promise<T> {
  return retrying(operation, attempts, () => baseDelayMs);
}

/** The one retry loop: `delayBaseMs` of the failure sets the next wait's base; a signal that ended the call ends it. */
async function retrying<T>(
  operation: () => Promise<T>,
  attempts: number,
  delayBaseMs: (error: unknown) => number,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= attempts || signal?.aborted || !isRetryable(error)) throw error;
      await backoff(attempt, delayBaseMs(error));
    }
  }
}

/** Waits before try `attempt + 1`: exponential backoff with full jitter, at most a second. */
export function backoff(attempt: number, baseDelayMs = 25): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1000, baseDelayMs * 2 ** attempt)));
}

/** Errors a service answers when it throttles: tried again after longer waits. */
const THROTTLING_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

/**
 * The SDK's standard retries, for the lean clients that stand in for it: `attempts` tries of a
 * retryable failure, waiting with full jitter from 100 ms bases, 500 ms after throttling (so a hot
 * partition or a throttled model is not hit harder), never past a signal that ended the call.
 */
export function withSdkRetries<T>(operation: () => Promise<T>, attempts: number, signal?: AbortSignal): Promise<T> {
  return retrying(
    operation,
    attempts,
    (error) => {
      const { name, $retryable } = error as { name?: string; $retryable?: { throttling?: boolean } };
      return THROTTLING_NAMES.has(name ?? '') || $retryable?.throttling ? 500 : 100;
    },
    signal,
  );
}
