import { PlatformError } from '../core/errors';

/** How Bedrock's models word a request longer than their context ("Input is too long for requested model"...). */
const CONTEXT_LENGTH = /too long|too many (input )?tokens|context (length|window)|input length/i;

/**
 * Provider errors become platform errors that name no internal resource. Errors that mean Bedrock
 * refused the request before running the model become `invalid_request` or `upstream_unavailable`,
 * which metering releases; anything else may have run, and is billed at its reservation.
 */
export function upstreamError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  const name = error instanceof Error ? error.name : '';
  if (name === 'ThrottlingException' || name === 'ServiceQuotaExceededException') {
    return new PlatformError('upstream_unavailable', 'the model is not available right now, retry shortly', {
      upstream: 'throttled',
    });
  }
  if (
    [
      'ServiceUnavailableException',
      'ModelNotReadyException',
      'AccessDeniedException',
      'ResourceNotFoundException',
    ].includes(name)
  ) {
    return new PlatformError('upstream_unavailable', 'the model is not available right now, retry shortly', {
      upstream: 'unavailable',
    });
  }
  // The request itself is at fault (too long for the model's context, say): the caller's 400, not ours.
  if (name === 'ValidationException') {
    const tooLong = CONTEXT_LENGTH.test(error instanceof Error ? error.message : '');
    return new PlatformError('invalid_request', 'the model refused the request as invalid: check its length', {
      ...(tooLong && { upstream: 'context_length' as const }),
    });
  }
  // Our own deadline (the handler must settle before it is killed), or the model's.
  if (['AbortError', 'ModelTimeoutException', 'TimeoutError', 'RequestTimeout'].includes(name)) {
    return new PlatformError('upstream_timeout', 'the model did not answer in time', { upstream: 'timeout' });
  }
  return new PlatformError('upstream_error', 'the model provider could not serve the request', { upstream: 'failed' });
}
