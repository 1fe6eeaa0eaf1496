import { countTokens } from '../lambdas/core/tokens';

/** Words too common to say anything about a text. */
const STOPWORDS = new Set(
  'a an and are as at be by can do does for from has have how i in is it its of on or our that the this to was we what when where which who why will with you your'.split(
    ' ',
  ),
);

/** FNV-1a, 32 bit: a stable hash, so the same text always lands on the same dimensions. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Not a neural embedding: word unigrams and bigrams hashed into `dimensions` signed buckets, then
 * L2-normalized. Texts that share words are near each other, which is enough for local retrieval
 * to find the relevant passages; `inputTextTokenCount` is the platform's own token count.
 */
export function localEmbedding(text: string, dimensions: number): { embedding: number[]; inputTextTokenCount: number } {
  const vector = new Float64Array(dimensions);
  const words = (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => !STOPWORDS.has(word));
  const features = [...words, ...words.slice(1).map((word, i) => `${words[i]} ${word}`)];
  for (const feature of features) {
    const hash = fnv1a(feature);
    vector[hash % dimensions] += hash & 0x80000000 ? -1 : 1;
  }
  const norm = Math.hypot(...vector) || 1;
  return { embedding: Array.from(vector, (value) => value / norm), inputTextTokenCount: countTokens(text) };
}
