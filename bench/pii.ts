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
}
