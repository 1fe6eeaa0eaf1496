import * as z from './zod';

/** What the platform can find and replace before text reaches a shared model. */
export const PII_ENTITIES = ['email', 'iban', 'card', 'ssn', 'ip', 'phone'] as const;
export type PiiEntity = (typeof PII_ENTITIES)[number];

/** A tier's redaction: which entities, operator patterns, and whether answers get the values back. */
export const piiPolicySchema = z.strictObject({
  entities: z.array(z.enum(PII_ENTITIES)),
  /** Operator patterns (JavaScript regular expressions), each replaced as `[<NAME>_<n>]`. */
  patterns: z._default(
    z.array(
      z.strictObject({
        name: z.string().check(z.regex(/^[a-z][a-z0-9_]{0,31}$/)),
        regex: z.string().check(z.minLength(1)),
      }),
    ),
    [],
  ),
  /** Put the original values back into the model's answer (the caller sent them; the model never saw them). */
  restore: z._default(z.boolean(), false),
});
export type PiiPolicy = z.infer<typeof piiPolicySchema>;

/** Bedrock's sensitive-information types the guardrails may block (a subset of what Bedrock knows). */
export const GUARDRAIL_PII_TYPES = ['US_SOCIAL_SECURITY_NUMBER', 'CREDIT_DEBIT_CARD_NUMBER', 'EMAIL', 'PHONE'] as const;

/** A tier's guardrail, deployed as a Bedrock guardrail (and enforced by the local Bedrock in local mode). */
export const guardrailPolicySchema = z.strictObject({
  /** Bedrock's prompt-attack filter on the input. */
  promptAttack: z.enum(['NONE', 'LOW', 'MEDIUM', 'HIGH']),
  /** Topics the tier's models refuse, with examples of what falls under each. */
  deniedTopics: z
    .array(
      z.strictObject({
        name: z.string().check(z.regex(/^[A-Za-z0-9 _-]{1,100}$/)),
        definition: z.string().check(z.minLength(1), z.maxLength(200)),
        examples: z.array(z.string().check(z.minLength(1), z.maxLength(100))).check(z.maxLength(5)),
      }),
    )
    .check(z.maxLength(30)),
  /** Sensitive information the guardrail blocks outright (PII redaction replaces it before this). */
  blockedPii: z.array(z.enum(GUARDRAIL_PII_TYPES)),
  /** What the caller is told when the guardrail intervenes. */
  blockedMessage: z.string().check(z.minLength(1), z.maxLength(500)),
});
export type GuardrailPolicy = z.infer<typeof guardrailPolicySchema>;
