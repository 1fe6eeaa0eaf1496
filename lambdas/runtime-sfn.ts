import { SFNClient } from '@aws-sdk/client-sfn';
import { StepFunctionsAdapterWorkflow } from './adapters/step-functions-adapter-workflow';
import { StepFunctionsOffboardingWorkflow } from './adapters/step-functions-offboarding';
import type { AdapterWorkflow, OffboardingWorkflow } from './core/ports';
import { built } from './runtime';

/** The workflows the admin function starts (Step Functions): only it imports this module. */
export const offboarding = /* @__PURE__ */ built(
  (wiring): OffboardingWorkflow =>
    new StepFunctionsOffboardingWorkflow(
      new SFNClient(wiring.services.sfn),
      wiring.settings.offboardingStateMachineArn,
    ),
);
export const adapterWorkflow = /* @__PURE__ */ built(
  (wiring): AdapterWorkflow =>
    new StepFunctionsAdapterWorkflow(
      new SFNClient(wiring.services.sfn),
      wiring.settings.adapterWorkflowStateMachineArn,
    ),
);
