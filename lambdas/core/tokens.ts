/**
 * The platform's token estimate: an upper bound of what a byte-level BPE tokenizer (the tokenizers
 * of the models we serve) counts for a text, so an admission reservation is never below what the
 * model will bill. Billing always uses the provider's own counts; this bound decides admission,
 * chunk sizes, and the local model's counts.
 *
 * Why it is a bound: every token holds at least one byte, so however a tokenizer splits the text,
 * giving each token to the piece holding its first byte shows that the UTF-8 bytes of a piece bound
 * its tokens. Only three shapes count less than their bytes, each from what the vocabularies hold
 * rather than from a guess: an ASCII word that both cl100k_base and o200k_base hold as one token in
 * that form (`common-words.ts`, generated from them), a run of ASCII digits (they are cut into
 * groups of three, each one token), and a run of spaces (runs up to 80 are one token).
 * `test/core/tokens.test.ts` proves the bound against real BPE counts on a fixture corpus and on
 * adversarial text: random words, digits of other scripts, space runs.
 */
import { brotliDecompressSync } from 'node:zlib';
import { COMMON_WORDS } from './common-words';

/**
 * A word is cut off where BPE pre-tokenizers cut it (letters, digits, spaces, other symbols); an
 * ASCII word touching a non-ASCII letter joins it, so a listed word is never counted inside one.
 */
const PIECE = / ?[A-Za-z]+(?![\p{L}\p{M}])| ?[0-9]+| ?[\p{L}\p{M}\p{N}]+| +|\s+| ?[^\s\p{L}\p{M}\p{N}]+/gu;

/** Longest a span gets: long pieces are cut so chunks can end inside them. */
const MAX_SPAN_TOKENS = 16;

// Unpacked once, at load (about a millisecond): compressed, the lists weigh half as much in every bundle.
export const [WHOLE_WORDS, SPACED_WORDS] = brotliDecompressSync(Buffer.from(COMMON_WORDS, 'base64'))
  .toString('utf8')
  .split('\n');
const WHOLE = new Set(WHOLE_WORDS.split(' '));
const SPACED = new Set(SPACED_WORDS.split(' '));
const utf8 = new TextEncoder();

const byBytes = (piece: string) => utf8.encode(piece).length;
/** A leading space is a token of its own before digits; each group of at most three digits is one. */
const byDigits = (piece: string) => (piece.startsWith(' ') ? 1 : 0) + Math.ceil(piece.trimStart().length / 3);
/** Tokenizers keep the last space of a run for the word after it: so one token more than half the run. */
const bySpaces = (piece: string) => Math.ceil((piece.length + 1) / 2);

function isOneToken(piece: string): boolean {
  const word = piece.trimStart();
  const lower = word.toLowerCase();
  if (WHOLE.has(lower)) return word === lower || word === lower[0].toUpperCase() + lower.slice(1);
  return piece === ` ${word}` && word === lower && SPACED.has(word);
}

/** The rule that bounds a piece; it also bounds any part cut from the piece, summed over the parts. */
function ruleFor(piece: string): (part: string) => number {
  if (/^ ?[0-9]+$/.test(piece)) return byDigits;
  if (/^ +$/.test(piece)) return bySpaces;
  if (/^ ?[A-Za-z]+$/.test(piece) && isOneToken(piece)) return () => 1;
  return byBytes;
}

/** Where each piece of `text` starts and ends, and its token bound; no span weighs more than `MAX_SPAN_TOKENS`. */
export function tokenSpans(text: string): { start: number; end: number; tokens: number }[] {
  const spans: { start: number; end: number; tokens: number }[] = [];
  for (const match of text.matchAll(PIECE)) {
    const start = match.index ?? 0;
    const rule = ruleFor(match[0]);
    const tokens = rule(match[0]);
    if (tokens <= MAX_SPAN_TOKENS) {
      spans.push({ start, end: start + match[0].length, tokens });
      continue;
    }
    // Cut at code points; every rule is subadditive, so the parts' bounds sum to at least the whole's.
    let partStart = start;
    let offset = start;
    for (const char of match[0]) {
      const part = text.slice(partStart, offset + char.length);
      if (offset > partStart && rule(part) > MAX_SPAN_TOKENS) {
        spans.push({ start: partStart, end: offset, tokens: rule(text.slice(partStart, offset)) });
        partStart = offset;
      }
      offset += char.length;
    }
    spans.push({ start: partStart, end: offset, tokens: rule(text.slice(partStart, offset)) });
  }
  return spans;
}

export function countTokens(text: string): number {
  let count = 0;
  for (const match of text.matchAll(PIECE)) count += ruleFor(match[0])(match[0]);
  return count;
}

/** The longest prefix of `text` whose estimate is at most `maxTokens`, and whether it was cut. */
export function truncateToTokens(text: string, maxTokens: number): { text: string; truncated: boolean } {
  let seen = 0;
  let end = 0;
  for (const span of tokenSpans(text)) {
    if (seen + span.tokens > maxTokens) return { text: text.slice(0, end), truncated: true };
    seen += span.tokens;
    end = span.end;
  }
  return { text, truncated: false };
}

/** Chat formats wrap each message in role and separator tokens, and prime the reply with a few more. */
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

/** The input a chat model will count for these messages (their tool calls too), at most. */
export function chatInputTokens(
  messages: readonly { content: string; toolCalls?: readonly { name: string; arguments: string }[] }[],
): number {
  return messages.reduce(
    (sum, message) =>
      sum +
      countTokens(message.content) +
      TOKENS_PER_MESSAGE +
      (message.toolCalls ?? []).reduce((calls, call) => calls + countTokens(`${call.name} ${call.arguments}`), 0),
    TOKENS_PER_REPLY,
  );
}
