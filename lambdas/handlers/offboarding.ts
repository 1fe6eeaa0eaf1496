import middy from '@middy/core';
import { z } from 'zod';
import { purgeTenantData, tombstoneTenant } from '../core/offboarding';
import { tenantIdSchema } from '../core/tenant';
import { lambdaHandler, offboardingDeps, type PlatformDeps } from '../runtime';

/** What the offboarding state machine passes to each of its task states. */
const stepSchema = z.object({ step: z.enum(['purge', 'tombstone']), tenantId: tenantIdSchema });

/** The offboarding workflow's tasks; the state machine (or the local runner) retries a failed one. */
export function create(deps: PlatformDeps) {
  const offboarding = offboardingDeps(deps);
  return middy<unknown, { tenantId: string; status: string; deleted: Record<string, number> }>().handler(
    async (event) => {
      const { step, tenantId } = stepSchema.parse(event);
      const record =
        step === 'purge' ? await purgeTenantData(offboarding, tenantId) : await tombstoneTenant(offboarding, tenantId);
      return { tenantId, status: record.status, deleted: record.offboarding?.deleted ?? {} };
    },
  );
}

export const handler = lambdaHandler(create);
