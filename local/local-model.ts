import { countTokens, truncateToTokens } from '../lambdas/core/tokens';

/** A tool call of the local model, or one it is told of in the conversation. */
export interface LocalToolUse {
  readonly id: string;
  readonly name: string;
  readonly input: unknown;
}

/** A block of a turn: text, a tool call (assistant), or a tool's result (user). */
export type LocalBlock =
  | { readonly text: string }
  | { readonly toolUse: LocalToolUse }
  | { readonly toolResult: { readonly id: string; readonly text: string } };

export interface LocalTool {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of its input. */
  readonly schema: unknown;
}

/** What the local servers receive, already validated, in one shape for Bedrock's and the container's protocols. */
export interface LocalModelInput {
  readonly system: readonly string[];
  readonly messages: readonly { role: 'user' | 'assistant'; blocks: readonly LocalBlock[] }[];
  readonly maxTokens: number;
  /** The answer ends before the first of these. */
  readonly stop?: readonly string[];
  readonly tools?: readonly LocalTool[];
  /** `any`: some tool must be called; `{ name }`: that one. @default 'auto' */
  readonly toolChoice?: 'auto' | 'any' | { readonly name: string };
}

export interface LocalModelOutput {
  readonly text: string;
  readonly toolUses: readonly LocalToolUse[];
  readonly stopReason: 'end_turn' | 'max_tokens' | 'tool_use' | 'guardrail_intervened';
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** Words that say nothing of which tool fits. */
const STOP_WORDS = new Set(
  'a an and are as at be by can do does for from get give how i in is it me my of on or please set show tell that the this to was what when where which who why will with you your'.split(
    ' ',
  ),
);

const wordsOf = (text: string) => (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !STOP_WORDS.has(w));
const toolWords = (tool: LocalTool) => new Set(wordsOf(`${tool.name.replace(/[_-]/g, ' ')} ${tool.description ?? ''}`));

/** The input tokens of a call, in the order the model reads it: system, tools, then the conversation. */
export function localInputParts(input: LocalModelInput): string[] {
  return [
    ...input.system,
    ...(input.tools ?? []).map((tool) => JSON.stringify(tool)),
    ...input.messages.flatMap((message) => {
      const text = message.blocks.flatMap((b) => ('text' in b ? [b.text] : []));
      const tools = message.blocks.filter((b) => !('text' in b)).map(blockText);
      return text.length > 0 ? [text.join('\n'), ...tools] : tools;
    }),
  ];
}

function blockText(block: LocalBlock): string {
  if ('text' in block) return block.text;
  if ('toolUse' in block) return `${block.toolUse.name} ${JSON.stringify(block.toolUse.input)}`;
  return block.toolResult.text;
}

/**
 * A value valid against a JSON Schema, built from the words it is given: required properties
 * filled (strings from the words, numbers 1, booleans true, the first enum or const value),
 * arrays of one item, the first option of `anyOf` / `oneOf`.
 */
export function valueForSchema(schema: unknown, words: readonly string[], depth = 0): unknown {
  if (schema === null || typeof schema !== 'object' || depth > 32) return {};
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const option = (Array.isArray(s.anyOf) && s.anyOf[0]) || (Array.isArray(s.oneOf) && s.oneOf[0]);
  if (option) return valueForSchema(option, words, depth + 1);
  if (Array.isArray(s.allOf) && s.allOf[0]) return valueForSchema(s.allOf[0], words, depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'string':
      return words.length > 0 ? words.join(' ') : 'local';
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? Math.ceil(s.minimum) : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return typeof s.minItems === 'number' && s.minItems === 0 && !s.items
        ? []
        : [valueForSchema(s.items, words, depth + 1)];
    default: {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as string[]) : [];
      const names = required.filter((name) => Object.hasOwn(properties, name));
      // Each string property its own word where there are enough, so two strings differ.
      return Object.fromEntries(
        names.map((name, i) => [
          name,
          valueForSchema(properties[name], words.length > 1 ? [words[i % words.length]] : words, depth + 1),
        ]),
      );
    }
  }
}

/** The words of a message worth putting in arguments: neither stop words nor the tool's own words, original case. */
export function argumentWords(message: string, tool: LocalTool): string[] {
  const own = toolWords(tool);
  return (message.match(/[\p{L}\p{N}]+/gu) ?? []).filter(
    (word) => !STOP_WORDS.has(word.toLowerCase()) && !own.has(word.toLowerCase()),
  );
}

