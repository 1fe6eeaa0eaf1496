import { countTokens, truncateToTokens } from '../lambdas/core/tokens';

/** What the local Bedrock server receives, already validated. */
export interface LocalModelInput {
  readonly system: readonly string[];
  readonly messages: readonly { role: 'user' | 'assistant'; text: string }[];
  readonly maxTokens: number;
  /** The answer ends before the first of these. */
  readonly stop?: readonly string[];
}

export interface LocalModelOutput {
  readonly text: string;
  readonly stopReason: 'end_turn' | 'max_tokens' | 'guardrail_intervened';
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * Not a language model: a deterministic echo, so local runs and tests are reproducible. Its token
 * counts are real counts (the platform's tokenizer) of the text it read and the text it returns.
 */
export function localModel(input: LocalModelInput): LocalModelOutput {
  const lastUser = [...input.messages].reverse().find((message) => message.role === 'user')?.text ?? '';
  // With retrieved passages in the system prompt (`<passage n="n">` ...), answer extractively from the first, citing it.
  const passage = input.system.join('\n').match(/^<passage n="(\d+)"[^>]*>\n(.+)$/m);
  const reply = passage
    ? `According to [${passage[1]}]: ${passage[2]}`
    : `Local echo of ${input.messages.length} message(s): ${lastUser}`;
  const cut = Math.min(...(input.stop ?? []).map((stop) => reply.indexOf(stop)).filter((i) => i >= 0), reply.length);
  const { text, truncated } = truncateToTokens(reply.slice(0, cut), input.maxTokens);
  const inputText = [...input.system, ...input.messages.map((message) => message.text)];
  return {
    text,
    stopReason: truncated ? 'max_tokens' : 'end_turn',
    inputTokens: inputText.reduce((sum, part) => sum + countTokens(part), 0),
    outputTokens: countTokens(text),
  };
}
