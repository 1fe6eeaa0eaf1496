import { z } from 'zod';
import { PlatformError } from './errors';

const priceUsdPerMillionTokens = z
  .number()
  .nonnegative()
  // Cost is kept in whole nano-dollars per token, so prices may carry at most three decimals.
  .refine((price) => Number.isInteger(Math.round(price * 1e6) / 1e3), 'at most three decimals');

export const modelEntrySchema = z.object({
  /** Bedrock model id or inference profile id, e.g. `amazon.nova-micro-v1:0`. */
  bedrockModelId: z.string().min(1),
  inputUsdPerMillionTokens: priceUsdPerMillionTokens,
  outputUsdPerMillionTokens: priceUsdPerMillionTokens,
  /** Used when a request gives no `max_tokens`. */
  defaultMaxTokens: z.number().int().positive(),
  /** The largest `max_tokens` a request may ask for. */
  maxOutputTokens: z.number().int().positive(),
});

/** Public model name (what tenants send as `model`) -> how it is served and priced. */
export const modelCatalogSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9.-]*$/), modelEntrySchema);

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type ModelCatalog = z.infer<typeof modelCatalogSchema>;

export interface ResolvedModel extends ModelEntry {
  readonly name: string;
}

export function resolveModel(catalog: ModelCatalog, name: string): ResolvedModel {
  const entry = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
  if (!entry) throw new PlatformError('unknown_model', `model '${name}' does not exist`);
  return { name, ...entry };
}

/** Cost in whole nano-dollars (1e-9 USD), exact in integers for prices with up to three decimals. */
export function costNanoUsd(model: ModelEntry, inputTokens: number, outputTokens: number): number {
  const perToken = (usdPerMillion: number) => Math.round(usdPerMillion * 1000);
  return (
    inputTokens * perToken(model.inputUsdPerMillionTokens) + outputTokens * perToken(model.outputUsdPerMillionTokens)
  );
}

export function nanoUsdToUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}
