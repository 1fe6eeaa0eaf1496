import { promptForAudit } from '../core/audit';
import { chatRequestSchema, completeChat, toChatMessages } from '../core/chat';
import { lambdaHandler, modelDeps, type PlatformDeps } from '../runtime';
import { json, tenantApi } from './http';

/** `POST /v1/chat/completions` */
export function create(deps: PlatformDeps) {
  const chat = modelDeps(deps);
  return tenantApi(deps).handler(async (event, { tenant, modelCall, audit }) => {
    const request = chatRequestSchema.parse(event.body);
    audit.model = request.model;
    if (tenant.auditPrompts) audit.prompt = promptForAudit(toChatMessages(request.messages));
    const completion = await completeChat(chat, tenant, request, modelCall);
    audit.inputTokens = completion.usage.prompt_tokens;
    audit.outputTokens = completion.usage.completion_tokens;
    return json(200, completion);
  });
}

export const handler = lambdaHandler(create);
