import { isApiKey, parseApiKey, secretMatches } from './api-key';
import { PlatformError } from './errors';
import type { TenantRegistry, TokenVerifier } from './ports';
import type { TenantContext } from './tenant';

export type AuthDecision =
  | { readonly effect: 'Allow'; readonly context: TenantContext }
  /** A known tenant that may not call now (suspended): 403, not 401. */
  | { readonly effect: 'Deny'; readonly principalId: string };

export interface AuthorizeDeps {
  readonly registry: TenantRegistry;
  /** Absent: JWTs are not accepted, API keys only. */
  readonly tokens?: TokenVerifier;
}

const unauthenticated = () => new PlatformError('unauthenticated', 'missing or invalid credential');

/** Turns an `Authorization` header into a tenant context, or refuses it. Never trusts anything but the credential. */
export async function authorize(deps: AuthorizeDeps, authorizationHeader: string | undefined): Promise<AuthDecision> {
  const match = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(authorizationHeader ?? '');
  if (!match) throw unauthenticated();
  const credential = match[1];
  const caller = isApiKey(credential) ? await apiKeyCaller(deps, credential) : await jwtCaller(deps, credential);

  const tenant = await deps.registry.getTenant(caller.tenantId);
  // An offboarded tenant's record is a tombstone: its credentials name no one.
  if (!tenant || tenant.status === 'offboarded') throw unauthenticated();
  if (tenant.status !== 'active') return { effect: 'Deny', principalId: caller.principal.id };
  return {
    effect: 'Allow',
    context: {
      tenantId: tenant.tenantId,
      tier: tenant.tier,
      principal: caller.principal,
      limits: tenant.limits,
      auditPrompts: tenant.auditPrompts,
      placements: tenant.placements,
      ...(caller.expiresAt !== undefined && { expiresAt: caller.expiresAt }),
    },
  };
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
  };
}

async function jwtCaller(deps: AuthorizeDeps, credential: string) {
  if (!deps.tokens) throw unauthenticated();
  try {
    const { tenantId, userId, expiresAt } = await deps.tokens.verify(credential);
    return { tenantId, principal: { type: 'user' as const, id: userId }, expiresAt };
  } catch {
    throw unauthenticated();
  }
}
