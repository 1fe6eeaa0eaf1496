import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@smithy/types';
import { TENANT_SESSION_TAG } from '../../contract/iam';

/** The session tag every tenant-scoped policy reads as `${aws:PrincipalTag/tenantId}`. */

/** Credentials are renewed this long before they expire, so no request starts with a dying session. */
const REFRESH_MARGIN_MS = 2 * 60_000;
const SESSION_SECONDS = 900;

/**
 * Tenant-scoped credentials: `AssumeRole` on the TenantAccessRole with the session tag
 * `tenantId`, cached per tenant until shortly before they expire. Whatever a handler does with
 * them, IAM lets it reach only that tenant's partition.
 */
export class StsTenantCredentials {
  private readonly sessions = new Map<string, Promise<AwsCredentialIdentity>>();

  constructor(
    private readonly sts: STSClient,
    private readonly roleArn: string,
    private readonly now: () => number = Date.now,
  ) {}

  credentialsFor(tenantId: string): Promise<AwsCredentialIdentity> {
    const cached = this.sessions.get(tenantId);
    if (cached) {
      return cached.then((credentials) =>
        (credentials.expiration?.getTime() ?? 0) - REFRESH_MARGIN_MS > this.now() ? credentials : this.assume(tenantId),
      );
    }
    return this.assume(tenantId);
  }

  private assume(tenantId: string): Promise<AwsCredentialIdentity> {
    const session = this.sts
      .send(
        new AssumeRoleCommand({
          RoleArn: this.roleArn,
          RoleSessionName: `tenant-${tenantId}`,
          DurationSeconds: SESSION_SECONDS,
          Tags: [{ Key: TENANT_SESSION_TAG, Value: tenantId }],
        }),
      )
      .then(({ Credentials: c }) => {
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
          throw new Error('AssumeRole returned no credentials');
        }
        return {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          sessionToken: c.SessionToken,
          expiration: c.Expiration,
        };
      });
    this.sessions.set(tenantId, session);
    // A failed AssumeRole is not cached: the next request tries again.
    session.catch(() => this.sessions.delete(tenantId));
    return session;
  }
}
