import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Jwks } from 'aws-jwt-verify/jwk';
import { exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, SignJWT } from 'jose';

export interface DevIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly tenantClaim: string;
  readonly projectClaim: string;
  /** The public keys, as an OIDC provider publishes them. */
  readonly jwks: Jwks;
  /** A token for a user of a tenant, as the tenant's identity provider would issue it. */
  mint(claims: { tenantId: string; userId: string; project?: string; expiresInSeconds?: number }): Promise<string>;
  /** Signs any claims with the issuer's key: for tokens that are validly signed but wrong otherwise. */
  sign(claims: JWTPayload): Promise<string>;
}

/**
 * A development OIDC issuer: it signs RS256 JWTs, and local mode feeds its JWKS to the production
 * verifier. The key persists in `keyFile` so tokens survive a restart.
 */
export async function createDevIssuer(options: {
  keyFile: string;
  issuer: string;
  audience: string;
  tenantClaim: string;
  projectClaim: string;
}): Promise<DevIssuer> {
  let privateJwk: JWK;
  if (existsSync(options.keyFile)) {
    privateJwk = JSON.parse(readFileSync(options.keyFile, 'utf8'));
  } else {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    privateJwk = { ...(await exportJWK(privateKey)), kid: `dev-${Date.now().toString(36)}`, alg: 'RS256', use: 'sig' };
    writeFileSync(options.keyFile, JSON.stringify(privateJwk), { mode: 0o600 });
  }
  const { kid = 'dev', kty = 'RSA', n = '', e = '' } = privateJwk;
  const signingKey = await importJWK(privateJwk, 'RS256');
  const sign = (claims: JWTPayload) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(signingKey);
  return {
    issuer: options.issuer,
    audience: options.audience,
    tenantClaim: options.tenantClaim,
    projectClaim: options.projectClaim,
    jwks: { keys: [{ kid, kty, n, e, alg: 'RS256', use: 'sig' }] },
    sign,
    mint: ({ tenantId, userId, project, expiresInSeconds = 3600 }) => {
      const now = Math.floor(Date.now() / 1000);
      return sign({
        [options.tenantClaim]: tenantId,
        ...(project && { [options.projectClaim]: project }),
        iss: options.issuer,
        aud: options.audience,
        sub: userId,
        iat: now,
        exp: now + expiresInSeconds,
      });
    },
  };
}
