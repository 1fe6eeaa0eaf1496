/**
 * The placement workflow's EventBridge events: the admin function announces a requested move, a
 * rule starts the state machine on it, and the state machine announces how the move ended.
 */
export const PLACEMENT_EVENTS = {
  source: 'multi-tenant-ai-platform.placement',
  requested: 'TenantPlacementRequested',
  completed: 'TenantPlacementCompleted',
  failed: 'TenantPlacementFailed',
} as const;

/** What a requested-move event carries (`detail`), and the state machine's input. */
export interface PlacementRequestedDetail {
  readonly tenantId: string;
}
