import * as z from '../../contract/zod';
import type { ResolvedModel } from './catalog';
import { PlatformError } from './errors';
import type { ChatMessage, ResponseFormat, ToolChoice, ToolDefinition } from './ports';
import { countTokens } from './tokens';

/**
 * OpenAI's tools and response formats on chat completions: their request schemas, what they become
 * for the model port, and the checks around them (JSON Schemas that are safe to evaluate, tool turns
 * that answer the calls before them, answers valid against the requested schema).
 */

/** Deepest nesting of a JSON Schema a request may send (OpenAI's strict mode allows 10 levels). */
const MAX_SCHEMA_DEPTH = 32;

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const nameSchema = z.string().check(z.regex(NAME, 'a name is 1 to 64 of a-z A-Z 0-9 _ -'));

/**
 * A JSON Schema from a request: an object at most `MAX_SCHEMA_DEPTH` deep whose regular expressions
 * compile. They are run against answers by RE2's linear-time engine (`formatProblem`), never by
 * JavaScript's backtracking one: a tenant's pattern cannot hold a function's CPU.
 */
const jsonSchema = z.record(z.string(), z.unknown()).check(
  z.superRefine((schema, context) => {
    const problem = schemaProblem(schema) ?? referenceProblem(schema);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  }),
);

/** Most schema nodes validation may walk once `$ref`s are followed: a few `allOf`s of references double it each. */
const MAX_EXPANDED_SCHEMA_NODES = 20_000;

/**
 * Whether following the schema's local `$ref`s (`#`, `#/$defs/...`) expands it past
 * `MAX_EXPANDED_SCHEMA_NODES`; a reference back to one on its own path (recursion) is not followed
 * again. Iterative, and stops at the bound.
 */
function referenceProblem(root: unknown): string | undefined {
  type RefPath = { readonly ref: string; readonly parent?: RefPath };
  const onPath = (ref: string, path: RefPath | undefined): boolean => {
    for (let at = path; at; at = at.parent) if (at.ref === ref) return true;
    return false;
  };
  const stack: { value: unknown; path?: RefPath }[] = [{ value: root }];
  let visited = 0;
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path?: RefPath };
    if (value === null || typeof value !== 'object') continue;
    if (++visited > MAX_EXPANDED_SCHEMA_NODES) {
      return `the schema's references expand past ${MAX_EXPANDED_SCHEMA_NODES} nodes: simplify it`;
    }
    const ref = (value as Record<string, unknown>).$ref;
    if (typeof ref === 'string' && ref.startsWith('#') && !onPath(ref, path)) {
      stack.push({ value: resolvePointer(root, ref), path: { ref, parent: path } });
    }
    for (const child of Object.values(value)) stack.push({ value: child, path });
  }
  return undefined;
}

/** A local JSON pointer (`#/$defs/a`) in the schema, or nothing. */
function resolvePointer(root: unknown, ref: string): unknown {
  let at: unknown = root;
  for (const token of ref.slice(1).split('/').slice(1)) {
    const key = token.replaceAll('~1', '/').replaceAll('~0', '~');
    at =
      at !== null && typeof at === 'object' && Object.hasOwn(at, key)
        ? (at as Record<string, unknown>)[key]
        : undefined;
  }
  return at;
}

const JSON_TYPES: readonly unknown[] = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];

const isJsonObject = (value: unknown) => value !== null && typeof value === 'object' && !Array.isArray(value);

function schemaProblem(root: unknown): string | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: unknown; depth: number };
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_SCHEMA_DEPTH) return `the schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`;
    const { type } = value as Record<string, unknown>;
    // An object under `type` is a property of that name; anything else must name JSON types.
    if (type !== undefined && !isJsonObject(type) && ![type].flat().every((name) => JSON_TYPES.includes(name))) {
      return `type ${JSON.stringify(type).slice(0, 64)} is not one of ${JSON_TYPES.join(', ')}, or a list of them`;
    }
    for (const pattern of patternsOf(value as Record<string, unknown>)) {
      try {
        new RegExp(pattern, 'u');
      } catch {
        return `pattern '${pattern.slice(0, 64)}' is not a regular expression`;
      }
    }
    for (const child of Object.values(value)) stack.push({ value: child, depth: depth + 1 });
  }
  return undefined;
}

