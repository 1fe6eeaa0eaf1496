import { modelCatalogSchema } from '../../contract/catalog';
import { costNanoUsd, resolveModel } from '../../lambdas/core/catalog';
import { DEFAULT_MODELS, platformConfig } from '../../lib/config';

describe('model catalog', () => {
  it('prices tokens in whole nano-dollars', () => {
    const model = resolveModel(DEFAULT_MODELS, 'nova-micro', 'chat');
    // 0.035 USD and 0.14 USD per million tokens = 35 and 140 nano-USD per token.
    expect(costNanoUsd(model, 5, 25)).toBe(5 * 35 + 25 * 140);
    expect(Number.isInteger(costNanoUsd(model, 123_457, 98_765))).toBe(true);
  });

  it('refuses unknown models with a 400 that names only the public name', () => {
    expect(() => resolveModel(DEFAULT_MODELS, 'gpt-x', 'chat')).toThrow(
      expect.objectContaining({ code: 'unknown_model', status: 400 }),
    );
    expect(() => resolveModel(DEFAULT_MODELS, 'constructor', 'chat')).toThrow(/does not exist/);
    expect(() => resolveModel(DEFAULT_MODELS, 'titan-embed-text-v2', 'chat')).toThrow(
      /chat model 'titan-embed-text-v2' does not exist/,
    );
    expect(resolveModel(DEFAULT_MODELS, 'titan-embed-text-v2', 'embedding')).toMatchObject({ dimensions: 1024 });
  });

  it('rejects prices finer than a thousandth of a dollar per million tokens', () => {
    const entry = { ...DEFAULT_MODELS['nova-micro'], inputUsdPerMillionTokens: 0.0351 };
    expect(modelCatalogSchema.safeParse({ m: entry }).success).toBe(false);
  });
});

describe('a GPU base model calls tools only with a tool-call parser', () => {
  it('takes the parser from context, the default base model its own, another base model none', () => {
    const entry = (context: Record<string, string>) =>
      platformConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge', ...context })[key]).models['qwen2.5-7b'];
    expect(entry({})).toMatchObject({ toolCalls: true });
    expect(entry({ adapterBaseModel: 'meta-llama/Llama-3.1-8B-Instruct' })).toMatchObject({ toolCalls: false });
    expect(
      entry({ adapterBaseModel: 'meta-llama/Llama-3.1-8B-Instruct', adapterToolCallParser: 'llama3_json' }),
    ).toMatchObject({ toolCalls: true });
    expect(() => entry({ adapterToolCallParser: 'bad parser!' })).toThrow();
  });
});

describe('prompt-cache prices', () => {
  it('price cached input at its own finer price, the call rounded to the nano-dollar', () => {
    const model = resolveModel(DEFAULT_MODELS, 'nova-micro', 'chat');
    // 1,000 input tokens of which 801 read from the cache (8.75 nano each) and 100 written (35): 99 plain (35).
    expect(costNanoUsd(model, 1000, 10, { cacheReadInputTokens: 801, cacheWriteInputTokens: 100 })).toBe(
      Math.round(99 * 35 + 801 * 8.75 + 100 * 35 + 10 * 140),
    );
  });
});
