import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { PlatformError } from '../core/errors';
import type { AdapterWorkflow } from '../core/ports';

/** Starts the state machine that polls a new adapter's component until it is in service or failed. */
export class StepFunctionsAdapterWorkflow implements AdapterWorkflow {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string | undefined,
  ) {}

  async start(adapter: { tenantId: string; name: string }): Promise<void> {
    if (!this.stateMachineArn) throw new PlatformError('conflict', 'this deployment has no adapter endpoint');
    await this.client.send(
      new StartExecutionCommand({
        stateMachineArn: this.stateMachineArn,
        // One execution per creation attempt; the steps are safe to repeat.
        name: `${adapter.tenantId}-${adapter.name}-${Date.now()}`.slice(0, 80),
        input: JSON.stringify(adapter),
      }),
    );
  }
}
