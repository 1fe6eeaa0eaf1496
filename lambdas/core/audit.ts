/** Who did what, when, and what it cost: never prompt text unless the tenant opted in. */
export interface AuditEntry {
  readonly requestId: string;
  /** ISO-8601 time the request was answered. */
  readonly at: string;
  readonly principal: { readonly type: 'user' | 'api_key'; readonly id: string };
  /** `METHOD /resource`, e.g. `POST /v1/chat/completions`. */
  readonly route: string;
  readonly status: number;
  readonly errorCode?: string;
  readonly model?: string;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly prompt?: string;
  /** What PII redaction replaced before the model saw the text, counted per entity; never the values. */
  readonly redacted?: Readonly<Record<string, number>>;
  /** Whether a cacheable answer came from the tenant's cache. */
  readonly cache?: 'hit' | 'miss';
  /** The tools the answer called, by name (never their arguments). */
  readonly tools?: readonly string[];
  /** A model call's attempts in order, `<target>=<outcome>` (`nova-lite=throttled`, `nova-micro=ok`): its route's fallbacks and retries. */
  readonly attempts?: readonly string[];
  /** The request's `user` and `metadata`, as the caller gave them. */
  readonly user?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** The batch a request submitted, and how many lines it holds. */
  readonly batch?: { readonly id: string; readonly lines: number };
}

/** What a handler adds to the audit record of its request. */
export type AuditDetail = {
  -readonly [K in
    | 'model'
    | 'inputTokens'
    | 'outputTokens'
    | 'prompt'
    | 'redacted'
    | 'cache'
    | 'tools'
    | 'attempts'
    | 'user'
    | 'metadata'
    | 'batch']?: AuditEntry[K];
};

/** The API's view of an audit record. */
export function auditView(entry: AuditEntry) {
  return {
    object: 'audit_record',
    request_id: entry.requestId,
    at: entry.at,
    principal: entry.principal,
    route: entry.route,
    status: entry.status,
    ...(entry.errorCode && { error_code: entry.errorCode }),
    ...(entry.model && { model: entry.model }),
    ...(entry.inputTokens !== undefined && { input_tokens: entry.inputTokens, output_tokens: entry.outputTokens }),
    ...(entry.prompt !== undefined && { prompt: entry.prompt }),
    ...(entry.redacted && { redacted: entry.redacted }),
    ...(entry.cache && { cache: entry.cache }),
    ...(entry.tools && { tools: entry.tools }),
    ...(entry.attempts && { attempts: entry.attempts }),
    ...(entry.user !== undefined && { user: entry.user }),
    ...(entry.metadata && { metadata: entry.metadata }),
    ...(entry.batch && { batch: entry.batch }),
  };
}

/** Audit keeps at most this much prompt text, for tenants that opted in. */
const MAX_AUDITED_PROMPT_CHARS = 4000;
/** Fields taken from the request (a model name, say) are kept this long at most. */
const MAX_AUDITED_FIELD_CHARS = 128;

/**
 * The entry as it is stored: fields a caller controls are cut short, so no request, however odd,
 * can make its own audit record too large to write (DynamoDB items stop at 400 KB).
 */
export function boundedAuditEntry(entry: AuditEntry): AuditEntry {
  return {
    ...entry,
    principal: { ...entry.principal, id: entry.principal.id.slice(0, MAX_AUDITED_FIELD_CHARS) },
    route: entry.route.slice(0, MAX_AUDITED_FIELD_CHARS),
    ...(entry.model !== undefined && { model: entry.model.slice(0, MAX_AUDITED_FIELD_CHARS) }),
    ...(entry.prompt !== undefined && { prompt: entry.prompt.slice(0, MAX_AUDITED_PROMPT_CHARS) }),
    ...(entry.tools && { tools: entry.tools.slice(0, 128).map((name) => name.slice(0, MAX_AUDITED_FIELD_CHARS)) }),
    ...(entry.user !== undefined && { user: entry.user.slice(0, MAX_AUDITED_FIELD_CHARS) }),
  };
}

export function promptForAudit(messages: readonly { role: string; content: string }[]): string {
  return messages
    .map((message) => `${message.role}: ${message.content}`)
    .join('\n')
    .slice(0, MAX_AUDITED_PROMPT_CHARS);
}
