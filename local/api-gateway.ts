import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayRequestAuthorizerEvent,
  PolicyDocument,
} from 'aws-lambda';
import { errorBody } from '../contract/errors';
import { BINARY_MEDIA_TYPES } from '../contract/files';
import { STREAMING_HANDLER_TIMEOUT_SECONDS } from '../contract/lambda';
import {
  AUTHORIZER_DENY_REASON,
  credentialOf,
  GATEWAY_RESPONSES,
  type GatewayResponseType,
  type HandlerName,
  type Route,
} from '../contract/routes';
import type { RouteHandler } from '../lambdas/handlers';
import type { LambdaFunction } from '../lambdas/handlers/lambda';
import { streamedBody, writeStreamed } from '../lambdas/streamed-response';
import { readBody } from './aws-wire';
import { lambdaContext } from './lambda-context';

/** API Gateway's REST payload limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
const API_ARN = 'arn:aws:execute-api:local:000000000000:local';
const STAGE = 'local';

export interface LocalApiGatewayOptions {
  readonly routes: readonly Route[];
  readonly handlers: Readonly<Record<HandlerName, RouteHandler>>;
  readonly authorizer: LambdaFunction<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>;
  readonly authorizerCacheTtlSeconds: number;
  /** Stands in for IAM on admin routes. */
  readonly operatorToken: string;
  readonly now?: () => number;
  /**
   * How long a handler may run (its Lambda timeout), as `getRemainingTimeInMillis` tells it.
   * @default HANDLER_TIMEOUT_SECONDS (30 s)
   */
  readonly handlerTimeoutMs?: number;
}

interface MatchedRoute {
  readonly route: Route;
  readonly pathParameters: Record<string, string>;
}

/**
 * What API Gateway does in front of our Lambdas, for local mode: routes from the shared route table,
 * a REQUEST authorizer with a result cache keyed by the Authorization header, policy evaluation
 * against the method ARN, proxy events, and gateway responses in the platform's error shape.
 */
