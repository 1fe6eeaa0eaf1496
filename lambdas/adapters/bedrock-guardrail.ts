import { ApplyGuardrailCommand, type BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { GuardrailRef } from '../../contract/environment';
import type { ContentGuardrail } from '../core/ports';
import { upstreamError } from './bedrock-errors';
import { policiesThatFired } from './bedrock-model-provider';

/** A tier's Bedrock guardrail applied on its own (`ApplyGuardrail`), for the models Bedrock does not serve. */
export class BedrockContentGuardrail implements ContentGuardrail {
  constructor(private readonly client: BedrockRuntimeClient) {}

  async assess(guardrail: GuardrailRef, source: 'INPUT' | 'OUTPUT', texts: readonly string[]) {
    try {
      const output = await this.client.send(
        new ApplyGuardrailCommand({
          guardrailIdentifier: guardrail.id,
          guardrailVersion: guardrail.version,
          source,
          content: texts.map((text) => ({ text: { text } })),
        }),
      );
      if (output.action !== 'GUARDRAIL_INTERVENED') return undefined;
      return policiesThatFired({
        inputAssessment: Object.fromEntries((output.assessments ?? []).map((a, i) => [i, a])),
      });
    } catch (error) {
      throw upstreamError(error);
    }
  }
}
