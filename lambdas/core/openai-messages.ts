import type { ChatMessage, ToolCall } from './ports';

/** A tool call in OpenAI's shape. */
export function openAiToolCall(call: ToolCall) {
  return { id: call.id, type: 'function' as const, function: { name: call.name, arguments: call.arguments } };
}

/** A message in OpenAI's shape: its tool calls, or the call a tool turn answers. */
export function openAiMessage(message: ChatMessage) {
  return {
    role: message.role,
    content: message.content,
    ...(message.toolCalls && { tool_calls: message.toolCalls.map(openAiToolCall) }),
    ...(message.toolCallId !== undefined && { tool_call_id: message.toolCallId }),
  };
}
