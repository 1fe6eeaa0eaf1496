import type {
  ContentBlock,
  ConverseCommandInput,
  ConverseStreamOutput,
  TokenUsage as ConverseTokenUsage,
  ToolChoice as ConverseToolChoice,
  Message,
  StopReason,
  SystemContentBlock,
  Tool,
} from '@aws-sdk/client-bedrock-runtime';
import { PlatformError } from '../core/errors';
import type {
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  ModelStreamEvent,
  ToolCall,
  ToolDefinition,
} from '../core/ports';

/**
 * The mapping between the model port and Bedrock's Converse API, both ways: messages, tool calls
 * and results, structured output (a forced tool whose input schema is the requested schema), and
 * prompt-cache points.
 */

const FINISH_REASON: Partial<Record<StopReason, GenerateResult['finishReason']>> = {
  max_tokens: 'length',
  guardrail_intervened: 'content_filter',
  content_filtered: 'content_filter',
  tool_use: 'tool_calls',
};

const CACHE_POINT = { cachePoint: { type: 'default' } } as const;

/** The schema of `json_object`: any JSON object. */
const ANY_OBJECT = { type: 'object' } as const;

/** The tool standing for a requested response format: the model answers by calling it. */
export function responseTool(request: GenerateRequest): ToolDefinition | undefined {
  const format = request.responseFormat;
  if (!format) return undefined;
  const tool =
    format.type === 'json_schema'
      ? {
          name: format.name,
          description: format.description ?? `Answer with the ${format.name} JSON object.`,
          parameters: format.schema,
        }
      : { name: 'json_response', description: 'Answer with a JSON object.', parameters: ANY_OBJECT };
  if (request.tools?.some((other) => other.name === tool.name)) {
    throw new PlatformError('invalid_request', `response_format name '${tool.name}' is also a tool's name: rename one`);
  }
  return tool;
}

/** The tools Converse is given, and how it must choose: OpenAI's `none` is no tool configuration at all. */
function toolConfiguration(request: GenerateRequest, answerTool: ToolDefinition | undefined) {
  const choice = request.toolChoice ?? 'auto';
  const callable = choice === 'none' ? [] : (request.tools ?? []);
  const tools = [...callable, ...(answerTool ? [answerTool] : [])];
  if (tools.length === 0) return undefined;
  let toolChoice: ConverseToolChoice;
  if (typeof choice === 'object') toolChoice = { tool: { name: choice.name } };
  else if (answerTool && callable.length === 0) toolChoice = { tool: { name: answerTool.name } };
  // With a response format, answering is calling its tool: some tool must be called.
  else if (answerTool || choice === 'required') toolChoice = { any: {} };
  else toolChoice = { auto: {} };
  const specs: Tool[] = tools.map((tool) => ({
    toolSpec: {
      name: tool.name,
      ...(tool.description && { description: tool.description }),
      inputSchema: { json: tool.parameters as never },
    },
  }));
  return { tools: request.cacheTools ? [...specs, CACHE_POINT] : specs, toolChoice };
}

/** A tool call's arguments as Converse's `input` document: the JSON object, or empty when it is none. */
function toolInput(argumentsText: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(argumentsText);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as never) : {};
  } catch {
    return {};
  }
}

/**
 * A message's content blocks. Without tools configured, Converse refuses tool blocks: an earlier
 * tool turn is then told as text.
 */
function contentBlocks(message: ChatMessage, withTools: boolean): ContentBlock[] {
  const text: ContentBlock[] = message.content === '' ? [] : [{ text: message.content }];
  let blocks: ContentBlock[];
  if (message.role === 'tool') {
    blocks = withTools
      ? [{ toolResult: { toolUseId: message.toolCallId, content: [{ text: message.content || '(empty)' }] } }]
      : [{ text: `Result of tool call ${message.toolCallId}: ${message.content}` }];
  } else {
    const calls = (message.toolCalls ?? []).map(
      (call): ContentBlock =>
        withTools
          ? { toolUse: { toolUseId: call.id, name: call.name, input: toolInput(call.arguments) as never } }
          : { text: `Called tool ${call.name} (${call.id}) with ${call.arguments}` },
    );
    blocks = [...text, ...calls];
  }
  return message.cachePoint ? [...blocks, CACHE_POINT] : blocks;
}

/**
 * Converse takes system prompts apart from the conversation, and the conversation must alternate
 * user and assistant turns: consecutive turns of one role (tool results are the user's) become one
 * message with several blocks.
 */
