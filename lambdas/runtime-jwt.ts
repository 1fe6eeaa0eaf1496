import { JwtTokenVerifier } from './adapters/jwt-token-verifier';
import type { TokenVerifier } from './core/ports';
import { built } from './runtime';

/** Tenants' JWTs, when an issuer is configured: only the authorizer imports this module (its verifier is 16 KB). */
export const tokens = /* @__PURE__ */ built(
  (wiring): TokenVerifier | undefined => wiring.settings.jwt && new JwtTokenVerifier(wiring.settings.jwt),
);
