import { PII_ENTITIES, type PiiEntity, type PiiPolicy } from '../../contract/safety';
import type { Tier } from '../../contract/tenancy';
import type { TenantContext } from './tenant';

export { PII_ENTITIES, type PiiEntity, type PiiPolicy };

/** Nothing to find: no policy for the tenant or its tier. */
const NO_REDACTION: PiiPolicy = { entities: [], patterns: [], restore: false };

/** The caller's redaction: its tenant's own policy if it has one, else its tier's. */
export function piiPolicyFor(
  deps: { readonly piiRedaction?: Readonly<Record<Tier, PiiPolicy>> },
  tenant: Pick<TenantContext, 'tier' | 'piiRedaction'>,
): PiiPolicy {
  return tenant.piiRedaction ?? deps.piiRedaction?.[tenant.tier] ?? NO_REDACTION;
}

interface Detector {
  readonly name: string;
  readonly pattern: RegExp;
  /** A check beyond the pattern (a checksum, a range), on the matched text. */
  readonly valid?: (match: string) => boolean;
}

const digits = (text: string) => text.replace(/\D/g, '');

/** The Luhn checksum of card numbers. */
function luhn(number: string): boolean {
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let digit = Number(number[number.length - 1 - i]);
    if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
}

/** ISO 13616: the IBAN moved four characters left, letters as numbers, is 1 modulo 97. */
function ibanChecksum(iban: string): boolean {
  const compact = iban.replace(/\s/g, '').toUpperCase();
  const moved = `${compact.slice(4)}${compact.slice(0, 4)}`.replace(/[A-Z]/g, (letter) =>
    String(letter.charCodeAt(0) - 55),
  );
  let remainder = 0;
  for (const digit of moved) remainder = (remainder * 10 + Number(digit)) % 97;
  return remainder === 1;
}

/**
 * In the order they run: an earlier entity's placeholder is never matched by a later one (the card
 * number before the phone number it would also look like).
 */
const DETECTORS: Record<PiiEntity, Detector> = {
  // Tried only where a run of address characters starts (the lookbehind): linear in a long run
  // with no `@`, which every start inside it would otherwise scan to its end again (quadratic).
  email: {
    name: 'email',
    pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
  },
  // Either case: the checksum keeps look-alikes out.
  iban: {
    name: 'iban',
    // In groups of four, as printed (or none): a following word is never read as its tail.
    pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/gi,
    valid: ibanChecksum,
  },
  card: {
    name: 'card',
    pattern: /\b\d(?:[ ./-]?\d){12,18}\b/g,
    valid: (match) => luhn(digits(match)),
  },
  // US SSN, grouped or not: never 000, 666 or 9xx in the area, 00 in the group, 0000 in the serial.
  ssn: {
    name: 'ssn',
    pattern: /\b(?!000|666|9\d\d)\d{3}([- .]?)(?!00)\d{2}\1(?!0000)\d{4}\b/g,
  },
  ip: {
    name: 'ip',
    pattern:
      /\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b|\b(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?\b/g,
  },
  // International or national: 9 to 15 digits in groups, an optional +country and (area).
  phone: {
    name: 'phone',
    pattern: /(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,6}){1,4}\b/g,
    valid: (match) => {
      const count = digits(match).length;
      return count >= 9 && count <= 15 && /[ .()+-]/.test(match);
    },
  },
};

/** Invisible characters that split a value without showing: soft hyphens, zero-width ones. */
const INVISIBLE = /^[\u00AD\u180E\u200B-\u200F\u2060\uFEFF]$/u;

/** The value of a decimal digit of any script: Unicode keeps each script's 0-9 contiguous, in runs of ten. */
function digitValue(digit: string): number {
  const point = digit.codePointAt(0) ?? 0;
  let start = point;
  while (/^\p{Nd}$/u.test(String.fromCodePoint(start - 1))) start--;
  return (point - start) % 10;
}

/** A character as detectors read it: compatibility forms folded (NFKC: full-width digits, `＠`), invisible ones dropped, digits of other scripts as ASCII. */
function detectionForm(char: string): string {
  if (INVISIBLE.test(char)) return '';
  const folded = char.normalize('NFKC');
  return /^\p{Nd}$/u.test(folded) && !/^[0-9]$/.test(folded) ? String(digitValue(folded)) : folded;
}

/**
 * A text as detectors read it, and for each of its code units the index in the original it came
 * from (one more entry: the end), so a match maps back to the span of the original it covers.
 * Linear in the text.
 */
function detectionView(text: string): { text: string; from: (index: number) => number } {
  // ASCII, the common case, reads as written.
  if (!NON_ASCII.test(text)) return { text, from: (index) => index };
  const parts: string[] = [];
  const from: number[] = [];
  let index = 0;
  for (const char of text) {
    const form = char.charCodeAt(0) < 128 ? char : detectionForm(char);
    parts.push(form);
    for (let unit = 0; unit < form.length; unit++) from.push(index);
    index += char.length;
  }
  from.push(index);
  return { text: parts.join(''), from: (at) => from[at] };
}

/** Whether a span of `claimed` holds a taken character: a loop over the span, linear over a detector's matches. */
function isClaimed(claimed: Int32Array, start: number, end: number): boolean {
  for (let at = start; at < end; at++) if (claimed[at] !== 0) return true;
  return false;
}

