import {
  BedrockClient,
  type BedrockClientConfig,
  ConflictException,
  CreateInferenceProfileCommand,
  DeleteInferenceProfileCommand,
  ListInferenceProfilesCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-bedrock';
import { TENANT_COST_TAG } from '../../contract/tenancy';
import type { InferenceProfiles } from '../core/ports';

/**
 * Application inference profiles (Bedrock's control plane), one per tenant and model, copied from
 * the model and tagged `tenantId=<id>`: activated as a cost allocation tag, the tag splits each
 * tenant's Bedrock spend on AWS's own bill. Named `<prefix>-<tenant>-<model>`, so a retried
 * onboarding finds the profiles an earlier try created instead of failing. Made in the config's
 * region; each deleted in the region its ARN names (a tenant moved to a silo in another region has
 * its profiles there).
 */
export class BedrockInferenceProfiles implements InferenceProfiles {
  private readonly client: BedrockClient;
  private readonly regionClients = new Map<string, BedrockClient>();

  constructor(
    private readonly config: BedrockClientConfig,
    private readonly namePrefix: string,
  ) {
    this.client = new BedrockClient(config);
  }

  async createFor(
    tenantId: string,
    models: readonly { name: string; bedrockModelId: string }[],
  ): Promise<Record<string, string>> {
    const region = await this.client.config.region();
    const profiles: Record<string, string> = {};
    for (const model of models) {
      const name = `${this.namePrefix}-${tenantId}-${model.name}`.replace(/[^0-9a-zA-Z_-]/g, '-').slice(0, 64);
      try {
        const created = await this.client.send(
          new CreateInferenceProfileCommand({
            inferenceProfileName: name,
            description: `Tenant ${tenantId}: ${model.name}`,
            modelSource: { copyFrom: `arn:aws:bedrock:${region}::foundation-model/${model.bedrockModelId}` },
            tags: [{ key: TENANT_COST_TAG, value: tenantId }],
          }),
        );
        profiles[model.name] = created.inferenceProfileArn ?? '';
      } catch (error) {
        if (!(error instanceof ConflictException)) throw error;
        profiles[model.name] = await this.arnOf(name);
      }
    }
    return profiles;
  }

  async deleteAll(profileArns: readonly string[]): Promise<number> {
    for (const arn of profileArns) {
      try {
        const client = await this.clientIn(arn.split(':')[3]);
        await client.send(new DeleteInferenceProfileCommand({ inferenceProfileIdentifier: arn }));
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
      }
    }
    return profileArns.length;
  }

  /** The client of `region` (an ARN's), the config's own when it is that region. */
  private async clientIn(region: string): Promise<BedrockClient> {
    if (!region || region === (await this.client.config.region())) return this.client;
    let client = this.regionClients.get(region);
    if (!client) {
      client = new BedrockClient({ ...this.config, region });
      this.regionClients.set(region, client);
    }
    return client;
  }

  /** The ARN of an existing application profile, by its name. */
  private async arnOf(name: string): Promise<string> {
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListInferenceProfilesCommand({ typeEquals: 'APPLICATION', maxResults: 1000, nextToken }),
      );
      const found = page.inferenceProfileSummaries?.find((profile) => profile.inferenceProfileName === name);
      if (found?.inferenceProfileArn) return found.inferenceProfileArn;
      nextToken = page.nextToken;
    } while (nextToken);
    throw new Error(`inference profile ${name} exists, but was not listed`);
  }
}
