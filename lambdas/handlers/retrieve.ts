import { retrievePassages } from '../core/documents';
import { passageView, retrieveRequestSchema } from '../core/retrieval';
import { lambdaHandler, modelDeps, type PlatformDeps } from '../runtime';
import { meteredRoutePorts } from '../runtime-bedrock';
import { vectors } from '../runtime-vectors';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type RetrieveDeps = Pick<
  PlatformDeps,
  'settings' | 'audit' | 'now' | 'ledger' | 'metrics' | 'embedder' | 'vectors'
>;

/** `POST /v1/retrieve`: the top-k passages of the caller's own documents, with scores. */
export function create(deps: RetrieveDeps) {
  const retrieval = modelDeps(deps);
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant, modelCall, audit }) => {
      const request = retrieveRequestSchema.parse(event.body);
      audit.model = deps.settings.retrieval.embeddingModel;
      const passages = await retrievePassages(
        retrieval,
        tenant,
        { query: request.query, topK: request.top_k, filter: request.filter },
        modelCall,
      );
      return json(200, { object: 'list', data: passages.map((passage) => passageView(passage)) });
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    ...meteredRoutePorts(wiring),
    vectors: vectors(wiring),
  }),
);
