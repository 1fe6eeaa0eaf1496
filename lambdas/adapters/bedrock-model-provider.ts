import {
  type BedrockRuntimeClient,
  ConverseCommand,
  type ConverseCommandInput,
  type ConverseCommandOutput,
  ConverseStreamCommand,
  type GuardrailTraceAssessment,
  type Message,
  type StopReason,
} from '@aws-sdk/client-bedrock-runtime';
import { PlatformError } from '../core/errors';
import type { ChatMessage, GenerateRequest, GenerateResult, ModelProvider, ModelStreamEvent } from '../core/ports';
import { upstreamError } from './bedrock-errors';

const FINISH_REASON: Partial<Record<StopReason, GenerateResult['finishReason']>> = {
  max_tokens: 'length',
  guardrail_intervened: 'content_filter',
  content_filtered: 'content_filter',
};

/** Shared base models through the Bedrock Runtime `Converse` API. */
export class BedrockModelProvider implements ModelProvider {
  constructor(private readonly client: BedrockRuntimeClient) {}

  stream(_tenant: unknown, request: GenerateRequest): AsyncIterable<ModelStreamEvent> {
    return converseStream(this.client, request);
  }

  async generate(_tenant: unknown, request: GenerateRequest): Promise<GenerateResult> {
    let output: ConverseCommandOutput;
    try {
      output = await this.client.send(new ConverseCommand(converseInput(request)), { abortSignal: request.signal });
    } catch (error) {
      throw upstreamError(error);
    }
    const text = (output.output?.message?.content ?? []).map((block) => block.text ?? '').join('');
    return {
      text,
      finishReason: (output.stopReason && FINISH_REASON[output.stopReason]) || 'stop',
      inputTokens: output.usage?.inputTokens ?? 0,
      outputTokens: output.usage?.outputTokens ?? 0,
      ...(output.stopReason === 'guardrail_intervened' && { blocked: policiesThatFired(output.trace?.guardrail) }),
    };
  }
}

/** `ConverseStream`: text deltas as they come; the stop reason, then the usage in the metadata event. */
async function* converseStream(
  client: BedrockRuntimeClient,
  request: GenerateRequest,
): AsyncGenerator<ModelStreamEvent> {
  let finishReason: GenerateResult['finishReason'] = 'stop';
  let usage: { inputTokens?: number; outputTokens?: number } = {};
  let intervened = false;
  let trace: GuardrailTraceAssessment | undefined;
  try {
    const output = await client.send(new ConverseStreamCommand(converseInput(request)), {
      abortSignal: request.signal,
    });
    for await (const event of output.stream ?? []) {
      const text = event.contentBlockDelta?.delta?.text;
      if (text) yield { type: 'text', text };
      const stopReason = event.messageStop?.stopReason;
      if (stopReason) finishReason = FINISH_REASON[stopReason] ?? 'stop';
      if (stopReason === 'guardrail_intervened') intervened = true;
      if (event.metadata?.usage) usage = event.metadata.usage;
      if (event.metadata?.trace?.guardrail) trace = event.metadata.trace.guardrail;
    }
  } catch (error) {
    throw upstreamError(error);
  }
  yield {
    type: 'end',
    finishReason,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    ...(intervened && { blocked: policiesThatFired(trace) }),
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

/**
 * Converse takes system prompts apart from the conversation, and the conversation must alternate
 * user and assistant turns: consecutive turns of one role become one message with several blocks.
 */
export function converseInput(request: GenerateRequest): ConverseCommandInput {
  const system = request.messages.filter((m) => m.role === 'system').map((m) => ({ text: m.content }));
  const messages: Message[] = [];
  for (const message of request.messages.filter(
    (m): m is ChatMessage & { role: 'user' | 'assistant' } => m.role !== 'system',
  )) {
    const previous = messages.at(-1);
    if (previous?.role === message.role) previous.content?.push({ text: message.content });
    else messages.push({ role: message.role, content: [{ text: message.content }] });
  }
  if (messages[0]?.role !== 'user') {
    throw new PlatformError('invalid_request', 'messages must contain a user message before any assistant message');
  }
  return {
    modelId: request.modelId,
    messages,
    ...(system.length > 0 && { system }),
    ...(request.guardrail && {
      guardrailConfig: {
        guardrailIdentifier: request.guardrail.id,
        guardrailVersion: request.guardrail.version,
        trace: 'enabled',
      },
    }),
    inferenceConfig: {
      maxTokens: request.maxTokens,
      // OpenAI's temperature runs to 2; the Bedrock models in the catalog accept 0 to 1.
      ...(request.temperature !== undefined && { temperature: Math.min(request.temperature, 1) }),
      ...(request.topP !== undefined && { topP: request.topP }),
      ...(request.stop && { stopSequences: [...request.stop] }),
    },
  };
}
