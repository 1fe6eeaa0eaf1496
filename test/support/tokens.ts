import { createHmac } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import type { DevIssuer } from '../../local/dev-issuer';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Tokens an attacker could present for `tenantId`, each wrong in exactly one way. */
export async function forgedTokens(issuer: DevIssuer, tenantId: string): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    [issuer.tenantClaim]: tenantId,
    sub: 'mallory',
    iss: issuer.issuer,
    aud: issuer.audience,
    iat: now,
    exp: now + 600,
  };
  const kid = issuer.jwks.keys[0].kid ?? '';
  const { privateKey: strangerKey } = await generateKeyPair('RS256');
  const signingInput = (header: Record<string, unknown>) => `${b64url(header)}.${b64url(claims)}`;
  const hs256Input = signingInput({ alg: 'HS256', kid, typ: 'JWT' });
  return {
    signedByUnknownKey: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(strangerKey),
    unknownKid: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'no-such-kid' }).sign(strangerKey),
    algNone: `${signingInput({ alg: 'none', typ: 'JWT' })}.`,
    // The classic confusion: HS256 keyed with the issuer's public key.
    hs256WithPublicKey: `${hs256Input}.${createHmac('sha256', JSON.stringify(issuer.jwks.keys[0])).update(hs256Input).digest('base64url')}`,
    expired: await issuer.sign({ ...claims, iat: now - 3600, exp: now - 60 }),
    notYetValid: await issuer.sign({ ...claims, nbf: now + 3600 }),
    wrongIssuer: await issuer.sign({ ...claims, iss: 'https://evil.example' }),
    wrongAudience: await issuer.sign({ ...claims, aud: 'another-app' }),
    missingTenantClaim: await issuer.sign({ ...claims, [issuer.tenantClaim]: undefined }),
    // A real token of another tenant with its payload swapped: the signature no longer matches.
    tamperedPayload: (await issuer.mint({ tenantId: 'someone-else', userId: 'alice' })).replace(
      /\.[^.]+\./,
      `.${b64url(claims)}.`,
    ),
  };
}
