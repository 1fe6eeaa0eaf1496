import type { APIGatewayProxyResult } from 'aws-lambda';
import { errorBody } from '../../contract/errors';
import type { Tier } from '../../contract/tenancy';
import { type ChatDeps, completeChat, streamChat } from '../core/chat';
import { PlatformError } from '../core/errors';
import type { PlatformMetrics, ResponseStore } from '../core/ports';
import {
  chatRequestOf,
  checkToolChoice,
  inputItemsPage,
  inputItemsQuerySchema,
  type ResponseObject,
  type ResponsesRequest,
  readableBy,
  resolveItemReferences,
  responseEvents,
  responseIds,
  responseObject,
  responseOf,
  responsesRequestSchema,
  storedResponse,
} from '../core/responses-api';
import { type ApiEvent, json, type TenantApiContext } from './http';
import { logger } from './logger';
import { streamedAnswer } from './model-call';
import { namedEvent, type SseFormat } from './sse';

/** What the Responses routes need beyond a chat: the tenant's stored responses and how long they keep. */
export interface ResponsesDeps extends ChatDeps {
  readonly responses: ResponseStore;
  readonly storedResponseDays: Readonly<Record<Tier, number>>;
  readonly metrics: PlatformMetrics;
}

/** `resp_` and a request id: 200 characters leave room for any request id. */
const MAX_RESPONSE_ID_CHARS = 200;

/** A stored response of at most this much JSON fits a DynamoDB item (400 KB). */
const MAX_STORED_BYTES = 380_000;

/**
 * `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`:
 * the Responses API over the chat core, its responses stored in the tenant's partition.
 */
export async function responsesRoute(
  deps: ResponsesDeps,
  event: ApiEvent,
  context: TenantApiContext,
): Promise<APIGatewayProxyResult> {
  const { tenant } = context;
  const id = event.pathParameters?.id;
  if (id !== undefined) {
    // An id longer than any the platform makes is no key to look up (DynamoDB's are bounded): not found.
    const stored =
      id.length <= MAX_RESPONSE_ID_CHARS
        ? readableBy(tenant, await deps.responses.get(tenant, id, deps.now()))
        : undefined;
    // Another tenant's, or another principal's where the tenant keeps them apart: as one that does not exist.
    if (!stored) throw new PlatformError('not_found', `no response '${id.slice(0, 128)}'`);
    if (event.httpMethod === 'DELETE') {
      await deps.responses.delete(tenant, id, deps.now());
      return json(200, { id, object: 'response', deleted: true });
    }
    if (event.resource.endsWith('/input_items')) {
      return json(200, inputItemsPage(stored, inputItemsQuerySchema.parse(event.queryStringParameters ?? {})));
    }
    return json(200, stored.response);
  }

  const given = responsesRequestSchema.parse(event.body);
  const readable = async (responseId: string) =>
    readableBy(tenant, await deps.responses.get(tenant, responseId, deps.now()));
  const request = { ...given, input: await resolveItemReferences(given.input, readable) };
  checkToolChoice(request);
  context.audit.model = request.model;
  if (request.user) context.audit.user = request.user;
  if (request.metadata) context.audit.metadata = request.metadata;
  const previous = request.previous_response_id ? await readable(request.previous_response_id) : undefined;
  if (request.previous_response_id && !previous) {
    throw new PlatformError('not_found', `previous_response_id: no response '${request.previous_response_id}'`);
  }
  const chat = chatRequestOf(request, previous);
  const store = request.store ?? true;
  // What the stored item will hold at most: the conversation, the request it echoes and its input, the answer.
  // In bytes, of the request with its item references resolved (its input is kept twice).
  const storedBytes =
    Buffer.byteLength(JSON.stringify(previous?.conversation ?? [])) +
    3 * Buffer.byteLength(JSON.stringify(request)) +
    8 * (chat.max_completion_tokens ?? 5000);
  if (store && storedBytes > MAX_STORED_BYTES) {
    throw new PlatformError(
      'invalid_request',
      'the conversation is too long to store: send store: false, or start anew',
    );
  }
  const ids = responseIds(context.modelCall.requestId);
  const keep = async (response: ResponseObject) => {
    if (!store) return;
    const expiresAt = Math.floor(deps.now() / 1000) + deps.storedResponseDays[tenant.tier] * 86_400;
    try {
      await deps.responses.put(tenant, storedResponse(tenant, request, previous, response, expiresAt));
    } catch (error) {
      // The answer was generated and billed: it is answered, said to be unstored, rather than
      // failed (which SDKs retry, billing it again).
      logger.error('stored response not written', { error: error as Error });
      response.store = false;
    }
  };
  const audit = { audit: context.audit };
  if (request.stream) {
    const createdAt = Math.floor(deps.now() / 1000);
    const chunks = streamChat(
      deps,
      tenant,
      { ...chat, stream: true, stream_options: { include_usage: true } },
      context.modelCall,
      audit,
    );
    const events = responseEvents(request, chat, chunks, ids, createdAt, keep);
    return streamedAnswer(events, responsesSse(request, ids, createdAt), event, context, deps.metrics);
  }
  const completion = await completeChat(deps, tenant, chat, context.modelCall, audit);
  const response = responseOf(request, chat, completion, ids);
  await keep(response);
  return json(200, response);
}

/**
 * The Responses API's server-sent events: each named by its type, numbered in order; a failure
 * after the first ends the stream with `response.failed`.
 */
function responsesSse(
  request: ResponsesRequest,
  ids: ReturnType<typeof responseIds>,
  createdAt: number,
): SseFormat<{ type: string }> {
  let sequence = 0;
  const send = (data: { type: string }) => namedEvent(data.type, { ...data, sequence_number: sequence++ });
  return {
    event: send,
    failure: (code, message) =>
      send({
        type: 'response.failed',
        response: responseObject(
          request,
          ids,
          createdAt,
          { status: 'failed', output: [] },
          {
            error: { code, message: errorBody(code, message).error.message },
          },
        ),
      } as { type: string }),
  };
}
