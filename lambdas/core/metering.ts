import type { Ledger, Reservation } from '../ports';
import { costNanoUsd, type ResolvedModel } from './catalog';
import type { TenantContext } from './tenant';

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * Runs one model call inside the ledger: reserve the estimate (429 if a limit refuses it, and the
 * call never runs), then settle what the call reports it used, or release it all if the call fails.
 */
export async function metered<R extends TokenUsage>(
  ledger: Ledger,
  tenant: TenantContext,
  call: { requestId: string; model: ResolvedModel; estimate: TokenUsage; nowMs: number },
  run: () => Promise<R>,
): Promise<R> {
  return runReserved(ledger, call.model, await reserveCall(ledger, tenant, call), run);
}

/** Reserves a model call's estimate against every limit of the tenant (429 when one refuses it). */
export function reserveCall(
  ledger: Ledger,
  tenant: TenantContext,
  call: { requestId: string; model: ResolvedModel; estimate: TokenUsage; nowMs: number; holdMs?: number },
): Promise<Reservation> {
  const { model, estimate } = call;
  return ledger.reserve(tenant, {
    requestId: call.requestId,
    model: model.name,
    estimate: {
      tokens: estimate.inputTokens + estimate.outputTokens,
      costNanoUsd: costNanoUsd(model, estimate.inputTokens, estimate.outputTokens),
    },
    nowMs: call.nowMs,
    holdMs: call.holdMs,
  });
}

/** Runs a call reserved earlier (now, or when its work was queued) and settles it, or releases it when it fails. */
export async function runReserved<R extends TokenUsage>(
  ledger: Ledger,
  model: ResolvedModel,
  reservation: Reservation,
  run: () => Promise<R>,
): Promise<R> {
  let result: R;
  try {
    result = await run();
  } catch (error) {
    await ledger.release(reservation);
    throw error;
  }
  await ledger.settle(reservation, {
    inputTokens: result.inputTokens,
    outputTokens: result.outputTokens,
    costNanoUsd: costNanoUsd(model, result.inputTokens, result.outputTokens),
  });
  return result;
}
