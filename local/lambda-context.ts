import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { HANDLER_TIMEOUT_SECONDS } from '../contract/lambda';

/** A Lambda context as the runtime passes it: an id, and the time left before the timeout. */
export function lambdaContext(requestId: string = randomUUID(), timeoutMs = HANDLER_TIMEOUT_SECONDS * 1000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:local',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