/** The regular expressions of one schema node: its `pattern` and its `patternProperties` names. */
function patternsOf(node: Record<string, unknown>): string[] {
  const { pattern, patternProperties } = node;
  return [
    ...(typeof pattern === 'string' ? [pattern] : []),
    ...(patternProperties && typeof patternProperties === 'object' ? Object.keys(patternProperties) : []),
  ];
}

export const toolSchema = z.object({
  type: z.literal('function', { message: 'only function tools are served' }),
  function: z.object({
    name: nameSchema,
    description: z.optional(z.string().check(z.maxLength(10_000))),
    parameters: z.optional(jsonSchema),
    strict: z.nullish(z.boolean()),
  }),
});

export const toolChoiceSchema = z.union([
  z.enum(['auto', 'none', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: nameSchema }) }),
]);

export const responseFormatSchema = z.union([
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: nameSchema,
      description: z.optional(z.string().check(z.maxLength(10_000))),
      schema: z.optional(jsonSchema),
      strict: z.nullish(z.boolean()),
    }),
  }),
]);

/** A tool call of an assistant turn, as the caller sends it back. */
export const toolCallSchema = z.object({
  id: z.string().check(z.minLength(1), z.maxLength(256)),
  type: z.literal('function'),
  function: z.object({ name: z.string().check(z.minLength(1), z.maxLength(256)), arguments: z.string() }),
});

type ToolRequest = {
  tools?: z.infer<typeof toolSchema>[];
  tool_choice?: z.infer<typeof toolChoiceSchema>;
  parallel_tool_calls?: boolean | null;
  response_format?: z.infer<typeof responseFormatSchema> | null;
};

/** An object schema taking nothing: a function tool's parameters when it gives none. */
const NO_PARAMETERS = { type: 'object', properties: {} } as const;

/** What the model port is given of a request's tools and format; checked against the model. */
export function toolOptions(model: ResolvedModel<'chat'>, request: ToolRequest) {
  const tools: ToolDefinition[] | undefined = request.tools?.map(({ function: f }) => ({
    name: f.name,
    ...(f.description && { description: f.description }),
    parameters: f.parameters ?? NO_PARAMETERS,
    ...(typeof f.strict === 'boolean' && { strict: f.strict }),
  }));
  const choice = request.tool_choice;
  const toolChoice: ToolChoice | undefined =
    choice === undefined ? undefined : typeof choice === 'string' ? choice : { name: choice.function.name };
  if (typeof toolChoice === 'object' && !tools?.some((tool) => tool.name === toolChoice.name)) {
    throw new PlatformError('invalid_request', `tool_choice: no tool named '${toolChoice.name}' is in tools`);
  }
  if (toolChoice && !tools) throw new PlatformError('invalid_request', 'tool_choice needs tools');
  if (tools && new Set(tools.map((tool) => tool.name)).size < tools.length) {
    throw new PlatformError('invalid_request', 'tools: each tool needs a name of its own');
  }
  const format = request.response_format;
  const responseFormat: ResponseFormat | undefined =
    !format || format.type === 'text'
      ? undefined
      : format.type === 'json_object'
        ? { type: 'json_object' }
        : {
            type: 'json_schema',
            name: format.json_schema.name,
            ...(format.json_schema.description && { description: format.json_schema.description }),
            schema: format.json_schema.schema ?? { type: 'object' },
            strict: format.json_schema.strict === true,
          };
  // Bedrock models answer a format through a forced tool; the GPU endpoint's container decodes it natively.
  const native = 'bedrockModelId' in model;
  const callsTools = native ? model.toolCalls !== false : model.toolCalls === true;
  if ((tools && !callsTools) || (responseFormat && native && !callsTools)) {
    throw new PlatformError(
      'invalid_request',
      `model '${model.name}' cannot call tools: omit tools and response_format`,
    );
  }
  return {
    ...(tools && { tools }),
    ...(toolChoice && { toolChoice }),
    ...(typeof request.parallel_tool_calls === 'boolean' && { parallelToolCalls: request.parallel_tool_calls }),
    ...(responseFormat && { responseFormat }),
  };
}

