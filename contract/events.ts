/**
 * The placement workflow's EventBridge events: the admin function announces a requested move, a
 * rule starts the state machine on it, and the state machine announces how the move ended.
 */
export const PLACEMENT_EVENTS = {
  source: 'multi-tenant-ai-platform.placement',
  requested: 'TenantPlacementRequested',
  completed: 'TenantPlacementCompleted',
  /** A silo tenant is a pool tenant again, its silo decommissioned. */
  returned: 'TenantReturnedToPool',
  failed: 'TenantPlacementFailed',
} as const;

/** What a requested-move event carries (`detail`), and the state machine's input. */
export interface PlacementRequestedDetail {
  readonly tenantId: string;
  /** Where the tenant goes: its silo (the promotion's state machine), or back to the pool (the return's). */
  readonly to: 'silo' | 'pool';
}

/**
 * The offboarding workflow's EventBridge events: the state machine announces how an offboarding
 * ended, for the operator's rules (email, webhook).
 */
export const OFFBOARDING_EVENTS = {
  source: 'multi-tenant-ai-platform.offboarding',
  completed: 'TenantOffboarded',
  failed: 'TenantOffboardingFailed',
} as const;

/**
 * A tenant's spend reached a share of its monthly budget: announced once per tenant, month and
 * threshold on the default event bus, where the plane's rule sends it to the operators' topic and
 * any other rule may route it (email, a webhook through an API destination).
 */
export const BUDGET_EVENTS = {
  source: 'multi-tenant-ai-platform.metering',
  thresholdReached: 'TenantBudgetThresholdReached',
  /** Shares of the monthly budget announced, in percent. */
  thresholdsPercent: [80, 100],
} as const;

/** The `plane` of the pool's budget events. */
export const POOL_PLANE = 'pool';

/** What a budget event carries (`detail`). */
export interface BudgetThresholdDetail {
  /** The plane whose ledger counted the spend: `pool`, or the silo's tenant id. Its rule matches only its own. */
  readonly plane: string;
  readonly tenantId: string;
  readonly tier: string;
  /** `yyyy-mm`, UTC. */
  readonly month: string;
  readonly thresholdPercent: number;
  readonly spentUsd: number;
  readonly budgetUsd: number;
}
