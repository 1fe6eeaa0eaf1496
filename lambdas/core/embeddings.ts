import * as z from '../../contract/zod';
import { resolveModel } from './catalog';
import { embedTexts } from './documents';
import { PlatformError } from './errors';
import type { ModelCall } from './metering';
import type { TenantContext } from './tenant';
import { CL100K_LAST_TOKEN_ID, textOfTokenIds } from './token-ids';

/** One input as token ids of `cl100k_base`. */
const tokenIdsSchema = z
  .array(z.number().check(z.int(), z.gte(0), z.lte(CL100K_LAST_TOKEN_ID)))
  .check(z.minLength(1), z.maxLength(8192));

export const embeddingsRequestSchema = z.strictObject({
  model: z.string().check(z.minLength(1)),
  // Titan Text Embeddings V2 takes at most 50,000 characters (8,192 tokens) an input. Token ids
  // (one list, or a list of them) are what LangChain's OpenAI embeddings send by default.
  input: z.union([
    z.string().check(z.minLength(1), z.maxLength(50_000)),
    z.array(z.string().check(z.minLength(1), z.maxLength(50_000))).check(z.minLength(1), z.maxLength(96)),
    tokenIdsSchema,
    z.array(tokenIdsSchema).check(z.minLength(1), z.maxLength(96)),
  ]),
  /** The OpenAI SDKs ask for `base64` by default: little-endian float32, as OpenAI sends it. */
  encoding_format: z._default(z.enum(['float', 'base64']), 'float'),
  /** Titan V2 gives 256, 512 or 1024; only the model's own length is served. */
  dimensions: z.optional(z.number().check(z.int(), z.positive())),
  /** The end user the call is for: held to the end users' own limits, as a chat's `user` is. */
  user: z.optional(z.string().check(z.maxLength(1000))),
});

/** The inputs of an embeddings request as texts: token ids decoded as `cl100k_base` text. */
export async function embeddingInputs(input: z.infer<typeof embeddingsRequestSchema>['input']): Promise<string[]> {
  if (typeof input === 'string') return [input];
  if (input.every((item) => typeof item === 'string')) return input as string[];
  const lists = typeof input[0] === 'number' ? [input as number[]] : (input as number[][]);
  return Promise.all(lists.map(textOfTokenIds));
}

/** An embedding as `encoding_format` asks for it: the numbers, or their float32 bytes (little-endian) in base64. */
export function encodeEmbedding(vector: readonly number[], format: 'float' | 'base64'): number[] | string {
  if (format === 'float') return [...vector];
  const bytes = Buffer.alloc(vector.length * 4);
  for (const [i, value] of vector.entries()) bytes.writeFloatLE(value, i * 4);
  return bytes.toString('base64');
}

export type EmbeddingsRequest = z.infer<typeof embeddingsRequestSchema>;

/** `POST /v1/embeddings` (and a batch's embeddings line): OpenAI `list` of `embedding`, metered like any model call. */
export async function createEmbeddings(
  deps: Parameters<typeof embedTexts>[0],
  tenant: TenantContext,
  request: EmbeddingsRequest,
  call: ModelCall,
) {
  const inputs = await embeddingInputs(request.input);
  const { dimensions } = resolveModel(deps.catalog, request.model, 'embedding');
  if (request.dimensions !== undefined && request.dimensions !== dimensions) {
    throw new PlatformError('invalid_request', `dimensions: ${request.model} gives ${dimensions}`);
  }
  const result = await embedTexts(deps, tenant, inputs, { ...call, user: request.user }, request.model);
  return {
    object: 'list' as const,
    model: request.model,
    data: result.vectors.map((vector, index) => ({
      object: 'embedding' as const,
      index,
      embedding: encodeEmbedding(vector, request.encoding_format),
    })),
    usage: { prompt_tokens: result.inputTokens, total_tokens: result.inputTokens },
  };
}
