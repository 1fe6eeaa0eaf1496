import { isApiKey, parseApiKey, secretMatches } from './api-key';
import { PlatformError } from './errors';
import type { TenantRegistry, TokenVerifier } from './ports';
import { forwardUrl, servedHere, type TenantContext, type TenantRecord } from './tenant';

export type AuthDecision =
  | { readonly effect: 'Allow'; readonly context: TenantContext }
  /** A known tenant that may not call here now (suspended, or moving): 403, with why. */
  | { readonly effect: 'Deny'; readonly principalId: string; readonly reason: string }
  /**
   * A tenant served by another plane (its silo, calling the pool; the pool, calling the silo it
   * returned from): the request goes on to that plane's URL (from the tenant's own record, so never
   * another's), where its credential and status are decided again.
   */
  | { readonly effect: 'Forward'; readonly principalId: string; readonly tenantId: string; readonly to: string };

export interface AuthorizeDeps {
  readonly registry: TenantRegistry;
  /** Absent: JWTs are not accepted, API keys only. */
  readonly tokens?: TokenVerifier;
  /** A silo plane's one tenant: any other tenant's credential names no one here. */
  readonly siloTenantId?: string;
}

const unauthenticated = () => new PlatformError('unauthenticated', 'missing or invalid credential');

/** Turns an `Authorization` header into a tenant context, or refuses it. Never trusts anything but the credential. */
export async function authorize(deps: AuthorizeDeps, authorizationHeader: string | undefined): Promise<AuthDecision> {
  const match = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(authorizationHeader ?? '');
  if (!match) throw unauthenticated();
  const credential = match[1];
  const caller = isApiKey(credential) ? await apiKeyCaller(deps, credential) : await jwtCaller(deps, credential);

  if (deps.siloTenantId !== undefined && caller.tenantId !== deps.siloTenantId) throw unauthenticated();
  const tenant = await deps.registry.getTenant(caller.tenantId);
  // An offboarded tenant's record is a tombstone: its credentials name no one.
  if (!tenant || tenant.status === 'offboarded') throw unauthenticated();
  // This plane's copy of a moved tenant's status is stale (the plane serving it manages it): that
  // plane decides. An offboarding, which the pool runs, is not forwarded.
  const moved = forwardUrl(tenant, deps.siloTenantId);
  if (moved && tenant.status !== 'offboarding') {
    return { effect: 'Forward', principalId: caller.principal.id, tenantId: tenant.tenantId, to: moved };
  }
  const refusal = refusalReason(tenant, deps.siloTenantId);
  if (refusal) return { effect: 'Deny', principalId: caller.principal.id, reason: refusal };
  return {
    effect: 'Allow',
    context: {
      tenantId: tenant.tenantId,
      tier: tenant.tier,
      principal: caller.principal,
      limits: tenant.limits,
      auditPrompts: tenant.auditPrompts,
      ...(tenant.cacheTtlSeconds && { cacheTtlSeconds: tenant.cacheTtlSeconds }),
      ...(tenant.sessionScope && { sessionScope: tenant.sessionScope }),
      ...(tenant.piiRedaction && { piiRedaction: tenant.piiRedaction }),
      ...(tenant.inferenceProfiles && { inferenceProfiles: tenant.inferenceProfiles }),
      ...(tenant.routing && { routing: tenant.routing }),
      ...(caller.keyLimits && { keyLimits: caller.keyLimits }),
      ...(tenant.userLimits && { userLimits: tenant.userLimits }),
      ...(caller.project && { project: caller.project }),
      ...(caller.project &&
        tenant.projectLimits?.[caller.project] && { projectLimits: tenant.projectLimits[caller.project] }),
      placements: tenant.placements,
      ...(caller.expiresAt !== undefined && { expiresAt: caller.expiresAt }),
    },
  };
}

/** Why this plane does not serve the tenant now, if it does not: a tenant being moved waits for it. */
function refusalReason(tenant: TenantRecord, siloTenantId: string | undefined): string | undefined {
  if (tenant.status !== 'active') return `tenant '${tenant.tenantId}' is ${tenant.status}`;
  if (servedHere(tenant, siloTenantId)) return undefined;
  return `tenant '${tenant.tenantId}' is moving to its own stack: retry in a few minutes`;
}

async function apiKeyCaller(deps: AuthorizeDeps, credential: string) {
  const parsed = parseApiKey(credential);
  const stored = parsed && (await deps.registry.getApiKey(parsed.keyId));
  if (!parsed || !stored || stored.status !== 'active' || !secretMatches(parsed.secret, stored.secretHash)) {
    throw unauthenticated();
  }
  return {
    tenantId: stored.tenantId,
    principal: { type: 'api_key' as const, id: stored.keyId },
    expiresAt: undefined as number | undefined,
    keyLimits: stored.limits,
    project: stored.project,
  };
}

async function jwtCaller(deps: AuthorizeDeps, credential: string) {
  if (!deps.tokens) throw unauthenticated();
  try {
    const { tenantId, userId, expiresAt, project } = await deps.tokens.verify(credential);
    return { tenantId, principal: { type: 'user' as const, id: userId }, expiresAt, keyLimits: undefined, project };
  } catch {
    throw unauthenticated();
  }
}