/**
 * Tool turns must answer the calls before them: each `tool` message names a call of the assistant
 * turn it follows, and every call of a turn is answered before the conversation goes on.
 */
export function checkToolTurns(messages: readonly ChatMessage[]): void {
  let pending = new Set<string>();
  for (const [i, message] of messages.entries()) {
    if (message.role === 'tool') {
      if (!message.toolCallId || !pending.delete(message.toolCallId)) {
        throw new PlatformError(
          'invalid_request',
          `messages.${i}: a tool message must answer a tool call of the assistant message before it`,
        );
      }
      continue;
    }
    if (pending.size > 0) {
      throw new PlatformError(
        'invalid_request',
        `messages.${i}: an assistant message with tool_calls must be followed by a tool message for each call`,
      );
    }
    pending = new Set((message.toolCalls ?? []).map((call) => call.id));
  }
}

/** Tokens the tool definitions and the response format add to a call's input, at most (see `tokens.ts`). */
export function toolTokens(request: { tools?: readonly ToolDefinition[]; responseFormat?: ResponseFormat }): number {
  const definitions = [...(request.tools ?? []), ...(request.responseFormat ? [request.responseFormat] : [])];
  return definitions.reduce((sum, definition) => sum + countTokens(JSON.stringify(definition)), 0);
}

/**
 * Why an answer does not fit its requested format, or nothing: JSON for every format, an object for
 * `json_object`, and valid against the schema when it is strict.
 */
export async function formatProblem(format: ResponseFormat, text: string): Promise<string | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'the answer is not JSON';
  }
  if (format.type === 'json_object') {
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? undefined
      : 'the answer is not a JSON object';
  }
  if (!format.strict) return undefined;
  let errors: Awaited<ReturnType<typeof validateInLinearTime>>['errors'];
  try {
    ({ errors } = await validateInLinearTime(format.schema, value));
  } catch {
    // A schema the validator cannot follow (a reference to itself with nothing between): never valid.
    return 'the answer could not be checked against the schema';
  }
  // The innermost error names the value at fault; the outer ones only that something inside is.
  const error = errors.reduce<(typeof errors)[number] | undefined>(
    (deepest, next) => (deepest && deepest.instanceLocation.length >= next.instanceLocation.length ? deepest : next),
    undefined,
  );
  return error && `the answer does not match the schema at '${error.instanceLocation}': ${error.error}`.slice(0, 300);
}

/**
 * Validates with `@cfworker/json-schema` (loaded on the first strict schema, not at cold start),
 * its `pattern` and `patternProperties` run by RE2 (`re2js`, loaded only for schemas that have
 * them): the validator builds those with `new RegExp(source, 'u')` and only calls `test`, so the
 * constructor is RE2's for the synchronous call. A pattern RE2 cannot run (lookaround,
 * backreferences) is not checked: better than a backtracking run.
 */
async function validateInLinearTime(schema: Readonly<Record<string, unknown>>, value: unknown) {
  const { Validator } = await import('@cfworker/json-schema');
  const validator = new Validator(schema as never, '2020-12', false);
  if (!/"pattern(Properties)?"/.test(JSON.stringify(schema))) return validator.validate(value);
  const { RE2JS } = await import('re2js');
  function LinearRegExp(source: string) {
    try {
      const compiled = RE2JS.compile(source);
      return { test: (text: string) => compiled.matcher(text).find() };
    } catch {
      return { test: () => true };
    }
  }
  const native = globalThis.RegExp;
  globalThis.RegExp = LinearRegExp as unknown as RegExpConstructor;
  try {
    return validator.validate(value);
  } finally {
    globalThis.RegExp = native;
  }
}
