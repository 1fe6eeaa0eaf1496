import type { APIGatewayProxyResult } from 'aws-lambda';
import type { StreamFailure } from '../core/chat';
import { streamed } from '../streamed-response';
import { type ApiEvent, routeOf, type TenantApiContext } from './http';
import { SSE_HEADERS, type SseFormat, serverSentEvents } from './sse';

/**
 * A model call's stream as the API's server-sent events. The first event is awaited before any
 * byte, so a refusal or an early failure is an ordinary error answer; a hang-up is counted, and a
 * failure after the first event is the audit record's error code.
 */
export async function streamedAnswer<T>(
  events: AsyncGenerator<T | StreamFailure>,
  format: SseFormat<T>,
  event: ApiEvent,
  context: TenantApiContext,
  metrics: { streamDisconnected: (tenant: TenantApiContext['tenant'], route: string) => void },
): Promise<APIGatewayProxyResult> {
  const first = await events.next();
  const body = serverSentEvents(format, first, events, {
    hungUp: () => metrics.streamDisconnected(context.tenant, routeOf(event)),
    failed: (code) => {
      context.errorCode = code;
    },
  });
  return streamed(200, SSE_HEADERS, body);
}