export function createLocalApiGateway(options: LocalApiGatewayOptions) {
  const now = options.now ?? Date.now;
  const matchers = options.routes.map((route) => ({ route, pattern: pathPattern(route.path) }));
  const authorizerCache = new Map<string, { result: APIGatewayAuthorizerResult; expiresAt: number }>();

  /**
   * The route and its decoded path parameters; `malformed` for a parameter that is not valid
   * percent-encoded UTF-8. On AWS, a REST API refuses a path it cannot decode itself, before routing
   * and the authorizer, so no Lambda runs; the local front does the same and answers 400 in the
   * platform's error shape (the BAD_REQUEST_PARAMETERS gateway response), whatever the credential.
   */
  function match(method: string, path: string): MatchedRoute | 'malformed' | undefined {
    // As API Gateway: a resource of the path without the method is no route, whatever a greedy resource matches.
    const resources = matchers.filter(({ pattern }) => pattern.test(path));
    const explicit = resources.filter(({ route }) => !route.path.endsWith('+}'));
    for (const { route, pattern } of explicit.length > 0 ? explicit : resources) {
      const found = pattern.exec(path);
      if (found && (route.method === method || route.method === 'ANY')) {
        try {
          const pathParameters = Object.fromEntries(
            Object.entries(found.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]),
          );
          return { route, pathParameters };
        } catch {
          return 'malformed';
        }
      }
    }
    return undefined;
  }

  async function authorize(
    event: APIGatewayRequestAuthorizerEvent,
    header: string,
  ): Promise<APIGatewayAuthorizerResult> {
    const cached = authorizerCache.get(header);
    if (cached && cached.expiresAt > now()) return cached.result;
    const result = await options.authorizer(event, lambdaContext());
    if (options.authorizerCacheTtlSeconds > 0) {
      authorizerCache.set(header, { result, expiresAt: now() + options.authorizerCacheTtlSeconds * 1000 });
    }
    return result;
  }

  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    /** `detail`: what the template's `$context.authorizer.denyReason` adds on AWS. */
    const gatewayResponse = (type: GatewayResponseType, detail = '') => {
      const { status, code, message } = GATEWAY_RESPONSES[type];
      send(
        response,
        status,
        { 'content-type': 'application/json', 'x-request-id': requestId },
        JSON.stringify(errorBody(code, `${message}${detail}`, requestId)),
      );
    };

    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://local');
    } catch {
      return gatewayResponse('BAD_REQUEST_PARAMETERS');
    }
    const method = request.method ?? 'GET';
    const matched = match(method, url.pathname);
    if (matched === 'malformed') return gatewayResponse('BAD_REQUEST_PARAMETERS');
    if (!matched) return gatewayResponse('MISSING_AUTHENTICATION_TOKEN');

    let body: Buffer;
    try {
      body = await readBody(request, MAX_PAYLOAD_BYTES);
    } catch {
      return gatewayResponse('REQUEST_TOO_LARGE');
    }
    const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
    const query = url.searchParams.size > 0 ? Object.fromEntries(url.searchParams) : null;
    // As API Gateway sends both: the last value of each name, and every value.
    const multiValueQuery =
      url.searchParams.size > 0
        ? Object.fromEntries([...new Set(url.searchParams.keys())].map((name) => [name, url.searchParams.getAll(name)]))
        : null;
    const methodArn = `${API_ARN}/${STAGE}/${method}${url.pathname}`;
    const requestContext = {
      requestId,
      stage: STAGE,
      httpMethod: method,
      resourcePath: matched.route.path,
      path: `/${STAGE}${url.pathname}`,
      identity: { sourceIp: request.socket.remoteAddress ?? '127.0.0.1' },
    } as APIGatewayProxyEvent['requestContext'];

    let authorizerContext: APIGatewayProxyEvent['requestContext']['authorizer'] = null;
    if (matched.route.auth === 'admin') {
      if (!isOperator(headers.authorization, options.operatorToken)) return gatewayResponse('ACCESS_DENIED');
    } else {
      // API Gateway invokes the Anthropic routes' authorizer with either header, the others' with `Authorization` only.
      const header = matched.route.dialect === 'anthropic' ? credentialOf(headers) : headers.authorization;
      if (!header) return gatewayResponse('UNAUTHORIZED');
      let result: APIGatewayAuthorizerResult;
      try {
        result = await authorize(
          {
            type: 'REQUEST',
            methodArn,
            resource: matched.route.path,
            path: url.pathname,
            httpMethod: method,
            headers,
            multiValueHeaders: null,
            pathParameters: matched.pathParameters,
            queryStringParameters: query,
            multiValueQueryStringParameters: null,
            stageVariables: null,
            requestContext,
          } as APIGatewayRequestAuthorizerEvent,
          header,
        );
      } catch (error) {
        return gatewayResponse(
          error instanceof Error && error.message === 'Unauthorized' ? 'UNAUTHORIZED' : 'AUTHORIZER_FAILURE',
        );
      }
      if (!allows(result.policyDocument, methodArn)) {
        return gatewayResponse('ACCESS_DENIED', String(result.context?.[AUTHORIZER_DENY_REASON] ?? ''));
      }
      authorizerContext = { ...result.context, principalId: result.principalId };
    }

    const event: APIGatewayProxyEvent = {
      resource: matched.route.path,
      path: url.pathname,
      httpMethod: method,
      headers,
      multiValueHeaders: {},
      queryStringParameters: query,
      multiValueQueryStringParameters: multiValueQuery,
      pathParameters: Object.keys(matched.pathParameters).length > 0 ? matched.pathParameters : null,
      stageVariables: null,
      requestContext: { ...requestContext, authorizer: authorizerContext },
      // As API Gateway does with the API's binary media types: their bodies as base64.
      ...(binary(headers)
        ? { body: body.length > 0 ? body.toString('base64') : null, isBase64Encoded: true }
        : { body: body.length > 0 ? body.toString('utf8') : null, isBase64Encoded: false }),
    };
    try {
      const result = await options.handlers[matched.route.handler](
        event,
        lambdaContext(
          requestId,
          options.handlerTimeoutMs ?? (matched.route.streaming ? STREAMING_HANDLER_TIMEOUT_SECONDS * 1000 : undefined),
        ),
      );
      const body = streamedBody(result);
      if (body) {
        // API Gateway's `STREAM` transfer mode: the head now, the bytes as the handler makes them.
        response.writeHead(result.statusCode, stringHeaders(result.headers ?? {}));
        response.flushHeaders();
        return await writeStreamed(body, response);
      }
      send(response, result.statusCode, { ...result.headers }, result.body);
    } catch {
      if (response.headersSent) response.destroy();
      else gatewayResponse('DEFAULT_5XX');
    }
  };
}

