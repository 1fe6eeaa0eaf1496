import middy from '@middy/core';
import * as z from '../../contract/zod';
import { purgeTenantData, tombstoneTenant } from '../core/offboarding';
import { tenantIdSchema } from '../core/tenant';
import { lambdaHandler, offboardingDeps, type PlatformDeps } from '../runtime';
import { workflowStepDeps } from '../runtime-workflow-steps';
import { lambdaFunction } from './lambda';

/** What the offboarding state machine passes to each of its task states. */
const stepSchema = z.object({ step: z.enum(['purge', 'tombstone']), tenantId: tenantIdSchema });

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type OffboardingDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'registry'
  | 'ledger'
  | 'audit'
  | 'documents'
  | 'files'
  | 'sessions'
  | 'cache'
  | 'responses'
  | 'vectors'
  | 'adapterHost'
  | 'inferenceProfiles'
  | 'now'
>;

/** The offboarding workflow's tasks; the state machine (or the local runner) retries a failed one. */
export function create(deps: OffboardingDeps) {
  const offboarding = offboardingDeps(deps);
  return lambdaFunction(
    middy<unknown, { tenantId: string; status: string; deleted: Record<string, number> }>().handler(async (event) => {
      const { step, tenantId } = stepSchema.parse(event);
      const record =
        step === 'purge' ? await purgeTenantData(offboarding, tenantId) : await tombstoneTenant(offboarding, tenantId);
      return { tenantId, status: record.status, deleted: record.offboarding?.deleted ?? {} };
    }),
  );
}

export const handler = lambdaHandler((wiring) => create(workflowStepDeps(wiring)));
