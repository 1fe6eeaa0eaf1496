import { chatRequestSchema, completeChat } from '../core/chat';
import { lambdaHandler, type PlatformDeps } from '../runtime';
import { json, tenantApi } from './http';

/** `POST /v1/chat/completions` */
export function create(deps: PlatformDeps) {
  return tenantApi(deps.settings.maxRequestBodyBytes).handler(async (event, { tenant, requestId }) => {
    const request = chatRequestSchema.parse(event.body);
    const completion = await completeChat(
      { catalog: deps.settings.catalog, ledger: deps.ledger, models: deps.models, now: deps.now },
      tenant,
      request,
      requestId,
    );
    return json(200, completion);
  });
}

export const handler = lambdaHandler(create);