/**
 * For the HTTP server's `clientError`: a request Node cannot parse (a request line or headers over
 * its 16 KB limit, a malformed request line) gets a gateway response in the error shape, where Node
 * would answer 431 or 400 with no body. On AWS, API Gateway refuses such requests before routing
 * too (its own limits are lower: 10 KB of headers), with a body of its own.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || error.code === 'ECONNRESET' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.destroy();
    return;
  }
  const type: GatewayResponseType =
    error.code === 'HPE_HEADER_OVERFLOW' ? 'REQUEST_TOO_LARGE' : 'BAD_REQUEST_PARAMETERS';
  const { status, code, message } = GATEWAY_RESPONSES[type];
  const requestId = randomUUID();
  const body = JSON.stringify(errorBody(code, message, requestId));
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\nx-request-id: ${requestId}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function stringHeaders(headers: Record<string, string | number | boolean>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
}

function send(
  response: ServerResponse,
  status: number,
  headers: Record<string, string | number | boolean>,
  body: string,
) {
  const head = stringHeaders(headers);
  // With its length, as API Gateway answers: Node would otherwise chunk a body given after `writeHead`.
  if (status !== 204 && status !== 304) head['content-length'] = String(Buffer.byteLength(body));
  response.writeHead(status, head);
  response.end(body);
}

/** A resource path as a pattern: `{name}` one segment, `{name+}` (greedy) one or more. */
function pathPattern(path: string): RegExp {
  const source = path
    .replace(/[.?^$()[\]\\|]/g, '\\$&')
    .replace(/\{(\w+)\+\}/g, '(?<$1>.+)')
    .replace(/\{(\w+)\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${source}$`);
}

export function isOperator(header: string | undefined, operatorToken: string): boolean {
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${operatorToken}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** IAM evaluation, reduced to what authorizer policies use: an explicit Deny wins, else some Allow must match. */
function allows(policy: PolicyDocument, methodArn: string): boolean {
  const matching = policy.Statement.filter((statement) => {
    const resources = 'Resource' in statement ? [statement.Resource].flat() : [];
    return resources.some((resource) => wildcard(String(resource)).test(methodArn));
  });
  return matching.some((s) => s.Effect === 'Allow') && !matching.some((s) => s.Effect === 'Deny');
}

/** Resource patterns as compiled: an authorizer's cached policy is evaluated on each request it serves. */
const wildcards = new Map<string, RegExp>();
const MAX_WILDCARDS = 1024;

function wildcard(pattern: string): RegExp {
  let compiled = wildcards.get(pattern);
  if (!compiled) {
    compiled = wildcardPattern(pattern);
    if (wildcards.size >= MAX_WILDCARDS) wildcards.delete(wildcards.keys().next().value as string);
    wildcards.set(pattern, compiled);
  }
  return compiled;
}

function wildcardPattern(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()[\]\\|]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** Whether a request's body is one of the API's binary media types (its content type, parameters aside). */
function binary(headers: Record<string, string>): boolean {
  const contentType = Object.entries(headers).find(([name]) => name.toLowerCase() === 'content-type')?.[1] ?? '';
  return (BINARY_MEDIA_TYPES as readonly string[]).includes(contentType.split(';')[0].trim().toLowerCase());
}
