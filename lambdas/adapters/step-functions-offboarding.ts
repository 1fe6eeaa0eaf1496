import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { OffboardingWorkflow } from '../core/ports';

/**
 * Starts the offboarding state machine. The execution is named after the tenant, and tenant ids
 * are never reused, so a second start of the same offboarding finds the first instead of racing it.
 */
export class StepFunctionsOffboardingWorkflow implements OffboardingWorkflow {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(tenant: { tenantId: string; drainUntil: string; silo: boolean }): Promise<void> {
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name: `offboard-${tenant.tenantId}`,
          input: JSON.stringify(tenant),
        }),
      );
    } catch (error) {
      // Same name, same input: Step Functions answers with the running execution; once it has
      // ended, or for a different input, with ExecutionAlreadyExists. Either way it is started.
      if ((error as { name?: string }).name !== 'ExecutionAlreadyExists') throw error;
    }
  }
}
