import * as z from '../../contract/zod';
import { PlatformError } from './errors';
import { assertLegal, readTenant, writeIfCurrent } from './lifecycle';
import type { ChatMessage, TenantRegistry } from './ports';
import { PROMPT_NAME_PATTERN, type PromptRecord, type PromptTemplateRequest } from './prompt-record';

/** `{{name}}` in a template's contents; a variable's name is an identifier. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/g;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** `prompt` on a chat completion: which template, and the values of its variables. */
export const promptUseSchema = z.strictObject({
  id: z.string().check(z.regex(PROMPT_NAME_PATTERN, 'prompt.id is not a prompt name')),
  variables: z.optional(
    z.record(
      z.string().check(z.regex(VARIABLE_NAME, 'variable names are identifiers')),
      z.union([z.string().check(z.maxLength(32_000)), z.number(), z.boolean()]),
    ),
  ),
});
export type PromptUse = z.infer<typeof promptUseSchema>;

/** The variables a template's contents name, in order of first use. */
export function promptVariables(record: Pick<PromptRecord, 'messages' | 'few_shot'>): string[] {
  const contents = [...record.messages, ...(record.few_shot ?? [])].map((message) => message.content);
  return [...new Set(contents.flatMap((content) => [...content.matchAll(PLACEHOLDER)].map((match) => match[1])))];
}

/**
 * The template's messages with its variables filled in: its system messages, then its few-shot
 * examples, then its other messages. Values are inserted as they are, in one pass: a value that
 * looks like a placeholder stays text. A variable missing or unknown to the template is a 400
 * naming it.
 */
export function renderPrompt(record: PromptRecord, variables: PromptUse['variables'] = {}): ChatMessage[] {
  const needed = promptVariables(record);
  const missing = needed.filter((name) => !Object.hasOwn(variables, name));
  if (missing.length > 0) {
    throw new PlatformError('invalid_request', `prompt '${record.name}' needs variables: ${missing.join(', ')}`);
  }
  const unknown = Object.keys(variables).filter((name) => !needed.includes(name));
  if (unknown.length > 0) {
    throw new PlatformError('invalid_request', `prompt '${record.name}' has no variables: ${unknown.join(', ')}`);
  }
  const fill = (content: string) => content.replace(PLACEHOLDER, (_, name: string) => String(variables[name]));
  const system = record.messages.filter((message) => message.role === 'system');
  const others = record.messages.filter((message) => message.role !== 'system');
  return [...system, ...(record.few_shot ?? []), ...others].map((message) => ({
    role: message.role,
    content: fill(message.content),
  }));
}

/**
 * The messages a chat sends with a template: the rendered template, then the caller's own. A
 * template that sets the system message keeps it: a caller's system message is refused.
 */
export function promptedMessages(record: PromptRecord, use: PromptUse, asked: readonly ChatMessage[]): ChatMessage[] {
  const rendered = renderPrompt(record, use.variables);
  if (rendered.some((message) => message.role === 'system') && asked.some((message) => message.role === 'system')) {
    throw new PlatformError(
      'invalid_request',
      `prompt '${record.name}' sets the system message: send only user and assistant messages`,
    );
  }
  return [...rendered, ...asked];
}

/** The template as the API shows it, with the variables it takes. */
export function promptView(record: PromptRecord) {
  const { name, ...template } = record;
  return { object: 'prompt', id: name, ...template, variables: promptVariables(record) };
}

/** Where an operator's template changes go: the registry, checked against the tenant's record. */
export interface PromptAdminDeps {
  readonly registry: TenantRegistry;
  readonly now: () => number;
  /** Set on a silo plane: the one tenant it manages. */
  readonly siloTenantId?: string;
}

/** The tenant, if its templates may change here: managed by this plane, and not leaving. */
async function changeableTenant(deps: PromptAdminDeps, tenantId: string) {
  const tenant = await readTenant(deps.registry, tenantId);
  assertLegal(tenant, 'change_prompts', deps.siloTenantId);
  return tenant;
}

function assertPromptName(name: string): void {
  if (!PROMPT_NAME_PATTERN.test(name)) {
    throw new PlatformError(
      'invalid_request',
      'a prompt name is 1 to 64 of a-z, 0-9, _ . - starting with a letter or digit',
    );
  }
}

/** Creates or replaces a template; every change raises its version (response caches key on it). */
export async function putPrompt(
  deps: PromptAdminDeps,
  tenantId: string,
  name: string,
  request: PromptTemplateRequest,
): Promise<PromptRecord> {
  const tenant = await changeableTenant(deps, tenantId);
  assertPromptName(name);
  const previous = await deps.registry.getPrompt(tenantId, name);
  const record: PromptRecord = {
    ...request,
    name,
    version: (previous?.version ?? 0) + 1,
    updated_at: new Date(deps.now()).toISOString(),
  };
  await writeIfCurrent(deps.registry, tenant, () =>
    deps.registry.putPrompt(tenantId, record, { tenant, previous: previous ?? null }),
  );
  return record;
}

/** One template of the tenant; 404 when it has none of that name. */
export async function getPrompt(deps: PromptAdminDeps, tenantId: string, name: string): Promise<PromptRecord> {
  await readTenant(deps.registry, tenantId);
  const record = PROMPT_NAME_PATTERN.test(name) ? await deps.registry.getPrompt(tenantId, name) : undefined;
  if (!record) throw new PlatformError('not_found', `no prompt '${name}'`);
  return record;
}

/** Deletes a template; 404 when there is none of that name. */
export async function deletePrompt(deps: PromptAdminDeps, tenantId: string, name: string): Promise<void> {
  const tenant = await changeableTenant(deps, tenantId);
  const previous = await getPrompt(deps, tenantId, name);
  await writeIfCurrent(deps.registry, tenant, () => deps.registry.deletePrompt(tenantId, name, { tenant, previous }));
}

/** Offboarding: every template of the tenant; answers how many. */
export async function deleteAllPrompts(registry: TenantRegistry, tenantId: string): Promise<number> {
  const records = await registry.listPrompts(tenantId);
  for (const record of records) await registry.deletePrompt(tenantId, record.name);
  return records.length;
}

/** Every template of the tenant, as it is read for the list routes. */
export async function listPrompts(deps: PromptAdminDeps, tenantId: string): Promise<PromptRecord[]> {
  return deps.registry.listPrompts((await readTenant(deps.registry, tenantId)).tenantId);
}
