import { JwtVerifier } from 'aws-jwt-verify';
import type { Jwks } from 'aws-jwt-verify/jwk';
import type { JwtSettings } from '../../contract/environment';
import { PROJECT_PATTERN } from '../../contract/tenancy';
import type { TokenVerifier } from '../core/ports';

export interface JwtVerifierSettings extends JwtSettings {
  /** Keys known up front (local mode's dev issuer); otherwise they are fetched from `jwksUri`. */
  readonly jwks?: Jwks;
}

/**
 * OIDC JWT verification with `aws-jwt-verify`: signature against the issuer's JWKS, `iss`, `aud`,
 * `exp`/`nbf`, and RSA/EC algorithms only (so `alg: none` and HS256 tokens never verify).
 */
export class JwtTokenVerifier implements TokenVerifier {
  private readonly verifier;

  constructor(private readonly settings: JwtVerifierSettings) {
    this.verifier = JwtVerifier.create({
      issuer: settings.issuer,
      audience: settings.audience,
      jwksUri: settings.jwksUri,
    });
    if (settings.jwks) this.verifier.cacheJwks(settings.jwks);
  }

  async verify(token: string): Promise<{ tenantId: string; userId: string; expiresAt: number; project?: string }> {
    const payload = await this.verifier.verify(token);
    const tenantId = payload[this.settings.tenantClaim];
    if (typeof tenantId !== 'string' || typeof payload.sub !== 'string') {
      throw new Error(`token lacks the ${this.settings.tenantClaim} or sub claim`);
    }
    const project = payload[this.settings.projectClaim];
    if (project !== undefined && (typeof project !== 'string' || !PROJECT_PATTERN.test(project))) {
      throw new Error(`the token's ${this.settings.projectClaim} claim is no project name`);
    }
    // aws-jwt-verify requires `exp` unless told otherwise, so it is always there.
    return { tenantId, userId: payload.sub, expiresAt: Number(payload.exp), ...(project && { project }) };
  }
}
