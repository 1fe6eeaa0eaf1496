import type { ModelCatalog, ModelEntry } from '../../contract/catalog';
import { PlatformError } from './errors';
import type { PromptCacheUsage } from './ports';

type PromptCachePrices = { readonly readUsdPerMillionTokens: number; readonly writeUsdPerMillionTokens: number };

type Kind = ModelEntry['kind'];

export type ResolvedModel<K extends Kind = Kind> = Extract<ModelEntry, { kind: K }> & { readonly name: string };

/** The model of that name and kind; a chat model named on the embeddings route does not exist there, and vice versa. */
export function resolveModel<K extends Kind>(catalog: ModelCatalog, name: string, kind: K): ResolvedModel<K> {
  const entry = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
  if (entry?.kind !== kind) throw new PlatformError('unknown_model', `${kind} model '${name}' does not exist`);
  return { name, ...(entry as Extract<ModelEntry, { kind: K }>) };
}

/**
 * Cost in whole nano-dollars (1e-9 USD): exact in integers for prices with up to three decimals;
 * input read from or written to a prompt cache, priced finer, is summed in pico-dollars and the
 * call's total rounded to the nano-dollar.
 */
export function costNanoUsd(
  model: Pick<ModelEntry, 'inputUsdPerMillionTokens' | 'outputUsdPerMillionTokens'> & {
    readonly promptCache?: PromptCachePrices;
  },
  inputTokens: number,
  outputTokens: number,
  cache: PromptCacheUsage = {},
): number {
  const perToken = (usdPerMillion: number) => Math.round(usdPerMillion * 1e6);
  const read = cache.cacheReadInputTokens ?? 0;
  const written = cache.cacheWriteInputTokens ?? 0;
  const prices = model.promptCache;
  const picoUsd =
    (inputTokens - read - written) * perToken(model.inputUsdPerMillionTokens) +
    read * perToken(prices?.readUsdPerMillionTokens ?? model.inputUsdPerMillionTokens) +
    written * perToken(prices?.writeUsdPerMillionTokens ?? model.inputUsdPerMillionTokens) +
    outputTokens * perToken(model.outputUsdPerMillionTokens);
  return Math.round(picoUsd / 1000);
}

export function nanoUsdToUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}

/** The model id of a tenant's call to a Bedrock model: its own inference profile of it, if it has one. */
export function bedrockModelIdFor(
  tenant: { readonly inferenceProfiles?: Readonly<Record<string, string>> },
  model: { readonly name: string; readonly bedrockModelId: string },
): string {
  return tenant.inferenceProfiles?.[model.name] ?? model.bedrockModelId;
}

/** Each catalog at batch prices, made once: a batch's steps and every line ask for it. */
const batchCatalogs = new WeakMap<ModelCatalog, ModelCatalog>();

/**
 * The catalog a batch's lines run with: each model at its batch prices where it has them (its
 * on-demand prices where not), so every line's settle bills what the batch costs.
 */
export function atBatchPrices(catalog: ModelCatalog): ModelCatalog {
  const known = batchCatalogs.get(catalog);
  if (known) return known;
  const priced = Object.fromEntries(
    Object.entries(catalog).map(([name, entry]) => [
      name,
      {
        ...entry,
        inputUsdPerMillionTokens:
          ('batchInputUsdPerMillionTokens' in entry ? entry.batchInputUsdPerMillionTokens : undefined) ??
          entry.inputUsdPerMillionTokens,
        outputUsdPerMillionTokens:
          ('batchOutputUsdPerMillionTokens' in entry ? entry.batchOutputUsdPerMillionTokens : undefined) ??
          entry.outputUsdPerMillionTokens,
      },
    ]),
  ) as ModelCatalog;
  batchCatalogs.set(catalog, priced);
  return priced;
}
