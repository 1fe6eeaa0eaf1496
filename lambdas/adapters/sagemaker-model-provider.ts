import { InvokeEndpointCommand, type SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import * as z from 'zod';
import { PlatformError } from '../core/errors';
import type { GenerateRequest, GenerateResult, ModelProvider } from '../core/ports';
import { upstreamError } from './bedrock-errors';

/** What the LMI container answers to its chat-completions schema: text, finish reason, token counts. */
const completionSchema = z.object({
  choices: z
    .array(z.object({ message: z.object({ content: z.string() }), finish_reason: z.string().nullish() }))
    .min(1),
  usage: z.object({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() }),
});

/**
 * The GPU endpoint: `InvokeEndpoint` on one inference component (a base model, or a tenant's
 * adapter), with the LMI container's chat-completions body; tokens as the container counted them.
 */
export class SageMakerModelProvider implements ModelProvider {
  constructor(
    private readonly client: SageMakerRuntimeClient,
    private readonly endpointName: string,
  ) {}

  async generate(_tenant: unknown, request: GenerateRequest): Promise<GenerateResult> {
    let body: Uint8Array | undefined;
    try {
      ({ Body: body } = await this.client.send(
        new InvokeEndpointCommand({
          EndpointName: this.endpointName,
          InferenceComponentName: request.modelId,
          ContentType: 'application/json',
          Accept: 'application/json',
          Body: JSON.stringify({
            messages: request.messages,
            max_tokens: request.maxTokens,
            ...(request.temperature !== undefined && { temperature: request.temperature }),
            ...(request.topP !== undefined && { top_p: request.topP }),
            ...(request.stop && { stop: request.stop }),
          }),
        }),
        { abortSignal: request.signal },
      ));
    } catch (error) {
      const name = (error as { name?: string }).name;
      // The container refused the request: the caller's input, as Bedrock's ValidationException.
      if (name === 'ModelError') {
        throw new PlatformError('invalid_request', 'the model refused the request as invalid: check its length');
      }
      // No component in service to take it (scaling to zero, being replaced): nothing ran.
      if (name === 'ValidationError' || name === 'ServiceUnavailable') {
        throw new PlatformError('upstream_unavailable', 'the model is not available right now, retry shortly');
      }
      throw upstreamError(error);
    }
    const parsed = completionSchema.safeParse(JSON.parse(Buffer.from(body ?? []).toString('utf8') || 'null'));
    // It ran, but its answer cannot be read: billed at the reservation, answered as an upstream error.
    if (!parsed.success) throw new PlatformError('upstream_error', 'the model provider could not serve the request');
    const [choice] = parsed.data.choices;
    return {
      text: choice.message.content,
      finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
      inputTokens: parsed.data.usage.prompt_tokens,
      outputTokens: parsed.data.usage.completion_tokens,
    };
  }
}
