import { createHash } from 'node:crypto';
import type { GenerateRequest } from './ports';
import type { TenantContext } from './tenant';

/** What makes two requests the same request: everything the model is given. */
export type CacheableCall = Pick<
  GenerateRequest,
  | 'modelId'
  | 'messages'
  | 'maxTokens'
  | 'temperature'
  | 'topP'
  | 'stop'
  | 'tools'
  | 'toolChoice'
  | 'parallelToolCalls'
  | 'responseFormat'
> & {
  /** The template and its version: a changed template never answers from the old one's cache. */
  readonly prompt?: { readonly id: string; readonly version: number };
};

/**
 * Whether an answer may come from, or go to, the tenant's cache: the tenant turned it on, the
 * request is deterministic (temperature 0), answered whole (not streamed), outside a session (whose
 * history makes each turn new), and the caller did not say `Cache-Control: no-store`.
 */
export function cacheable(
  tenant: TenantContext,
  request: { temperature?: number; stream?: boolean | null; session_id?: string },
  noStore: boolean,
): boolean {
  return (
    (tenant.cacheTtlSeconds ?? 0) > 0 &&
    request.temperature === 0 &&
    !request.stream &&
    request.session_id === undefined &&
    !noStore
  );
}

/** The cache key of a call: a hash of what the model is given, in one canonical order. */
export function cacheKey(call: CacheableCall): string {
  const canonical = JSON.stringify([
    call.modelId,
    call.messages.map((message) => [
      message.role,
      message.content,
      message.toolCalls ?? null,
      message.toolCallId ?? null,
    ]),
    call.maxTokens,
    call.temperature ?? null,
    call.topP ?? null,
    call.stop ?? null,
    call.prompt ? [call.prompt.id, call.prompt.version] : null,
    call.tools ?? null,
    call.toolChoice ?? null,
    call.parallelToolCalls ?? null,
    call.responseFormat ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('base64url');
}
