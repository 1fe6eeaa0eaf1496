import { InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import type { Embedder } from '../core/ports';
import type { BedrockCallers } from './bedrock-callers';
import { upstreamError } from './bedrock-errors';

/** Titan allows one text per call: this many calls run at once for a batch. */
const PARALLEL_CALLS = 8;

/** Amazon Titan Text Embeddings V2 through `InvokeModel`: `{inputText, dimensions, normalize}` -> `{embedding, inputTextTokenCount}`. */
export class BedrockEmbedder implements Embedder {
  constructor(private readonly callers: BedrockCallers) {}

  async embed(
    tenant: { readonly tenantId: string },
    request: { modelId: string; texts: readonly string[]; dimensions: number; signal?: AbortSignal },
  ) {
    const vectors: number[][] = new Array(request.texts.length);
    let inputTokens = 0;
    let next = 0;
    const worker = async () => {
      while (next < request.texts.length) {
        const i = next++;
        const answer = await this.invoke(
          tenant,
          request.modelId,
          { inputText: request.texts[i], dimensions: request.dimensions, normalize: true },
          request.signal,
        );
        vectors[i] = answer.embedding;
        inputTokens += answer.inputTextTokenCount;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CALLS, request.texts.length) }, worker));
    return { vectors, inputTokens, outputTokens: 0 as const };
  }

  private async invoke(
    tenant: { readonly tenantId: string },
    modelId: string,
    body: { inputText: string; dimensions: number; normalize: boolean },
    abortSignal?: AbortSignal,
  ) {
    try {
      const output = await this.callers.for(tenant, modelId).send(
        new InvokeModelCommand({
          modelId,
          contentType: 'application/json',
          accept: 'application/json',
          body: JSON.stringify(body),
        }),
        { abortSignal },
      );
      return JSON.parse(new TextDecoder().decode(output.body)) as { embedding: number[]; inputTextTokenCount: number };
    } catch (error) {
      throw upstreamError(error);
    }
  }
}
