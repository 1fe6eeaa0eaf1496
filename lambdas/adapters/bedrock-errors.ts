import { PlatformError } from '../core/errors';

/**
 * Provider errors become platform errors that name no internal resource. Errors that mean Bedrock
 * refused the request before running the model become `invalid_request` or `upstream_unavailable`,
 * which metering releases; anything else may have run, and is billed at its reservation.
 */
export function upstreamError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  const name = error instanceof Error ? error.name : '';
  if (
    [
      'ThrottlingException',
      'ServiceUnavailableException',
      'ModelNotReadyException',
      'ServiceQuotaExceededException',
      'AccessDeniedException',
      'ResourceNotFoundException',
    ].includes(name)
  ) {
    return new PlatformError('upstream_unavailable', 'the model is not available right now, retry shortly');
  }
  // The request itself is at fault (too long for the model's context, say): the caller's 400, not ours.
  if (name === 'ValidationException') {
    return new PlatformError('invalid_request', 'the model refused the request as invalid: check its length');
  }
  // Our own deadline (the handler must settle before it is killed), or the model's.
  if (['AbortError', 'ModelTimeoutException', 'TimeoutError', 'RequestTimeout'].includes(name)) {
    return new PlatformError('upstream_timeout', 'the model did not answer in time');
  }
  return new PlatformError('upstream_error', 'the model provider could not serve the request');
}
