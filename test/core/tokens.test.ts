import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as cl100k, countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as o200k, countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { chunkText } from '../../lambdas/core/retrieval';
import {
  chatInputTokens,
  countTokens,
  SPACED_WORDS,
  tokenSpans,
  truncateToTokens,
  WHOLE_WORDS,
} from '../../lambdas/core/tokens';

const { samples } = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'token-corpus.json'), 'utf8')) as {
  samples: { category: string; text: string }[];
};

/** A fixed-seed generator (LCG), so the adversarial texts are the same on every run. */
function random(seed: number) {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)];
  return { next, pick };
}

/** Texts built to find where an estimate from word shapes would undercount. */
function adversarialTexts(): [string, string][] {
  const { next, pick } = random(42);
  const letters = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'];
  const words = [...WHOLE_WORDS.split(' '), ...SPACED_WORDS.split(' ')];
  const separators = [' ', '  ', '(', '.', ', ', '_', "'", "'s", '-', '/', '\t', '\n', '\u00a0', '42', 'é', '日', ''];
  const shapes: Record<string, () => string> = {
    'random letters': () => Array.from({ length: 1 + Math.floor(next() * 24) }, () => pick(letters)).join(''),
    'pronounceable non-words': () =>
      Array.from({ length: 2 + Math.floor(next() * 14) }, (_, i) =>
        pick([...(i % 2 ? 'aeiouy' : 'bcdfghjklmnpqrstvwxz')]),
      ).join(''),
    'digits of other scripts': () =>
      Array.from({ length: 1 + Math.floor(next() * 12) }, () => pick([...'٣٤۵۶३४５６7'])).join(''),
    'space runs': () => ' '.repeat(1 + Math.floor(next() * 130)) + pick(['', 'x', '1', '.', '\n']),
    'listed words glued by symbols': () =>
      Array.from({ length: 1 + Math.floor(next() * 8) }, () => {
        const word = pick(words);
        return (
          (next() < 0.3 ? word.toUpperCase() : next() < 0.5 ? word[0].toUpperCase() + word.slice(1) : word) +
          pick(separators)
        );
      }).join(''),
  };
  return Object.entries(shapes).flatMap(([shape, make]) =>
    Array.from({ length: 400 }, (): [string, string] => [shape, make()]),
  );
}

describe('token estimate', () => {
  it.each(samples.map((sample, i) => [`${i} ${sample.category}`, sample.text]))(
    'is never below what real BPE tokenizers count: %s',
    (_name, text) => {
      expect(countTokens(text)).toBeGreaterThanOrEqual(cl100kTokens(text));
      expect(countTokens(text)).toBeGreaterThanOrEqual(o200kTokens(text));
    },
  );

  it('is never below what real BPE tokenizers count on adversarial text', () => {
    const under = adversarialTexts().filter(
      ([, text]) => countTokens(text) < Math.max(cl100kTokens(text), o200kTokens(text)),
    );
    expect(under).toEqual([]);
  });

  it('counts a listed word as one token only where both vocabularies hold it as one', () => {
    const oneToken = (text: string) => cl100k(text).length === 1 && o200k(text).length === 1;
    const capitalized = (word: string) => word[0].toUpperCase() + word.slice(1);
    const whole = WHOLE_WORDS.split(' ').filter(
      (word) =>
        !(oneToken(word) && oneToken(` ${word}`) && oneToken(capitalized(word)) && oneToken(` ${capitalized(word)}`)),
    );
    const spaced = SPACED_WORDS.split(' ').filter((word) => !oneToken(` ${word}`));
    expect([...whole, ...spaced]).toEqual([]);
  });

  it('does not refuse ordinary English needlessly early: at most 1.5 times the real count', () => {
    const english = samples.filter((sample) => sample.category === 'english').map((sample) => sample.text);
    const estimated = english.reduce((sum, text) => sum + countTokens(text), 0);
    expect(estimated / english.reduce((sum, text) => sum + cl100kTokens(text), 0)).toBeLessThanOrEqual(1.5);
    expect(estimated / english.reduce((sum, text) => sum + o200kTokens(text), 0)).toBeLessThanOrEqual(1.5);
  });

  it('counts what used to pass as one token by its bytes: CJK, base64, runs without spaces', () => {
    expect(countTokens('客户'.repeat(50_000))).toBe(300_000);
    expect(countTokens('a'.repeat(40_000))).toBe(40_000);
    expect(countTokens('٣٤٥')).toBe(6);
    expect(countTokens('Hello, world!')).toBe(4);
    expect(countTokens('')).toBe(0);
  });

  it('adds the chat format around each message', () => {
    expect(chatInputTokens([{ content: 'Hello, world!' }])).toBe(4 + 4 + 3);
    expect(chatInputTokens([])).toBe(3);
  });

  it('cuts long pieces into spans that cover the text exactly and sum to at least the estimate', () => {
    const text = `intro ${'z'.repeat(100)} 日本語テキスト ${'7'.repeat(100)}${' '.repeat(100)}end`;
    const spans = tokenSpans(text);
    expect(spans.every((span) => span.tokens <= 16)).toBe(true);
    expect(spans.reduce((sum, span) => sum + span.tokens, 0)).toBeGreaterThanOrEqual(countTokens(text));
    for (let i = 1; i < spans.length; i++) expect(spans[i].start).toBe(spans[i - 1].end);
  });

  it('truncates to the longest prefix within a budget', () => {
    expect(truncateToTokens('one two three four', 2)).toEqual({ text: 'one two', truncated: true });
    expect(truncateToTokens('one two', 2)).toEqual({ text: 'one two', truncated: false });
    expect(countTokens(truncateToTokens('a, b, c, d', 3).text)).toBeLessThanOrEqual(3);
    expect(countTokens(truncateToTokens('客'.repeat(100), 20).text)).toBeLessThanOrEqual(20);
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

  it('cuts a 100,000-character run without spaces into contiguous chunks of at most the budget', () => {
    const text = 'x9Q/'.repeat(25_000);
    const chunks = chunkText(text, 512, 0);
    expect(chunks.every((chunk) => chunk.tokens <= 512 && chunk.tokens === countTokens(chunk.text))).toBe(true);
    expect(chunks.map((chunk) => chunk.text).join('')).toBe(text);
  });
});
