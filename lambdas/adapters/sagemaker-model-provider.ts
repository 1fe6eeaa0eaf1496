import {
  InvokeEndpointCommand,
  InvokeEndpointWithResponseStreamCommand,
  type SageMakerRuntimeClient,
} from '@aws-sdk/client-sagemaker-runtime';
import * as z from '../../contract/zod';
import { PlatformError } from '../core/errors';
import { openAiMessage } from '../core/openai-messages';
import type { GenerateRequest, GenerateResult, ModelProvider, ModelStreamEvent, ToolCall } from '../core/ports';
import { upstreamError } from './bedrock-errors';

const toolCallSchema = z.object({
  id: z.string(),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

/** What the container answers to its chat-completions schema: text, tool calls, finish reason, token counts. */
const completionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.nullish(z.string()), tool_calls: z.nullish(z.array(toolCallSchema)) }),
        finish_reason: z.nullish(z.string()),
      }),
    )
    .check(z.minLength(1)),
  usage: z.object({
    prompt_tokens: z.number().check(z.int(), z.nonnegative()),
    completion_tokens: z.number().check(z.int(), z.nonnegative()),
  }),
});

/**
 * The GPU endpoint: `InvokeEndpoint` on one inference component (a base model, or a tenant's
 * adapter), with the container's OpenAI chat-completions body (tools and response formats passed
 * as OpenAI defines them); tokens as the container counted them.
 */
export class SageMakerModelProvider implements ModelProvider {
  constructor(
    private readonly client: SageMakerRuntimeClient,
    private readonly endpointName: string,
  ) {}

  /**
   * `InvokeEndpointWithResponseStream`: the container's server-sent chat chunks arrive as payload
   * parts cut anywhere; lines are put back together before they are read.
   */
  async *stream(_tenant: unknown, request: GenerateRequest): AsyncGenerator<ModelStreamEvent> {
    let finishReason: GenerateResult['finishReason'] = 'stop';
    let usage: z.infer<typeof completionSchema>['usage'] | undefined;
    try {
      const output = await this.client.send(
        new InvokeEndpointWithResponseStreamCommand({
          EndpointName: this.endpointName,
          InferenceComponentName: request.modelId,
          ContentType: 'application/json',
          Accept: 'text/event-stream',
          Body: JSON.stringify({ ...openAiChatBody(request), stream: true, stream_options: { include_usage: true } }),
        }),
        { abortSignal: request.signal },
      );
      let pending = '';
      for await (const event of output.Body ?? []) {
        pending += Buffer.from(event.PayloadPart?.Bytes ?? []).toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const data = /^data: ?(.*)$/.exec(line.trim())?.[1];
          if (!data || data === '[DONE]') continue;
          const chunk = chunkSchema.parse(JSON.parse(data));
          const choice = chunk.choices[0];
          if (choice?.delta.content) yield { type: 'text', text: choice.delta.content };
          for (const call of choice?.delta.tool_calls ?? []) {
            if (call.id && call.function?.name) {
              yield { type: 'tool_call', index: call.index, id: call.id, name: call.function.name };
            }
            if (call.function?.arguments) {
              yield { type: 'tool_arguments', index: call.index, arguments: call.function.arguments };
            }
          }
          if (choice?.finish_reason) finishReason = finishReasonOf(choice.finish_reason);
          if (chunk.usage) usage = chunk.usage;
        }
      }
    } catch (error) {
      throw sageMakerError(error);
    }
    yield {
      type: 'end',
      finishReason,
      inputTokens: usage?.prompt_tokens,
      outputTokens: usage?.completion_tokens,
    };
  }

  async generate(_tenant: unknown, request: GenerateRequest): Promise<GenerateResult> {
    let body: Uint8Array | undefined;
    try {
      ({ Body: body } = await this.client.send(
        new InvokeEndpointCommand({
          EndpointName: this.endpointName,
          InferenceComponentName: request.modelId,
          ContentType: 'application/json',
          Accept: 'application/json',
          Body: JSON.stringify(openAiChatBody(request)),
        }),
        { abortSignal: request.signal },
      ));
    } catch (error) {
      throw sageMakerError(error);
    }
    const parsed = completionSchema.safeParse(JSON.parse(Buffer.from(body ?? []).toString('utf8') || 'null'));
    // It ran, but its answer cannot be read: billed at the reservation, answered as an upstream error.
    if (!parsed.success) throw new PlatformError('upstream_error', 'the model provider could not serve the request');
    const [choice] = parsed.data.choices;
    const toolCalls: ToolCall[] = (choice.message.tool_calls ?? []).map((call) => ({
      id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
    }));
    return {
      text: choice.message.content ?? '',
      finishReason: finishReasonOf(choice.finish_reason),
      ...(toolCalls.length > 0 && { toolCalls }),
      inputTokens: parsed.data.usage.prompt_tokens,
      outputTokens: parsed.data.usage.completion_tokens,
    };
  }
}

/** A streamed chunk of the container's chat schema. */
const chunkSchema = z.object({
  choices: z.array(
    z.object({
      delta: z.object({
        content: z.nullish(z.string()),
        tool_calls: z.nullish(
          z.array(
            z.object({
              index: z.number().check(z.int(), z.nonnegative()),
              id: z.nullish(z.string()),
              function: z.nullish(z.object({ name: z.nullish(z.string()), arguments: z.nullish(z.string()) })),
            }),
          ),
        ),
      }),
      finish_reason: z.nullish(z.string()),
    }),
  ),
  usage: z.nullish(completionSchema.shape.usage),
});

function finishReasonOf(reason: string | null | undefined): GenerateResult['finishReason'] {
  return reason === 'length' || reason === 'tool_calls' ? reason : 'stop';
}

/** The container's OpenAI chat-completions body: the port's messages and tools in OpenAI's shapes. */
export function openAiChatBody(request: GenerateRequest) {
  const choice = request.toolChoice;
  const format = request.responseFormat;
  return {
    messages: request.messages.map(openAiMessage),
    max_tokens: request.maxTokens,
    ...(request.temperature !== undefined && { temperature: request.temperature }),
    ...(request.topP !== undefined && { top_p: request.topP }),
    ...(request.stop && { stop: request.stop }),
    ...(request.tools && {
      tools: request.tools.map((tool) => ({ type: 'function', function: tool })),
      ...(choice && { tool_choice: typeof choice === 'object' ? { type: 'function', function: choice } : choice }),
      ...(request.parallelToolCalls !== undefined && { parallel_tool_calls: request.parallelToolCalls }),
    }),
    ...(format && {
      response_format:
        format.type === 'json_schema'
          ? {
              type: 'json_schema',
              json_schema: { name: format.name, schema: format.schema, strict: format.strict ?? false },
            }
          : format,
    }),
  };
}

function sageMakerError(error: unknown): PlatformError {
  const name = (error as { name?: string }).name;
  // The container refused the request: the caller's input, as Bedrock's ValidationException.
  if (name === 'ModelError') {
    return new PlatformError('invalid_request', 'the model refused the request as invalid: check its length');
  }
  // No component in service to take it (scaling to zero, being replaced): nothing ran.
  if (name === 'ValidationError' || name === 'ServiceUnavailable') {
    return new PlatformError('upstream_unavailable', 'the model is not available right now, retry shortly', {
      upstream: 'unavailable',
    });
  }
  return upstreamError(error);
}
