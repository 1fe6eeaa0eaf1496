import {
  type BedrockRuntimeClient,
  type ConverseCommandOutput,
  ConverseStreamCommand,
  type GuardrailTraceAssessment,
  type StopReason,
  type TokenUsage,
} from '@aws-sdk/client-bedrock-runtime';
import type { GenerateRequest, GenerateResult, ModelProvider, ModelStreamEvent } from '../core/ports';
import type { BedrockCallers } from './bedrock-callers';
import { converseAnswer, converseInput, converseStreamReader, converseUsage } from './bedrock-converse';
import { upstreamError } from './bedrock-errors';
import { converse } from './bedrock-wire';

/** Shared base models through the Bedrock Runtime `Converse` API. */
export class BedrockModelProvider implements ModelProvider {
  constructor(private readonly callers: BedrockCallers) {}

  stream(tenant: { readonly tenantId: string }, request: GenerateRequest): AsyncIterable<ModelStreamEvent> {
    return converseStream(this.callers.for(tenant, request.modelId), request);
  }

  async generate(tenant: { readonly tenantId: string }, request: GenerateRequest): Promise<GenerateResult> {
    let output: ConverseCommandOutput;
    try {
      output = await converse(this.callers.for(tenant, request.modelId), converseInput(request), request.signal);
    } catch (error) {
      throw upstreamError(error);
    }
    const answer = converseAnswer(request, output.output?.message?.content ?? [], output.stopReason);
    const usage = converseUsage(output.usage);
    return {
      ...answer,
      ...usage,
      inputTokens: usage.inputTokens ?? 0,
      outputTokens: usage.outputTokens ?? 0,
      ...(output.stopReason === 'guardrail_intervened' && { blocked: policiesThatFired(output.trace?.guardrail) }),
    };
  }
}

/** `ConverseStream`: text and tool-call deltas as they come; the stop reason, then the usage in the metadata event. */
async function* converseStream(
  client: BedrockRuntimeClient,
  request: GenerateRequest,
): AsyncGenerator<ModelStreamEvent> {
  const reader = converseStreamReader(request);
  let stopReason: StopReason | undefined;
  let usage: TokenUsage | undefined;
  let trace: GuardrailTraceAssessment | undefined;
  try {
    const output = await client.send(new ConverseStreamCommand(converseInput(request)), {
      abortSignal: request.signal,
    });
    for await (const event of output.stream ?? []) {
      yield* reader.read(event);
      stopReason = event.messageStop?.stopReason ?? stopReason;
      if (event.metadata?.usage) usage = event.metadata.usage;
      if (event.metadata?.trace?.guardrail) trace = event.metadata.trace.guardrail;
    }
  } catch (error) {
    throw upstreamError(error);
  }
  yield {
    type: 'end',
    finishReason: reader.finishReason(stopReason),
    ...converseUsage(usage),
    ...(stopReason === 'guardrail_intervened' && { blocked: policiesThatFired(trace) }),
  };
}

/** Which of a guardrail's policies intervened, from its trace: `topic:<name>`, `content:<filter>`, `pii:<type>`... */
export function policiesThatFired(trace: GuardrailTraceAssessment | undefined): string[] {
  const assessments = [
    ...Object.values(trace?.inputAssessment ?? {}),
    ...Object.values(trace?.outputAssessments ?? {}).flat(),
  ];
  const fired = assessments.flatMap((assessment) => [
    ...(assessment.topicPolicy?.topics ?? []).map((topic) => `topic:${topic.name}`),
    ...(assessment.contentPolicy?.filters ?? []).map((filter) => `content:${filter.type}`),
    ...(assessment.sensitiveInformationPolicy?.piiEntities ?? []).map((entity) => `pii:${entity.type}`),
    ...(assessment.sensitiveInformationPolicy?.regexes ?? []).map((regex) => `regex:${regex.name}`),
    ...(assessment.wordPolicy?.customWords ?? []).map(() => 'words:custom'),
  ]);
  return fired.length > 0 ? [...new Set(fired)] : ['guardrail'];
}
