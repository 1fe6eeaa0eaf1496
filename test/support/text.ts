import { countTokens } from '../../lambdas/core/tokens';

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

/** Three-letter words (consonant, vowel, consonant) the estimate counts as one token each after a space: 519 of them. */
const WORDS = [...CONSONANTS]
  .flatMap((first) => [...VOWELS].flatMap((vowel) => [...CONSONANTS].map((last) => `${first}${vowel}${last}`)))
  .filter((word) => countTokens(` ${word}`) === 1);

/** A long text of `count` filler words, `marker` every 97th, to make documents of a known size. */
export function fillerText(count: number, marker: string): string {
  return Array.from({ length: count }, (_, i) => (i % 97 === 0 ? marker : WORDS[i % 500])).join(' ');
}
