import { Logger } from '@aws-lambda-powertools/logger';

/** The one logger of a function: the request middleware adds the tenant, request id and route to its lines. */
export const logger = new Logger();
