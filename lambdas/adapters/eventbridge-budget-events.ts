import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { BUDGET_EVENTS, type BudgetThresholdDetail } from '../../contract/events';
import type { BudgetEvents } from '../core/ports';

/** Budget announcements on the default event bus. */
export class EventBridgeBudgetEvents implements BudgetEvents {
  constructor(private readonly client: EventBridgeClient) {}

  async publish(detail: BudgetThresholdDetail): Promise<void> {
    const result = await this.client.send(
      new PutEventsCommand({
        Entries: [
          { Source: BUDGET_EVENTS.source, DetailType: BUDGET_EVENTS.thresholdReached, Detail: JSON.stringify(detail) },
        ],
      }),
    );
    // PutEvents answers 200 with failed entries counted, not thrown.
    if (result.FailedEntryCount) {
      throw new Error(`the budget event was not accepted: ${result.Entries?.[0]?.ErrorCode ?? 'unknown error'}`);
    }
  }
}