export function converseInput(request: GenerateRequest): ConverseCommandInput {
  const toolConfig = toolConfiguration(request, responseTool(request));
  const system: SystemContentBlock[] = request.messages
    .filter((m) => m.role === 'system')
    .flatMap((m) => (m.cachePoint ? [{ text: m.content }, CACHE_POINT] : [{ text: m.content }]));
  const messages: Message[] = [];
  for (const message of request.messages.filter((m) => m.role !== 'system')) {
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = contentBlocks(message, toolConfig !== undefined);
    if (blocks.length === 0) continue;
    const previous = messages.at(-1);
    if (previous?.role === role) previous.content?.push(...blocks);
    else messages.push({ role, content: blocks });
  }
  if (messages[0]?.role !== 'user') {
    throw new PlatformError('invalid_request', 'messages must contain a user message before any assistant message');
  }
  return {
    modelId: request.modelId,
    messages,
    ...(system.length > 0 && { system }),
    ...(toolConfig && { toolConfig }),
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

/** Converse's usage as the port counts it: every input token, with the cached ones named apart. */
export function converseUsage(usage: ConverseTokenUsage | undefined) {
  const cacheRead = usage?.cacheReadInputTokens ?? 0;
  const cacheWrite = usage?.cacheWriteInputTokens ?? 0;
  return {
    inputTokens: usage && (usage.inputTokens ?? 0) + cacheRead + cacheWrite,
    outputTokens: usage?.outputTokens,
    ...(cacheRead > 0 && { cacheReadInputTokens: cacheRead }),
    ...(cacheWrite > 0 && { cacheWriteInputTokens: cacheWrite }),
  };
}

/**
 * How a Converse answer ended: a call of the response-format tool is the answer itself (its text),
 * so it stops; other tool calls stop for the caller to run them.
 */
function finishReason(stopReason: StopReason | undefined, toolCalls: number): GenerateResult['finishReason'] {
  const reason = (stopReason && FINISH_REASON[stopReason]) || 'stop';
  return reason === 'tool_calls' && toolCalls === 0 ? 'stop' : reason;
}

/** Converse's answer blocks as text and tool calls; the response-format tool's input is the text. */
export function converseAnswer(
  request: GenerateRequest,
  content: readonly ContentBlock[],
  stopReason: StopReason | undefined,
): Pick<GenerateResult, 'text' | 'toolCalls' | 'finishReason'> {
  const answerTool = request.responseFormat && responseTool(request)?.name;
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of content) {
    if (block.text) text += block.text;
    const use = block.toolUse;
    if (!use) continue;
    const input = JSON.stringify(use.input ?? {});
    if (use.name === answerTool) text += input;
    else toolCalls.push({ id: use.toolUseId ?? '', name: use.name ?? '', arguments: input });
  }
  const calls = request.parallelToolCalls === false ? toolCalls.slice(0, 1) : toolCalls;
  return {
    text,
    finishReason: finishReason(stopReason, calls.length),
    ...(calls.length > 0 && { toolCalls: calls }),
  };
}

/**
 * ConverseStream's events as the port's: text deltas, and each tool call (id and name, then pieces
 * of its arguments) numbered in the order the calls come; the response-format tool's arguments are
 * text. Stateful: one per stream.
 */
export function converseStreamReader(request: GenerateRequest) {
  const answerTool = request.responseFormat && responseTool(request)?.name;
  /** Content block index -> the call's index, or `text` for the response-format tool. */
  const blocks = new Map<number, number | 'text'>();
  let calls = 0;
  return {
    read(event: ConverseStreamOutput): ModelStreamEvent[] {
      const block = event.contentBlockStart?.contentBlockIndex ?? event.contentBlockDelta?.contentBlockIndex ?? 0;
      const start = event.contentBlockStart?.start?.toolUse;
      if (start) {
        if (start.name === answerTool) blocks.set(block, 'text');
        // One call an answer when the caller asked so: the others are not sent.
        else if (request.parallelToolCalls === false && calls > 0) blocks.set(block, -1);
        else {
          blocks.set(block, calls);
          return [{ type: 'tool_call', index: calls++, id: start.toolUseId ?? '', name: start.name ?? '' }];
        }
        return [];
      }
      const delta = event.contentBlockDelta?.delta;
      if (delta?.text) return [{ type: 'text', text: delta.text }];
      const input = delta?.toolUse?.input;
      const target = blocks.get(block);
      if (!input || target === undefined || target === -1) return [];
      return target === 'text'
        ? [{ type: 'text', text: input }]
        : [{ type: 'tool_arguments', index: target, arguments: input }];
    },
    finishReason: (stopReason: StopReason | undefined) => finishReason(stopReason, calls),
  };
}
