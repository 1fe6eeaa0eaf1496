import type { MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';

/** What Lambda invokes, for API Gateway, SQS or Step Functions alike. */
export type LambdaFunction<E, R> = (event: E, context: Context) => Promise<R>;

/**
 * The one seam between middy's handler type and Lambda's signature: middy's is typed with the
 * context its middlewares complete (tenant, request id, audit), Lambda passes a plain one, which
 * those middlewares fill in before the handler body runs. Every handler goes through here.
 */
export function lambdaFunction<E, R, C extends Context>(
  handler: MiddyfiedHandler<E, R, Error, C>,
): LambdaFunction<E, R> {
  return (event, context) => handler(event, context as C);
}
