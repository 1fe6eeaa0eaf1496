import { PII_ENTITIES, type PiiEntity, redact } from '../lambdas/core/pii';
import corpus from '../test/fixtures/pii-corpus.json';
import { printTable } from './chat';

/** Examples per entity: texts that hold one (positive) and texts that look close but do not (negative). */
export type PiiCorpus = Record<PiiEntity, { positive: string[]; negative: string[] }>;

/**
 * Runs every example through redaction with every entity on, as a tier would, and counts per
 * entity: a positive found as that entity, a negative found as it (a false alarm), a positive missed.
 */
export function evaluatePii(examples: PiiCorpus = corpus as PiiCorpus) {
  const policy = { entities: [...PII_ENTITIES], patterns: [], restore: false };
  return PII_ENTITIES.map((entity) => {
    const found = (text: string) => (redact([text], policy).counts[entity] ?? 0) > 0;
    const truePositives = examples[entity].positive.filter(found).length;
    const falsePositives = examples[entity].negative.filter(found);
    const missed = examples[entity].positive.filter((text) => !found(text));
    const precision = truePositives / Math.max(1, truePositives + falsePositives.length);
    const recall = truePositives / Math.max(1, examples[entity].positive.length);
    return { entity, precision, recall, falsePositives, missed };
  });
}

/** `npm run bench -- pii`: precision and recall of the redaction per entity on the fixture corpus. */
export async function benchPii(): Promise<void> {
  const results = evaluatePii();
  printTable(
    ['entity', 'precision', 'recall', 'false alarms', 'missed'],
    results.map((r) => [
      r.entity,
      r.precision.toFixed(2),
      r.recall.toFixed(2),
      r.falsePositives.join(' / ') || '-',
      r.missed.join(' / ') || '-',
    ]),
  );
  console.log('\nOn test/fixtures/pii-corpus.json, every entity on (as a tier would set them).');

  // Time per KB of adversarial input, at 10 KB and at 1 MB: linear detectors keep the ratio near 1.
  const adversarial: Record<string, (bytes: number) => string> = {
    'address characters, no @': (bytes) => 'a'.repeat(bytes),
    'dotted domain after @': (bytes) => `a@${'b.'.repeat(bytes / 2)}`,
    'digit groups': (bytes) => '1 '.repeat(bytes / 2),
    'IBAN-like': (bytes) => 'DE12'.repeat(bytes / 4),
    'full-width digit groups': (bytes) => '\uff11\uff12 '.repeat(bytes / 9),
    'many short addresses': (bytes) => 'a@b.cc '.repeat(bytes / 7),
  };
  const policy = { entities: [...PII_ENTITIES], patterns: [], restore: false };
  /**
   * The median of nine timings (after a warm-up), each of about 1 MB of input: `text` redacted
   * `repeat` times, so the small input is timed over as many bytes, and collected after as much garbage, as the large.
   */
  const microsPerKb = (text: string, repeat: number) => {
    redact([text], policy);
    const timings = Array.from({ length: 9 }, () => {
      const started = performance.now();
      for (let i = 0; i < repeat; i++) redact([text], policy);
      return ((performance.now() - started) * 1000) / ((repeat * text.length) / 1024);
    }).sort((a, b) => a - b);
    return timings[4];
  };
  const rows = Object.entries(adversarial).map(([name, make]) => {
    const small = microsPerKb(make(10_240), 100);
    const large = microsPerKb(make(1_048_576), 1);
    return [name, small.toFixed(1), large.toFixed(1), (large / small).toFixed(2)];
  });
  console.log('');
  printTable(['adversarial input', 'µs/KB at 10 KB', 'µs/KB at 1 MB', 'ratio'], rows);
}
