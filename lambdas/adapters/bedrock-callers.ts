import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';

/** An application inference profile's ARN (a tenant's own), as opposed to a shared model's id. */
const APPLICATION_PROFILE = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:application-inference-profile\//;

/**
 * Which client a Bedrock call goes through: a call through a tenant's own inference profile is
 * signed with that tenant's session, so IAM refuses it unless the profile's `tenantId` tag is the
 * session's; a shared model is called with the function's role.
 */
export class BedrockCallers {
  constructor(
    private readonly shared: BedrockRuntimeClient,
    /** The tenant-session client of each tenant; absent: every call with the function's role (tests, tools). */
    private readonly ofTenant?: (tenantId: string) => BedrockRuntimeClient,
  ) {}

  for(tenant: { readonly tenantId: string }, modelId: string): BedrockRuntimeClient {
    return this.ofTenant && APPLICATION_PROFILE.test(modelId) ? this.ofTenant(tenant.tenantId) : this.shared;
  }
}