/**
 * The text with each claimed span replaced by its placeholder, built in code units and made a
 * string at once: a string piece per span would leave 100,000s of objects for the collector.
 */
function spliced(
  text: string,
  claimed: Int32Array,
  spans: {
    readonly starts: readonly number[];
    readonly ends: readonly number[];
    readonly placeholders: readonly string[];
  },
): string {
  const { starts, ends, placeholders } = spans;
  let length = text.length;
  for (let span = 0; span < ends.length; span++) length += placeholders[span].length - (ends[span] - starts[span]);
  const units = new Uint16Array(length);
  let out = 0;
  for (let at = 0; at < text.length; at++) {
    const span = claimed[at] - 1;
    if (span < 0) {
      units[out++] = text.charCodeAt(at);
      continue;
    }
    const placeholder = placeholders[span];
    for (let i = 0; i < placeholder.length; i++) units[out++] = placeholder.charCodeAt(i);
    at = ends[span] - 1;
  }
  // UTF-16 code units as they are: lone surrogates stay as written.
  return Buffer.from(units.buffer, units.byteOffset, units.byteLength).toString('utf16le');
}

/** Any character past ASCII. */
const NON_ASCII = /[^\p{ASCII}]/u;

/** What redaction found: the texts to send, the counts per entity, and how to put the values back. */
export interface Redaction {
  readonly texts: string[];
  /** Entities replaced, by name; never the values. */
  readonly counts: Readonly<Record<string, number>>;
  /**
   * The answer with each placeholder replaced by the value it stands for, `encode`d for where it
   * stands (inside JSON text, say).
   */
  restore(text: string, encode?: (value: string) => string): string;
  /**
   * The same for an answer that comes in pieces: each piece restored, a placeholder cut between two
   * pieces held back until it is whole; `flush` gives what is held at the end.
   */
  restorer(encode?: (value: string) => string): { push(piece: string): string; flush(): string };
}

/**
 * Replaces what the policy names in every text with typed placeholders (`[EMAIL_1]`), the same
 * value with the same placeholder across the texts, so the model can still refer to it.
 */
export function redact(texts: readonly string[], policy: PiiPolicy): Redaction {
  const detectors: Detector[] = [
    ...PII_ENTITIES.filter((entity) => policy.entities.includes(entity)).map((entity) => DETECTORS[entity]),
    ...policy.patterns.map(({ name, regex }) => ({ name, pattern: new RegExp(regex, 'g') })),
  ];
  /** Placeholders by entity, then by value as detected. */
  const byValue = new Map<string, Map<string, string>>();
  const values = new Map<string, string>();
  const counts: Record<string, number> = {};
  /** One placeholder a value however it was written (`normalized`); restored as first written (`text` from `start` to `end`). */
  const placeholderOf = (name: string, normalized: string, text: string, start: number, end: number) => {
    const ofEntity = byValue.get(name) ?? new Map<string, string>();
    byValue.set(name, ofEntity);
    let placeholder = ofEntity.get(normalized);
    if (!placeholder) {
      counts[name] = (counts[name] ?? 0) + 1;
      placeholder = `[${name.toUpperCase()}_${counts[name]}]`;
      ofEntity.set(normalized, placeholder);
      values.set(placeholder, text.slice(start, end));
    }
    return placeholder;
  };
  /**
   * Finds on the text as detectors read it (`detectionView`, made once), replaces in the text as
   * written; a span an earlier detector took is not another's (the card number is no phone number).
   */
  const redactOne = (text: string) => {
    const view = detectionView(text);
    /**
     * The spans taken: `starts`, `ends` and `placeholders` hold each one's; `claimed`
     * marks each character taken, with the span's number + 1 where it starts and -1 after, so the
     * spans are written out in one pass over the text whatever order the detectors found them in.
     * Flat arrays, no object per span: a long text may hold 100,000s.
     */
    const starts: number[] = [];
    const ends: number[] = [];
    const placeholders: string[] = [];
    const claimed = new Int32Array(text.length);
    for (const detector of detectors) {
      for (const match of view.text.matchAll(detector.pattern)) {
        if (detector.valid && !detector.valid(match[0])) continue;
        const start = view.from(match.index);
        const end = view.from(match.index + match[0].length);
        if (isClaimed(claimed, start, end)) continue;
        claimed.fill(-1, start, end);
        starts.push(start);
        ends.push(end);
        claimed[start] = placeholders.push(placeholderOf(detector.name, match[0], text, start, end));
      }
    }
    if (ends.length === 0) return text;
    return spliced(text, claimed, { starts, ends, placeholders });
  };
  const redacted = texts.map(redactOne);
  const restore = (text: string, encode = (value: string) => value) =>
    text.replace(/\[[A-Z][A-Z0-9_]*_\d+\]/g, (placeholder) => {
      const value = values.get(placeholder);
      return value === undefined ? placeholder : encode(value);
    });
  return {
    texts: redacted,
    counts,
    restore,
    restorer: (encode) => {
      let held = '';
      return {
        push: (piece) => {
          const text = held + piece;
          // A `[` with no `]` after it may be the start of a placeholder: keep it for the next piece.
          const open = text.search(/\[[A-Z0-9_]*$/);
          held = open < 0 ? '' : text.slice(open);
          return restore(open < 0 ? text : text.slice(0, open), encode);
        },
        flush: () => {
          const rest = held;
          held = '';
          return restore(rest, encode);
        },
      };
    },
  };
}
