/**
 * A prompt template as stored and as the operator sends it: apart from the rendering and the
 * admin logic, so the registry adapter (in every bundle, the authorizer's too) carries only this.
 */
import * as z from '../../contract/zod';

/** A template's name: in URLs and in `prompt.id`. */
export const PROMPT_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const templateMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().check(z.minLength(1), z.maxLength(32_000)),
});

/** `PUT /admin/tenants/{id}/prompts/{name}`: the template, its few-shot examples, and defaults for the call. */
export const promptTemplateRequestSchema = z.strictObject({
  messages: z.array(templateMessageSchema).check(z.minLength(1), z.maxLength(50)),
  few_shot: z.optional(z.array(templateMessageSchema).check(z.maxLength(50))),
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  max_tokens: z.optional(z.number().check(z.int(), z.positive(), z.lte(1_000_000))),
});
export type PromptTemplateRequest = z.infer<typeof promptTemplateRequestSchema>;

/** A stored template: the request as given, its name, and a version that every change raises. */
export const promptRecordSchema = z.extend(promptTemplateRequestSchema, {
  name: z.string().check(z.regex(PROMPT_NAME_PATTERN)),
  version: z.number().check(z.int(), z.positive()),
  updated_at: z.string(),
});
export type PromptRecord = z.infer<typeof promptRecordSchema>;
