import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PLACEMENT_EVENTS, type PlacementRequestedDetail } from '../../contract/events';
import type { PlacementWorkflow } from '../core/ports';

/** Announces a requested move on the default event bus; the pool stack's rules start its direction's state machine on it. */
export class EventBridgePlacementWorkflow implements PlacementWorkflow {
  constructor(private readonly client: EventBridgeClient) {}

  async start(tenant: { tenantId: string; to?: 'silo' | 'pool' }): Promise<void> {
    const detail: PlacementRequestedDetail = { tenantId: tenant.tenantId, to: tenant.to ?? 'silo' };
    const result = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: PLACEMENT_EVENTS.source,
            DetailType: PLACEMENT_EVENTS.requested,
            Detail: JSON.stringify(detail),
          },
        ],
      }),
    );
    // PutEvents answers 200 with failed entries counted, not thrown.
    if (result.FailedEntryCount) {
      throw new Error(`the placement event was not accepted: ${result.Entries?.[0]?.ErrorCode ?? 'unknown error'}`);
    }
  }
}
