import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { HandlerName } from '../../contract/routes';
import type { PlatformDeps } from '../runtime';
import * as admin from './admin';
import * as audit from './audit';
import * as chatCompletions from './chat-completions';
import * as documents from './documents';
import * as embeddings from './embeddings';
import type { LambdaFunction } from './lambda';
import * as models from './models';
import * as retrieve from './retrieve';
import * as sessions from './sessions';
import * as usage from './usage';

/** What API Gateway invokes. */
export type RouteHandler = LambdaFunction<APIGatewayProxyEvent, APIGatewayProxyResult>;

/** Route handlers by name, for the local platform (on AWS each is its own Lambda bundle). */
export const ROUTE_HANDLERS: Record<HandlerName, (deps: PlatformDeps) => RouteHandler> = {
  'chat-completions': (deps) => chatCompletions.create(deps),
  embeddings: (deps) => embeddings.create(deps),
  models: (deps) => models.create(deps),
  documents: (deps) => documents.create(deps),
  retrieve: (deps) => retrieve.create(deps),
  usage: (deps) => usage.create(deps),
  audit: (deps) => audit.create(deps),
  sessions: (deps) => sessions.create(deps),
  admin: (deps) => admin.create(deps),
};
