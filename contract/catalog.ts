import * as z from './zod';

/** The model catalog as configuration states it: public model name -> how it is served and priced. */
const priceUsdPerMillionTokens = z.number().check(
  z.nonnegative(),
  z.refine((price) => Number.isInteger(Math.round(price * 1e6) / 1e3), 'at most three decimals'),
);

/** Prompt-cache prices may be finer (a quarter of a thousandth, say): priced in pico-dollars per token. */
const cachePriceUsdPerMillionTokens = z.number().check(
  z.nonnegative(),
  z.refine((price) => Number.isInteger(Math.round(price * 1e9) / 1e3), 'at most six decimals'),
);

/** How a Bedrock model caches prompt prefixes (cache points), and what cached tokens cost. */
const promptCacheSchema = z.object({
  /** The shortest prefix, in tokens, the model caches: the platform adds automatic cache points only past it. */
  minPrefixTokens: z.number().check(z.int(), z.positive()),
  /** A token read from the cache. */
  readUsdPerMillionTokens: cachePriceUsdPerMillionTokens,
  /** A token written to the cache. */
  writeUsdPerMillionTokens: cachePriceUsdPerMillionTokens,
});

/**
 * A Bedrock model's batch prices (Bedrock batch inference: about half the on-demand price), what a
 * batch's lines are billed at; absent: the on-demand prices. Finer than on-demand prices (half of
 * three decimals), so priced like the prompt cache's, in pico-dollars per token.
 */
const batchPrices = {
  batchInputUsdPerMillionTokens: z.optional(cachePriceUsdPerMillionTokens),
  batchOutputUsdPerMillionTokens: z.optional(cachePriceUsdPerMillionTokens),
};

/** Whether a chat model calls tools (OpenAI `tools`); false: a request with tools is a 400 naming it. */
const toolCalls = z.optional(z.boolean());

const chatModelSchema = z.object({
  kind: z.literal('chat'),
  /** Bedrock model id or inference profile id, e.g. `amazon.nova-micro-v1:0`. */
  bedrockModelId: z.string().check(z.minLength(1)),
  inputUsdPerMillionTokens: priceUsdPerMillionTokens,
  outputUsdPerMillionTokens: priceUsdPerMillionTokens,
  /** Used when a request gives no `max_tokens`. */
  defaultMaxTokens: z.number().check(z.int(), z.positive()),
  /** The largest `max_tokens` a request may ask for. */
  maxOutputTokens: z.number().check(z.int(), z.positive()),
  /** @default true */
  toolCalls,
  /** Absent: the model has no prompt cache. */
  promptCache: z.optional(promptCacheSchema),
  ...batchPrices,
});

/**
 * A chat model on the platform's GPU endpoint (SageMaker inference components): the base model that
 * tenants' LoRA adapters run on, priced per token like the Bedrock models.
 */
const adapterBaseModelSchema = z.object({
  kind: z.literal('chat'),
  /** The model the base components load (a Hugging Face id or an S3 URI), for people: calls go by component. */
  adapterBaseModel: z.string().check(z.minLength(1)),
  inputUsdPerMillionTokens: priceUsdPerMillionTokens,
  outputUsdPerMillionTokens: priceUsdPerMillionTokens,
  defaultMaxTokens: z.number().check(z.int(), z.positive()),
  maxOutputTokens: z.number().check(z.int(), z.positive()),
  /** Only when the container parses tool calls (vLLM's `--tool-call-parser`). @default false */
  toolCalls,
});

const embeddingModelSchema = z.object({
  kind: z.literal('embedding'),
  /** Bedrock model id, e.g. `amazon.titan-embed-text-v2:0`. */
  bedrockModelId: z.string().check(z.minLength(1)),
  inputUsdPerMillionTokens: priceUsdPerMillionTokens,
  outputUsdPerMillionTokens: z.literal(0),
  /** Length of the vectors it returns (Titan Text Embeddings V2: 256, 512 or 1024). */
  dimensions: z.number().check(z.int(), z.positive()),
  /** Longest input it embeds, in tokens (Titan Text Embeddings V2: 8,192). */
  maxInputTokens: z.number().check(z.int(), z.positive()),
  /** Longest input it embeds, in characters (Titan Text Embeddings V2: 50,000). */
  maxInputChars: z.number().check(z.int(), z.positive()),
  batchInputUsdPerMillionTokens: batchPrices.batchInputUsdPerMillionTokens,
});

export const modelEntrySchema = z.union([chatModelSchema, adapterBaseModelSchema, embeddingModelSchema]);

/** Public model name (what tenants send as `model`) -> how it is served and priced. */
export const modelCatalogSchema = z.record(z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]*$/)), modelEntrySchema);

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type ModelCatalog = z.infer<typeof modelCatalogSchema>;

/** The entries Bedrock serves (chat and embedding models), each with its public name. */
export type BedrockModel = Extract<ModelEntry, { bedrockModelId: string }> & { readonly name: string };

/** The catalog's Bedrock models: what functions may invoke, the local Bedrock serves, tenants get profiles of. */
export function bedrockModels(catalog: ModelCatalog): BedrockModel[] {
  return Object.entries(catalog).flatMap(([name, entry]) => ('bedrockModelId' in entry ? [{ ...entry, name }] : []));
}
