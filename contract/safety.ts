import * as z from 'zod';

/** What the platform can find and replace before text reaches a shared model. */
export const PII_ENTITIES = ['email', 'iban', 'card', 'ssn', 'ip', 'phone'] as const;
export type PiiEntity = (typeof PII_ENTITIES)[number];

/** A tier's redaction: which entities, operator patterns, and whether answers get the values back. */
export const piiPolicySchema = z
  .object({
    entities: z.array(z.enum(PII_ENTITIES)),
    /** Operator patterns (JavaScript regular expressions), each replaced as `[<NAME>_<n>]`. */
    patterns: z
      .array(z.object({ name: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/), regex: z.string().min(1) }).strict())
      .default([]),
    /** Put the original values back into the model's answer (the caller sent them; the model never saw them). */
    restore: z.boolean().default(false),
  })
  .strict();
export type PiiPolicy = z.infer<typeof piiPolicySchema>;

/** Bedrock's sensitive-information types the guardrails may block (a subset of what Bedrock knows). */
export const GUARDRAIL_PII_TYPES = ['US_SOCIAL_SECURITY_NUMBER', 'CREDIT_DEBIT_CARD_NUMBER', 'EMAIL', 'PHONE'] as const;

/** A tier's guardrail, deployed as a Bedrock guardrail (and enforced by the local Bedrock in local mode). */
export const guardrailPolicySchema = z
  .object({
    /** Bedrock's prompt-attack filter on the input. */
    promptAttack: z.enum(['NONE', 'LOW', 'MEDIUM', 'HIGH']),
    /** Topics the tier's models refuse, with examples of what falls under each. */
    deniedTopics: z
      .array(
        z
          .object({
            name: z.string().regex(/^[A-Za-z0-9 _-]{1,100}$/),
            definition: z.string().min(1).max(200),
            examples: z.array(z.string().min(1).max(100)).max(5),
          })
          .strict(),
      )
      .max(30),
    /** Sensitive information the guardrail blocks outright (PII redaction replaces it before this). */
    blockedPii: z.array(z.enum(GUARDRAIL_PII_TYPES)),
    /** What the caller is told when the guardrail intervenes. */
    blockedMessage: z.string().min(1).max(500),
  })
  .strict();
export type GuardrailPolicy = z.infer<typeof guardrailPolicySchema>;
