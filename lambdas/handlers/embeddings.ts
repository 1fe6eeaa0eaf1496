import { resolveModel } from '../core/catalog';
import { embedTexts } from '../core/documents';
import { embeddingInputs, embeddingsRequestSchema, encodeEmbedding } from '../core/embeddings';
import { PlatformError } from '../core/errors';
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
      const inputs = await embeddingInputs(request.input);
      const { dimensions } = resolveModel(retrieval.catalog, request.model, 'embedding');
      if (request.dimensions !== undefined && request.dimensions !== dimensions) {
        throw new PlatformError('invalid_request', `dimensions: ${request.model} gives ${dimensions}`);
      }
      audit.model = request.model;
      const result = await embedTexts(retrieval, tenant, inputs, { ...modelCall, user: request.user }, request.model);
      audit.inputTokens = result.inputTokens;
      audit.outputTokens = 0;
      return json(200, {
        object: 'list',
        model: request.model,
        data: result.vectors.map((vector, index) => ({
          object: 'embedding',
          index,
          embedding: encodeEmbedding(vector, request.encoding_format),
        })),
        usage: { prompt_tokens: result.inputTokens, total_tokens: result.inputTokens },
      });
    }),
  );
}

export const handler = lambdaHandler((wiring) => create(meteredRoutePorts(wiring)));
