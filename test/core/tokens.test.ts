import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { chunkText } from '../../lambdas/core/retrieval';
import { chatInputTokens, countTokens, tokenSpans, truncateToTokens } from '../../lambdas/core/tokens';

const { samples } = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'token-corpus.json'), 'utf8')) as {
  samples: { category: string; text: string }[];
};

describe('token estimate', () => {
  it.each(samples.map((sample, i) => [`${i} ${sample.category}`, sample.text]))(
    'is never below what real BPE tokenizers count: %s',
    (_name, text) => {
      expect(countTokens(text)).toBeGreaterThanOrEqual(cl100kTokens(text));
      expect(countTokens(text)).toBeGreaterThanOrEqual(o200kTokens(text));
    },
  );

  it('does not refuse ordinary English needlessly early: at most 1.6 times the real count', () => {
    const english = samples.filter((sample) => sample.category === 'english').map((sample) => sample.text);
    const estimated = english.reduce((sum, text) => sum + countTokens(text), 0);
    const real = english.reduce((sum, text) => sum + cl100kTokens(text), 0);
    expect(estimated / real).toBeLessThanOrEqual(1.6);
  });

  it('counts what used to pass as one token by its bytes: CJK, base64, runs without spaces', () => {
    expect(countTokens('客户'.repeat(50_000))).toBe(300_000);
    expect(countTokens('a'.repeat(40_000))).toBe(40_000);
    expect(countTokens('Hello, world!')).toBe(6);
    expect(countTokens('')).toBe(0);
  });

  it('adds the chat format around each message', () => {
    expect(chatInputTokens([{ content: 'Hello, world!' }])).toBe(6 + 4 + 3);
    expect(chatInputTokens([])).toBe(3);
  });

  it('cuts long pieces into spans that cover the text exactly', () => {
    const text = `intro ${'z'.repeat(100)} 日本語テキスト end`;
    const spans = tokenSpans(text);
    expect(spans.every((span) => span.tokens <= 16)).toBe(true);
    expect(spans.reduce((sum, span) => sum + span.tokens, 0)).toBe(countTokens(text));
    for (let i = 1; i < spans.length; i++) expect(spans[i].start).toBeGreaterThanOrEqual(spans[i - 1].end);
  });

  it('truncates to the longest prefix within a budget', () => {
    expect(truncateToTokens('one two three four', 2)).toEqual({ text: 'one two', truncated: true });
    expect(truncateToTokens('one two', 2)).toEqual({ text: 'one two', truncated: false });
    expect(countTokens(truncateToTokens('a, b, c, d', 3).text)).toBeLessThanOrEqual(3);
  });
});

describe('chunking', () => {
  it('keeps every chunk within its budget, also for a run without spaces, and quotes the text', () => {
    const text = `${'客'.repeat(5000)} and then some ordinary words to finish`;
    const chunks = chunkText(text, 200, 40);
    expect(chunks.length).toBeGreaterThan(70);
    for (const chunk of chunks) {
      expect(chunk.tokens).toBeLessThanOrEqual(200);
      expect(countTokens(chunk.text)).toBeLessThanOrEqual(chunk.tokens);
      expect(text).toContain(chunk.text);
    }
    expect(chunks.at(-1)?.text.endsWith('finish')).toBe(true);
  });
});
