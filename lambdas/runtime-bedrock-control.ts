import { BedrockInferenceProfiles } from './adapters/bedrock-inference-profiles';
import type { InferenceProfiles } from './core/ports';
import { built } from './runtime';

/** Bedrock's control plane (tenants' inference profiles): only the admin and tenant workflow handlers import this module. */
export const inferenceProfiles = /* @__PURE__ */ built(
  (wiring): InferenceProfiles =>
    new BedrockInferenceProfiles(
      wiring.services.bedrockControl,
      wiring.settings.tenantInferenceProfiles?.namePrefix ?? 'tenant',
    ),
);
