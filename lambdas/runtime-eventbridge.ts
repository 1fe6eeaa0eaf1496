import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EventBridgeBudgetEvents } from './adapters/eventbridge-budget-events';
import { EventBridgePlacementWorkflow } from './adapters/eventbridge-placement';
import type { BudgetEvents, PlacementWorkflow } from './core/ports';
import { built } from './runtime';

/** The events the platform announces (EventBridge): only the admin and budget alert handlers import this module. */
export const budgetEvents = /* @__PURE__ */ built(
  (wiring): BudgetEvents => new EventBridgeBudgetEvents(new EventBridgeClient(wiring.services.events)),
);
export const placement = /* @__PURE__ */ built(
  (wiring): PlacementWorkflow => new EventBridgePlacementWorkflow(new EventBridgeClient(wiring.services.events)),
);
