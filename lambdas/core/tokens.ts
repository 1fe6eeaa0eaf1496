/**
 * The platform's token estimate: an upper bound of what a byte-level BPE tokenizer (the tokenizers
 * of the models we serve) counts for a text, so an admission reservation is never below what the
 * model will bill. Billing always uses the provider's own counts; this bound decides admission,
 * chunk sizes, and the local model's counts.
 *
 * Why it is a bound: BPE tokenizers split text into pre-tokens (a word with its leading space, a
 * run of digits, of punctuation, of whitespace) and never merge across them, and every token holds
 * at least one byte. So the UTF-8 byte count of a piece bounds its tokens, and the sum over pieces
 * bounds the text. Two kinds of piece get a tighter bound, so ordinary prose is not refused early:
 * a pronounceable ASCII word (vocabularies hold such words whole or in pieces of three letters or
 * more) counts a token per three letters, and a run of digits one per three digits (every 1-3 digit
 * number is a token). Everything else (CJK, emoji, base64, long runs, odd symbols) counts its bytes.
 * `test/core/tokens.test.ts` proves the bound against real BPE counts on a fixture corpus.
 */
const PIECE = / ?[A-Za-z]+| ?\p{N}+| ?[\p{L}\p{M}]+|\s+| ?[^\s\p{L}\p{M}\p{N}]+/gu;

/** Longest a span gets: long pieces are cut so chunks can end inside them. */
const MAX_SPAN_TOKENS = 16;

const utf8 = new TextEncoder();

function pieceTokens(piece: string): number {
  const body = piece.startsWith(' ') ? piece.slice(1) : piece;
  if (/^[A-Za-z]+$/.test(body) && isPronounceable(body)) return Math.ceil(body.length / 3);
  if (/^\p{Nd}+$/u.test(body)) return Math.ceil(body.length / 3) + (body === piece ? 0 : 1);
  if (/^ +$/.test(piece)) return Math.ceil(piece.length / 2);
  return utf8.encode(piece).length;
}

/** Short, with a vowel, no long consonant cluster, no letter three times in a row: shaped like a word. */
function isPronounceable(word: string): boolean {
  return word.length <= 16 && /[aeiouy]/i.test(word) && !/[^aeiouy]{4}/i.test(word) && !/([a-z])\1\1/i.test(word);
}

/** Where each piece of `text` starts and ends, and its token bound; no span weighs more than `MAX_SPAN_TOKENS`. */
export function tokenSpans(text: string): { start: number; end: number; tokens: number }[] {
  const spans: { start: number; end: number; tokens: number }[] = [];
  for (const match of text.matchAll(PIECE)) {
    const start = match.index ?? 0;
    const tokens = pieceTokens(match[0]);
    if (tokens <= MAX_SPAN_TOKENS) {
      spans.push({ start, end: start + match[0].length, tokens });
      continue;
    }
    // Cut at code points; each part is bounded by its bytes, which sum to at least the whole's bound.
    let partStart = start;
    let partTokens = 0;
    let offset = start;
    for (const char of match[0]) {
      const charTokens = utf8.encode(char).length;
      if (partTokens + charTokens > MAX_SPAN_TOKENS) {
        spans.push({ start: partStart, end: offset, tokens: partTokens });
        partStart = offset;
        partTokens = 0;
      }
      partTokens += charTokens;
      offset += char.length;
    }
    spans.push({ start: partStart, end: offset, tokens: partTokens });
  }
  return spans;
}

export function countTokens(text: string): number {
  let count = 0;
  for (const match of text.matchAll(PIECE)) count += pieceTokens(match[0]);
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

/** The input a chat model will count for these messages, at most. */
export function chatInputTokens(messages: readonly { content: string }[]): number {
  return messages.reduce((sum, message) => sum + countTokens(message.content) + TOKENS_PER_MESSAGE, TOKENS_PER_REPLY);
}
