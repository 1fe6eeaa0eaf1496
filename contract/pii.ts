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
