import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { SageMakerModelProvider } from './adapters/sagemaker-model-provider';
import type { ModelProvider } from './core/ports';
import { built } from './runtime';

/**
 * The GPU endpoint's components (SageMaker's runtime); none without an endpoint (its models are
 * then not in the catalog). Only the chat function imports this module.
 */
export const adapterModels = /* @__PURE__ */ built((wiring): ModelProvider | undefined => {
  const endpoint = wiring.settings.adapterEndpoint;
  return (
    endpoint &&
    new SageMakerModelProvider(new SageMakerRuntimeClient(wiring.services.sagemakerRuntime), endpoint.endpointName)
  );
});
