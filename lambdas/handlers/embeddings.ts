import { createEmbeddings, embeddingsRequestSchema } from '../core/embeddings';
import { lambdaHandler, modelDeps, type PlatformDeps } from '../runtime';
import { meteredRoutePorts } from '../runtime-bedrock';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type EmbeddingsDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'ledger' | 'metrics' | 'embedder'>;

/** `POST /v1/embeddings`: OpenAI `list` of `embedding`, metered like any model call. */
export function create(deps: EmbeddingsDeps) {
  const retrieval = modelDeps(deps);
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant, modelCall, audit }) => {
      const request = embeddingsRequestSchema.parse(event.body);
      audit.model = request.model;
      const answer = await createEmbeddings(retrieval, tenant, request, modelCall);
      audit.inputTokens = answer.usage.prompt_tokens;
      audit.outputTokens = 0;
      return json(200, answer);
    }),
  );
}

export const handler = lambdaHandler((wiring) => create(meteredRoutePorts(wiring)));
