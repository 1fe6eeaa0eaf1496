import type { GuardrailPolicy } from '../contract/safety';
import { type PiiEntity, redact } from '../lambdas/core/pii';

/** Bedrock's sensitive-information types, as the local subset finds them. */
const PII_OF: Record<GuardrailPolicy['blockedPii'][number], PiiEntity> = {
  US_SOCIAL_SECURITY_NUMBER: 'ssn',
  CREDIT_DEBIT_CARD_NUMBER: 'card',
  EMAIL: 'email',
  PHONE: 'phone',
};

/** What prompt attacks look like to the local filter: the common phrasings, not a classifier. */
const PROMPT_ATTACKS = [
  /\b(ignore|disregard|forget)\b.{0,20}\b(previous|prior|above|earlier|all)\b.{0,20}\b(instructions|rules|prompts?)\b/i,
  /\byou are now\b.{0,40}\b(unrestricted|jailbroken|dan|free of)\b/i,
  /\b(reveal|print|show)\b.{0,20}\b(system prompt|your instructions|hidden instructions)\b/i,
  /\bdo anything now\b/i,
];

/** A guardrail assessment in Bedrock's shape: what fired, each `BLOCKED`. */
export interface LocalAssessment {
  topicPolicy?: { topics: { name: string; type: 'DENY'; action: 'BLOCKED' }[] };
  contentPolicy?: { filters: { type: 'PROMPT_ATTACK'; confidence: 'HIGH'; action: 'BLOCKED' }[] };
  sensitiveInformationPolicy?: { piiEntities: { type: string; match: string; action: 'BLOCKED' }[] };
}

/**
 * The deterministic subset of a Bedrock guardrail the local Bedrock enforces: prompt-attack
 * phrasings on the input, a denied topic when one of its examples (or its name) appears, and the
 * blocked sensitive-information types by the platform's own detectors. Undefined: nothing fired.
 */
export function assessLocally(
  policy: GuardrailPolicy,
  source: 'INPUT' | 'OUTPUT',
  texts: readonly string[],
): LocalAssessment | undefined {
  const text = texts.join('\n');
  const lower = text.toLowerCase().replace(/\s+/g, ' ');
  const assessment: LocalAssessment = {};
  if (source === 'INPUT' && policy.promptAttack !== 'NONE' && PROMPT_ATTACKS.some((attack) => attack.test(text))) {
    assessment.contentPolicy = { filters: [{ type: 'PROMPT_ATTACK', confidence: 'HIGH', action: 'BLOCKED' }] };
  }
  const topics = policy.deniedTopics.filter((topic) =>
    [topic.name, ...topic.examples].some((phrase) => lower.includes(phrase.toLowerCase())),
  );
  if (topics.length > 0) {
    assessment.topicPolicy = { topics: topics.map((topic) => ({ name: topic.name, type: 'DENY', action: 'BLOCKED' })) };
  }
  const counts = redact(texts, {
    entities: policy.blockedPii.map((type) => PII_OF[type]),
    patterns: [],
    restore: false,
  }).counts;
  const found = policy.blockedPii.filter((type) => (counts[PII_OF[type]] ?? 0) > 0);
  if (found.length > 0) {
    assessment.sensitiveInformationPolicy = {
      piiEntities: found.map((type) => ({ type, match: '', action: 'BLOCKED' })),
    };
  }
  return Object.keys(assessment).length > 0 ? assessment : undefined;
}
