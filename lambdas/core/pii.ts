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
  iban: {
    name: 'iban',
    pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g,
    valid: ibanChecksum,
  },
  card: {
    name: 'card',
    pattern: /\b\d(?:[ -]?\d){12,18}\b/g,
    valid: (match) => luhn(digits(match)),
  },
  // US SSN: never 000, 666 or 9xx in the area, 00 in the group, 0000 in the serial.
  ssn: { name: 'ssn', pattern: /\b(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}\b/g },
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
  const byValue = new Map<string, string>();
  const values = new Map<string, string>();
  const counts: Record<string, number> = {};
  const placeholderOf = (name: string, value: string) => {
    const key = `${name}\u0000${value}`;
    let placeholder = byValue.get(key);
    if (!placeholder) {
      counts[name] = (counts[name] ?? 0) + 1;
      placeholder = `[${name.toUpperCase()}_${counts[name]}]`;
      byValue.set(key, placeholder);
      values.set(placeholder, value);
    }
    return placeholder;
  };
  const redacted = texts.map((text) =>
    detectors.reduce(
      (current, detector) =>
        current.replace(detector.pattern, (match) =>
          detector.valid && !detector.valid(match) ? match : placeholderOf(detector.name, match),
        ),
      text,
    ),
  );
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
