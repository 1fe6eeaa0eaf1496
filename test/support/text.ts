const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

/** The i-th of 980 distinct three-letter words (consonant, vowel, consonant): one token each to the platform. */
function word(i: number): string {
  const n = i % (CONSONANTS.length * VOWELS.length * CONSONANTS.length);
  return `${CONSONANTS[n % 14]}${VOWELS[Math.floor(n / 14) % 5]}${CONSONANTS[Math.floor(n / 70) % 14]}`;
}

/** A long text of `count` filler words, `marker` every 97th, to make documents of a known size. */
export function fillerText(count: number, marker: string): string {
  return Array.from({ length: count }, (_, i) => (i % 97 === 0 ? marker : word(i % 500))).join(' ');
}
