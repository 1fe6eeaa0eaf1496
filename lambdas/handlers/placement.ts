import middy from '@middy/core';
import * as z from '../../contract/zod';
import { placementFor, readTenant } from '../core/lifecycle';
import { cleanPoolCopy, failPlacement, finishReturn, markDeploying, markReturning, startCopy } from '../core/placement';
import { type TenantRecord, tenantIdSchema } from '../core/tenant';
import { lambdaHandler, offboardingDeps, type PlatformDeps } from '../runtime';
import { workflowStepDeps } from '../runtime-workflow-steps';
import { lambdaFunction } from './lambda';

/** What the placement state machine passes to each of its task states. */
const stepSchema = z.discriminatedUnion('step', [
  z.object({ step: z.literal('deploying'), tenantId: tenantIdSchema }),
  z.object({
    step: z.literal('copy_start'),
    tenantId: tenantIdSchema,
    siloUrl: z.string().check(z.url()),
    siloResources: z.optional(z.string()),
  }),
  z.object({ step: z.literal('clean'), tenantId: tenantIdSchema }),
  z.object({ step: z.literal('return_start'), tenantId: tenantIdSchema }),
  z.object({ step: z.literal('adopt_keys'), tenantId: tenantIdSchema }),
  z.object({ step: z.literal('return_done'), tenantId: tenantIdSchema }),
  z.object({ step: z.literal('fail'), tenantId: tenantIdSchema, error: z.string() }),
]);
export type PlacementStep = z.input<typeof stepSchema>;

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type PlacementDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'registry'
  | 'ledger'
  | 'audit'
  | 'documents'
  | 'files'
  | 'vectors'
  | 'adapterHost'
  | 'inferenceProfiles'
  | 'now'
>;

/**
 * The pool's steps of a tenant's move to its silo and of its return; deploying the silo, copying
 * the data, the switch, the catch-up and the decommission are the pipeline's (CodeBuild on AWS, with
 * access to both planes). Each step reports on the tenant record and is safe to repeat.
 */
export function create(deps: PlacementDeps) {
  const placement = offboardingDeps(deps);
  const steps = {
    deploying: (tenantId: string) => markDeploying(placement, tenantId),
    clean: (tenantId: string) => cleanPoolCopy({ ...placement, pool: placement }, tenantId),
    return_start: (tenantId: string) => markReturning(placement, tenantId),
    // A return's build carried the tenant's keys into its own list (all its session may write): made keys here.
    adopt_keys: async (tenantId: string) => {
      // Only for a tenant still moving: an offboarding's purge may have deleted its keys already.
      const tenant = await readTenant(deps.registry, tenantId);
      placementFor(tenant, 'copy');
      await deps.registry.adoptCarriedKeys(tenantId);
      return tenant;
    },
    return_done: (tenantId: string) => finishReturn(placement, tenantId),
  };
  return lambdaFunction(
    middy<unknown, { tenantId: string; placement: TenantRecord['placement'] }>().handler(async (event) => {
      const input = stepSchema.parse(event);
      const record =
        input.step === 'copy_start'
          ? await startCopy(placement, input.tenantId, input)
          : input.step === 'fail'
            ? await failPlacement(placement, input.tenantId, input.error)
            : await steps[input.step](input.tenantId);
      return { tenantId: record.tenantId, placement: record.placement };
    }),
  );
}

export const handler = lambdaHandler((wiring) => create(workflowStepDeps(wiring)));
