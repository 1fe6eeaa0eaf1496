/**
 * A prompt template as stored and as the operator sends it: apart from the rendering and the
 * admin logic, so the registry adapter (in every bundle, the authorizer's too) carries only this.
 */
import * as z from 'zod';

/** A template's name: in URLs and in `prompt.id`. */
export const PROMPT_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const templateMessageSchema = z
  .object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().min(1).max(32_000) })
  .strict();

/** `PUT /admin/tenants/{id}/prompts/{name}`: the template, its few-shot examples, and defaults for the call. */
export const promptTemplateRequestSchema = z
  .object({
    messages: z.array(templateMessageSchema).min(1).max(50),
    few_shot: z.array(templateMessageSchema).max(50).optional(),
    model: z.string().min(1).max(200).optional(),
    max_tokens: z.number().int().positive().max(1_000_000).optional(),
  })
  .strict();
export type PromptTemplateRequest = z.infer<typeof promptTemplateRequestSchema>;

/** A stored template: the request as given, its name, and a version that every change raises. */
export const promptRecordSchema = promptTemplateRequestSchema.extend({
  name: z.string().regex(PROMPT_NAME_PATTERN),
  version: z.number().int().positive(),
  updated_at: z.string(),
});
export type PromptRecord = z.infer<typeof promptRecordSchema>;
