import { BedrockBatchInference } from './adapters/bedrock-batch-inference';
import { BedrockInferenceProfiles } from './adapters/bedrock-inference-profiles';
import type { BatchInference, InferenceProfiles } from './core/ports';
import { built } from './runtime';

/** Bedrock's control plane (tenants' inference profiles, batch inference jobs): only the handlers that use it import this module. */
export const inferenceProfiles = /* @__PURE__ */ built(
  (wiring): InferenceProfiles =>
    new BedrockInferenceProfiles(
      wiring.services.bedrockControl,
      wiring.settings.tenantInferenceProfiles?.namePrefix ?? 'tenant',
    ),
);

export const batchInference = /* @__PURE__ */ built(
  (wiring): BatchInference =>
    new BedrockBatchInference(wiring.services.bedrockControl, wiring.settings.batchInferenceRoleArn ?? ''),
);
