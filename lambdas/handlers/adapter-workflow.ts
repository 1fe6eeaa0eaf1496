import middy from '@middy/core';
import { ADAPTER_NAME_PATTERN } from '../../contract/adapters';
import * as z from '../../contract/zod';
import { refreshAdapter } from '../core/adapters';
import { tenantIdSchema } from '../core/tenant';
import { lambdaHandler, type PlatformDeps, registry } from '../runtime';
import { adapterHost } from '../runtime-sagemaker';
import { lambdaFunction } from './lambda';

/** What the adapter state machine passes to its poll. */
const adapterSchema = z.object({ tenantId: tenantIdSchema, name: z.string().check(z.regex(ADAPTER_NAME_PATTERN)) });

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type AdapterWorkflowDeps = Pick<PlatformDeps, 'registry' | 'adapterHost'>;

/** The adapter workflow's poll: records the component's status once SageMaker has settled it; `pending` until then. */
export function create(deps: AdapterWorkflowDeps) {
  return lambdaFunction(
    middy<unknown, { status: 'pending' | 'done' }>().handler(async (event) => {
      const { tenantId, name } = adapterSchema.parse(event);
      return { status: await refreshAdapter({ registry: deps.registry, host: deps.adapterHost }, tenantId, name) };
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({ registry: registry(wiring), adapterHost: adapterHost(wiring) }),
);
