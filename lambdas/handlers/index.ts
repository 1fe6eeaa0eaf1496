import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { HandlerName } from '../../contract/routes';
import type { PlatformDeps } from '../runtime';
import * as admin from './admin';
import * as audit from './audit';
import * as chatCompletions from './chat-completions';
import * as documents from './documents';
import * as embeddings from './embeddings';
import * as retrieve from './retrieve';
import * as usage from './usage';

/** What API Gateway invokes: a plain Lambda context goes in; the middlewares add their fields to it. */
export type RouteHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** Route handlers by name, for the local platform (on AWS each is its own Lambda bundle). */
export const ROUTE_HANDLERS: Record<HandlerName, (deps: PlatformDeps) => RouteHandler> = {
  'chat-completions': (deps) => chatCompletions.create(deps) as unknown as RouteHandler,
  embeddings: (deps) => embeddings.create(deps) as unknown as RouteHandler,
  documents: (deps) => documents.create(deps) as unknown as RouteHandler,
  retrieve: (deps) => retrieve.create(deps) as unknown as RouteHandler,
  usage: (deps) => usage.create(deps) as unknown as RouteHandler,
  audit: (deps) => audit.create(deps) as unknown as RouteHandler,
  admin: (deps) => admin.create(deps) as unknown as RouteHandler,
};
