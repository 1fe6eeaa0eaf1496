import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { SageMakerAdapterHost } from './adapters/sagemaker-adapter-host';
import type { AdapterHost } from './core/ports';
import { built } from './runtime';

/**
 * SageMaker's control plane, for the admin function and the tenant and adapter workflows: the
 * function's own role. Only they import this module (its SDK is the largest the platform uses).
 */
export const adapterHost = /* @__PURE__ */ built(
  (wiring): AdapterHost => new SageMakerAdapterHost(new SageMakerClient(wiring.services.sagemaker)),
);
