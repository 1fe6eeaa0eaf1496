import { promptForAudit } from '../core/audit';
import { chatRequestSchema, completeChat, toChatMessages } from '../core/chat';
import {
  adapterModels,
  lambdaHandler,
  meteredRoutePorts,
  modelDeps,
  models,
  type PlatformDeps,
  tenantAdapters,
} from '../runtime';
import { vectors } from '../runtime-vectors';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type ChatCompletionsDeps = Pick<
  PlatformDeps,
  'settings' | 'audit' | 'now' | 'ledger' | 'metrics' | 'models' | 'adapterModels' | 'adapters' | 'embedder' | 'vectors'
>;

/** `POST /v1/chat/completions` */
export function create(deps: ChatCompletionsDeps) {
  const chat = modelDeps(deps);
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant, modelCall, audit }) => {
      const request = chatRequestSchema.parse(event.body);
      audit.model = request.model;
      if (tenant.auditPrompts) audit.prompt = promptForAudit(toChatMessages(request.messages));
      const completion = await completeChat(chat, tenant, request, modelCall);
      audit.inputTokens = completion.usage.prompt_tokens;
      audit.outputTokens = completion.usage.completion_tokens;
      return json(200, completion);
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    ...meteredRoutePorts(wiring),
    models: models(wiring),
    adapterModels: adapterModels(wiring),
    adapters: tenantAdapters(wiring),
    vectors: vectors(wiring),
  }),
);
