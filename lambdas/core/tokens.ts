/**
 * The platform's own token counter: words and single punctuation marks. It is used to estimate a
 * request's input before the model runs (the reservation) and by the local model; billing always
 * uses the token counts the model provider reports.
 */
const TOKEN = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

/** Where each token of `text` starts and ends. */
export function tokenSpans(text: string): { start: number; end: number }[] {
  return [...text.matchAll(TOKEN)].map((m) => ({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length }));
}

export function countTokens(text: string): number {
  let count = 0;
  for (const _ of text.matchAll(TOKEN)) count++;
  return count;
}

/** The longest prefix of `text` holding at most `maxTokens` tokens, and whether it was cut. */
export function truncateToTokens(text: string, maxTokens: number): { text: string; truncated: boolean } {
  let seen = 0;
  for (const match of text.matchAll(TOKEN)) {
    seen++;
    if (seen === maxTokens) {
      const end = (match.index ?? 0) + match[0].length;
      return { text: text.slice(0, end), truncated: end < text.trimEnd().length };
    }
  }
  return { text, truncated: false };
}
