import { OFFBOARDING_EVENTS, PLACEMENT_EVENTS } from '../../contract/events';
import {
  type DurableWorkflow,
  OFFBOARDING_WORKFLOW,
  PLACEMENT_WORKFLOW,
  RETURN_WORKFLOW,
} from '../../contract/workflows';
import { platformConfig } from '../../lib/config';
import { budget, POOL, synthesized } from '../infra/synthesized';
import { call, ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';
import { stateMachineDefinitions } from '../support/templates';

/**
 * The placement and offboarding workflows are written once (`contract/workflows.ts`): the CDK
 * builds each state machine from its list and the local runner walks the same list. Here the
 * states a local execution entered are compared with the path through the synthesized definition.
 */
type State = {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { Next: string }[];
};
type Definition = { StartAt: string; States: Record<string, State> };

// The pool as `cdk synth` with no context builds it, shared with the infra suites.
let placement: Definition;
let returning: Definition;
let offboarding: Definition;
beforeAll(async () => {
  const template = (await synthesized('defaults')).template(POOL);
  const definitions = stateMachineDefinitions(template).map((machine) => machine.definition as Definition);
  const definitionWith = (state: string): Definition => {
    const found = definitions.find((definition) => state in definition.States);
    if (!found) throw new Error(`no state machine with ${state}`);
    return found;
  };
  placement = definitionWith('DeploySilo');
  returning = definitionWith('SwitchToPool');
  offboarding = definitionWith('ServedBySilo');
}, budget('defaults'));

/** The states an execution enters: `Next` each time, the branch `choose` names at a Choice, the Catch at `failAt`. */
function pathThrough(
  definition: Definition,
  how: { readonly choose?: Record<string, string>; readonly failAt?: string } = {},
): string[] {
  const path: string[] = [];
  for (let name: string | undefined = definition.StartAt; name; ) {
    path.push(name);
    if (path.length > 50) throw new Error(`no end after ${path.join(' → ')}`);
    const state: State = definition.States[name];
    if (state.Type === 'Choice') name = how.choose?.[name] ?? state.Default;
    else if (name === how.failAt) name = state.Catch?.[0].Next;
    else name = state.Next;
  }
  return path;
}

/** Every state the list names: its steps (and their Choice states), the end states, the failure steps. */
function statesOf(workflow: DurableWorkflow): string[] {
  const names = [...workflow.steps, ...workflow.onFailure.steps].flatMap((step) =>
    step.kind === 'build' && step.onlyIf ? [step.onlyIf.choice, step.name] : [step.name],
  );
  return [...names, workflow.succeeded, workflow.onFailure.failed].sort();
}

describe('each durable workflow, written once, in Step Functions and in local mode', () => {
  it('synthesizes the states of its list, in its order, its failures going to its failure steps', () => {
    expect(Object.keys(placement.States).sort()).toEqual(statesOf(PLACEMENT_WORKFLOW));
    expect(Object.keys(returning.States).sort()).toEqual(statesOf(RETURN_WORKFLOW));
    expect(Object.keys(offboarding.States).sort()).toEqual(statesOf(OFFBOARDING_WORKFLOW));
    expect(pathThrough(placement)).toEqual([...PLACEMENT_WORKFLOW.steps.map((step) => step.name), 'Placed']);
    expect(pathThrough(returning)).toEqual([...RETURN_WORKFLOW.steps.map((step) => step.name), 'Returned']);
    expect(pathThrough(placement, { failAt: 'CopyData' })).toEqual([
      ...['MarkDeploying', 'DeploySilo', 'StartCopy', 'CopyData'],
      ...PLACEMENT_WORKFLOW.onFailure.steps.map((step) => step.name),
      'PlacementFailed',
    ]);
    expect(pathThrough(offboarding, { failAt: 'PurgeTenantData' })).toEqual([
      ...['HasSilo', 'WaitForDrain', 'ServedBySilo', 'PurgeTenantData'],
      ...OFFBOARDING_WORKFLOW.onFailure.steps.map((step) => step.name),
      'OffboardingFailed',
    ]);
  });

  describe('the local runners enter the states the state machines do', () => {
    const clock = new ManualClock();
    const drainMs = () => platform.deps.settings.offboardingDrainSeconds * 1000 + 1000;
    let platform: Awaited<ReturnType<typeof startTestPlatform>>;
    const admin = (method: string, path: string) =>
      call(platform, method, path, { credential: platform.operatorToken });
    const announced = (source: string) =>
      platform.eventBridge.events.filter((event) => event.source === source).map((event) => event.detailType);

    beforeAll(async () => {
      platform = await startTestPlatform(platformConfig(), {
        now: clock.now,
        siloDeployFault: (tenantId) => (tenantId === 'stuck-bank' ? 'CREATE_FAILED: stack rolled back' : undefined),
      });
    });
    afterAll(() => platform.close());

    it('a move to a silo, through the drain, to its announcement', async () => {
      await onboard(platform, 'order-bank', { tier: 'enterprise' });
      expect((await admin('POST', '/admin/tenants/order-bank/promote')).status).toBe(202);
      await platform.placement.runDue();
      // copied and switched, waiting out the drain: the execution stays at the Wait state
      expect(platform.placement.history('order-bank')).toEqual(pathThrough(placement).slice(0, 6));
      clock.advance(drainMs());
      await platform.placement.runDue();

      expect(platform.placement.history('order-bank')).toEqual(pathThrough(placement));
      expect((await admin('GET', '/admin/tenants/order-bank')).body.placement_status).toBe('complete');
      expect(announced(PLACEMENT_EVENTS.source)).toEqual([PLACEMENT_EVENTS.completed]);
    });

    it('a return to the pool, through the drain and the decommission of its silo, to its announcement', async () => {
      await onboard(platform, 'round-bank', { tier: 'enterprise' });
      await admin('POST', '/admin/tenants/round-bank/promote');
      await platform.placement.runDue();
      clock.advance(drainMs());
      await platform.placement.runDue();
      expect((await admin('POST', '/admin/tenants/round-bank/demote')).status).toBe(202);
      await platform.placement.runDue();
      // switched, waiting for the pool's cached decisions to go, then flipped, waiting out the silo's drain
      expect(platform.placement.returnHistory('round-bank')).toEqual(pathThrough(returning).slice(0, 6));
      clock.advance(drainMs());
      await platform.placement.runDue();
      expect(platform.placement.returnHistory('round-bank')).toEqual(pathThrough(returning).slice(0, 9));
      clock.advance(drainMs());
      await platform.placement.runDue();

      expect(platform.placement.returnHistory('round-bank')).toEqual(pathThrough(returning));
      expect((await admin('GET', '/admin/tenants/round-bank')).body).toMatchObject({
        placement: 'pool',
        placement_status: 'complete',
      });
      expect(platform.silos.has('round-bank')).toBe(false);
      expect(announced(PLACEMENT_EVENTS.source).slice(-2)).toEqual([
        PLACEMENT_EVENTS.completed,
        PLACEMENT_EVENTS.returned,
      ]);
    });

    it('a move whose deploy fails, through the Catch to the failure steps', async () => {
      await onboard(platform, 'stuck-bank', { tier: 'enterprise', placement: 'silo' });
      await platform.placement.runDue();

      expect(platform.placement.history('stuck-bank')).toEqual(pathThrough(placement, { failAt: 'DeploySilo' }));
      expect((await admin('GET', '/admin/tenants/stuck-bank')).body).toMatchObject({
        placement_status: 'failed',
        placement_error: 'deploy failed: CREATE_FAILED: stack rolled back',
      });
      expect(announced(PLACEMENT_EVENTS.source)).toEqual([
        PLACEMENT_EVENTS.completed,
        PLACEMENT_EVENTS.completed,
        PLACEMENT_EVENTS.returned,
        PLACEMENT_EVENTS.failed,
      ]);
    });

    it('offboarding a pool tenant, and a silo tenant through the decommission of its silo', async () => {
      await offboardCompletely(platform, clock, 'stuck-bank');
      expect(platform.offboarding.history('stuck-bank')).toEqual(pathThrough(offboarding));

      await offboardCompletely(platform, clock, 'order-bank');
      expect(platform.offboarding.history('order-bank')).toEqual(
        pathThrough(offboarding, { choose: { HasSilo: 'SuspendAtSilo', ServedBySilo: 'DecommissionSilo' } }),
      );
      expect(platform.silos.has('order-bank')).toBe(false);
      expect(announced(OFFBOARDING_EVENTS.source)).toEqual([
        OFFBOARDING_EVENTS.completed,
        OFFBOARDING_EVENTS.completed,
      ]);
    });
  });
});
