import { modelCatalogSchema } from '../../contract/catalog';
import { costNanoUsd, resolveModel } from '../../lambdas/core/catalog';
import { DEFAULT_MODELS } from '../../lib/config';

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