/**
 * The tools the model calls: a named one; else, with the last turn the user's, every tool sharing
 * words with it, best first (ties: the first offered), or the best alone when one must be called;
 * after tool results, only when one must be called: the best of those not called yet.
 */
function toolsToCall(input: LocalModelInput, lastUserText: string, afterResults: boolean): LocalTool[] {
  const tools = input.tools ?? [];
  const choice = input.toolChoice ?? 'auto';
  if (tools.length === 0) return [];
  if (typeof choice === 'object') return tools.filter((tool) => tool.name === choice.name);
  const called = new Set(
    input.messages.flatMap((m) => m.blocks.flatMap((b) => ('toolUse' in b ? [b.toolUse.name] : []))),
  );
  const candidates = afterResults ? tools.filter((tool) => !called.has(tool.name)) : tools;
  if (afterResults && choice === 'auto') return [];
  const said = new Set(wordsOf(lastUserText));
  const scored = candidates
    .map((tool, order) => ({ tool, order, score: [...toolWords(tool)].filter((w) => said.has(w)).length }))
    .sort((a, b) => b.score - a.score || a.order - b.order);
  const matching = scored.filter((entry) => entry.score > 0).map((entry) => entry.tool);
  if (choice === 'any')
    return matching.length > 0
      ? afterResults
        ? matching.slice(0, 1)
        : matching
      : scored.slice(0, 1).map((e) => e.tool);
  return afterResults ? [] : matching;
}

/**
 * Not a language model: a deterministic echo, so local runs and tests are reproducible. Its token
 * counts are real counts (the platform's tokenizer) of the text it read and the text it returns.
 * With tools offered it calls those whose name or description shares words with the user's last
 * message, arguments built from their schemas; after tool results it answers quoting each.
 */
export function localModel(input: LocalModelInput): LocalModelOutput {
  const last = input.messages.at(-1);
  const lastUser = [...input.messages].reverse().find((message) => message.role === 'user');
  const lastUserText = (lastUser?.blocks ?? []).flatMap((b) => ('text' in b ? [b.text] : [])).join('\n');
  const results = (last?.role === 'user' ? last.blocks : []).flatMap((b) => ('toolResult' in b ? [b.toolResult] : []));
  const inputTokens = localInputParts(input).reduce((sum, part) => sum + countTokens(part), 0);
  const calls = toolsToCall(input, lastUserText, results.length > 0);
  if (calls.length > 0) {
    const toolUses = calls.map((tool, i) => ({
      id: `call_local_${input.messages.length}_${i}`,
      name: tool.name,
      input: valueForSchema(tool.schema, argumentWords(lastUserText, tool)),
    }));
    const outputTokens = toolUses.reduce((sum, use) => sum + countTokens(blockText({ toolUse: use })), 0);
    return { text: '', toolUses, stopReason: 'tool_use', inputTokens, outputTokens };
  }
  const names = new Map(
    input.messages.flatMap((m) => m.blocks.flatMap((b) => ('toolUse' in b ? [[b.toolUse.id, b.toolUse.name]] : []))),
  );
  // With retrieved passages in the system prompt (`<passage n="n">` ...), answer extractively from the first, citing it.
  const passage = input.system.join('\n').match(/^<passage n="(\d+)"[^>]*>\n(.+)$/m);
  let reply: string;
  if (results.length > 0) {
    reply = `Local answer from ${results.length} tool result(s): ${results.map((r) => `${names.get(r.id) ?? r.id} said ${r.text}`).join('; ')}`;
  } else if (passage) {
    reply = `According to [${passage[1]}]: ${passage[2]}`;
  } else {
    reply = `Local echo of ${input.messages.length} message(s): ${lastUserText}`;
  }
  const cut = Math.min(...(input.stop ?? []).map((stop) => reply.indexOf(stop)).filter((i) => i >= 0), reply.length);
  const { text, truncated } = truncateToTokens(reply.slice(0, cut), input.maxTokens);
  return {
    text,
    toolUses: [],
    stopReason: truncated ? 'max_tokens' : 'end_turn',
    inputTokens,
    outputTokens: countTokens(text),
  };
}
