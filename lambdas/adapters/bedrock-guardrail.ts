import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { GuardrailRef } from '../../contract/environment';
import type { ContentGuardrail } from '../core/ports';
import { upstreamError } from './bedrock-errors';
import { policiesThatFired } from './bedrock-model-provider';
import { applyGuardrail } from './bedrock-wire';

/** A tier's Bedrock guardrail applied on its own (`ApplyGuardrail`, through the lean transport), for the models Bedrock does not serve and tool-call arguments. */
export class BedrockContentGuardrail implements ContentGuardrail {
  constructor(private readonly client: BedrockRuntimeClient) {}

  async assess(guardrail: GuardrailRef, source: 'INPUT' | 'OUTPUT', texts: readonly string[]) {
    try {
      const output = await applyGuardrail(this.client, {
        guardrailIdentifier: guardrail.id,
        guardrailVersion: guardrail.version,
        source,
        content: texts.map((text) => ({ text: { text } })),
      });
      if (output.action !== 'GUARDRAIL_INTERVENED') return undefined;
      return policiesThatFired({
        inputAssessment: Object.fromEntries((output.assessments ?? []).map((a, i) => [i, a])),
      });
    } catch (error) {
      throw upstreamError(error);
    }
  }
}
