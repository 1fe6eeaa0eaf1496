import { type BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { PlatformError } from '../core/errors';
import type { Embedder } from '../ports';

/** Titan allows one text per call: this many calls run at once for a batch. */
const PARALLEL_CALLS = 8;

/** Amazon Titan Text Embeddings V2 through `InvokeModel`: `{inputText, dimensions, normalize}` -> `{embedding, inputTextTokenCount}`. */
export class BedrockEmbedder implements Embedder {
  constructor(private readonly client: BedrockRuntimeClient) {}

  async embed(_tenant: unknown, request: { modelId: string; texts: readonly string[]; dimensions: number }) {
    const vectors: number[][] = new Array(request.texts.length);
    let inputTokens = 0;
    let next = 0;
    const worker = async () => {
      while (next < request.texts.length) {
        const i = next++;
        const answer = await this.invoke(request.modelId, {
          inputText: request.texts[i],
          dimensions: request.dimensions,
          normalize: true,
        });
        vectors[i] = answer.embedding;
        inputTokens += answer.inputTextTokenCount;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CALLS, request.texts.length) }, worker));
    return { vectors, inputTokens, outputTokens: 0 as const };
  }

  private async invoke(modelId: string, body: { inputText: string; dimensions: number; normalize: boolean }) {
    try {
      const output = await this.client.send(
        new InvokeModelCommand({
          modelId,
          contentType: 'application/json',
          accept: 'application/json',
          body: JSON.stringify(body),
        }),
      );
      return JSON.parse(new TextDecoder().decode(output.body)) as { embedding: number[]; inputTextTokenCount: number };
    } catch (error) {
      const name = error instanceof Error ? error.name : '';
      if (name === 'ThrottlingException' || name === 'ServiceUnavailableException') {
        throw new PlatformError('upstream_unavailable', 'the embedding model is busy, retry shortly');
      }
      if (name === 'ValidationException') {
        throw new PlatformError(
          'invalid_request',
          'the embedding model refused the input as invalid: check its length',
        );
      }
      throw new PlatformError('upstream_error', 'the embedding model could not serve the request');
    }
  }
}
