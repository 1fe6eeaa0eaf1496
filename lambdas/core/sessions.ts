import { createHash } from 'node:crypto';
import { PlatformError } from './errors';
import { openAiMessage } from './openai-messages';
import type { ChatMessage, SessionStore, StoredSession } from './ports';
import type { TenantContext } from './tenant';
import { countTokens } from './tokens';

/** A session id a caller chooses: in URLs and in `session_id`. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** How much a session keeps: the newest turns within these bounds, for this long after its last turn. */
export const SESSION_BOUNDS = { maxMessages: 40, maxTokens: 8_000, ttlSeconds: 24 * 3600 } as const;

/**
 * The history with a new turn after it, the oldest messages dropped until it fits the bounds, and
 * until it starts with a user's message: never a tool result without the call it answers.
 */
export function withTurn(history: readonly ChatMessage[], turn: readonly ChatMessage[]): ChatMessage[] {
  const messages = [...history, ...turn];
  const tokens = (list: readonly ChatMessage[]) =>
    list.reduce(
      (sum, m) => sum + countTokens(m.content) + (m.toolCalls ? countTokens(JSON.stringify(m.toolCalls)) : 0),
      0,
    );
  // The newest turn always stays, even alone over the bounds: it is what was just said.
  while (
    messages.length > turn.length &&
    (messages.length > SESSION_BOUNDS.maxMessages ||
      tokens(messages) > SESSION_BOUNDS.maxTokens ||
      messages[0].role !== 'user')
  ) {
    messages.shift();
  }
  return messages;
}

/**
 * Where a session is kept: under its id for a tenant whose sessions are shared, under the caller's
 * principal too where the tenant keeps them apart, so one user never continues another's.
 */
export function scopedSessionId(tenant: TenantContext, sessionId: string): string {
  if (tenant.sessionScope !== 'principal') return sessionId;
  // A principal id is the caller's (a JWT `sub`): past a bound it is hashed, so the key stays within DynamoDB's.
  const { id } = tenant.principal;
  const long = Buffer.byteLength(id) > MAX_KEYED_PRINCIPAL_BYTES;
  const principal = long ? createHash('sha256').update(id).digest('base64url') : id;
  return `${tenant.principal.type}:${principal}/${sessionId}`;
}

/** Principal ids up to this long are kept as they are in session keys (a DynamoDB sort key holds 1,024 bytes). */
const MAX_KEYED_PRINCIPAL_BYTES = 256;

/** Reads the caller's session, or none; another tenant's id is simply not found. */
export async function sessionHistory(
  deps: { sessions: SessionStore; now: () => number },
  tenant: TenantContext,
  sessionId: string,
): Promise<readonly ChatMessage[]> {
  return (await deps.sessions.get(tenant, scopedSessionId(tenant, sessionId), deps.now()))?.messages ?? [];
}

/**
 * Adds a turn (what the caller said, what it was answered) to its session. A turn stored by a
 * concurrent call meanwhile is kept: the write is retried on the newer history.
 */
export async function recordTurn(
  deps: { sessions: SessionStore; now: () => number },
  tenant: TenantContext,
  sessionId: string,
  turn: readonly ChatMessage[],
): Promise<void> {
  const id = scopedSessionId(tenant, sessionId);
  for (let attempt = 0; attempt < 5; attempt++) {
    const nowMs = deps.now();
    const current = await deps.sessions.get(tenant, id, nowMs);
    const next: StoredSession = {
      id,
      messages: withTurn(current?.messages ?? [], turn),
      version: (current?.version ?? 0) + 1,
      updatedAt: new Date(nowMs).toISOString(),
      expiresAt: Math.floor(nowMs / 1000) + SESSION_BOUNDS.ttlSeconds,
    };
    if (await deps.sessions.put(tenant, next, current?.version, nowMs)) return;
  }
  throw new PlatformError('conflict', `session '${sessionId}' is changing too fast: retry`);
}

/** The API's view of a session, under the id its caller gave it. */
export function sessionView(session: StoredSession, sessionId: string) {
  return {
    object: 'session',
    id: sessionId,
    // In OpenAI's message shapes, as the caller sent them.
    messages: session.messages.map(openAiMessage),
    updated_at: session.updatedAt,
    expires_at: new Date(session.expiresAt * 1000).toISOString(),
  };
}
