import { PlatformError } from '../core/errors';
import { SESSION_ID_PATTERN, scopedSessionId, sessionView } from '../core/sessions';
import { lambdaHandler, type PlatformDeps, sessions, tenantRoutePorts } from '../runtime';
import { json, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type SessionsDeps = Pick<PlatformDeps, 'settings' | 'audit' | 'now' | 'metrics' | 'sessions'>;

/** `GET /v1/sessions/{id}` (the conversation kept for `session_id`) and `DELETE` (wipe it): the caller's own only. */
export function create(deps: SessionsDeps) {
  return lambdaFunction(
    tenantApi(deps).handler(async (event, { tenant }) => {
      const id = event.pathParameters?.id ?? '';
      // Unknown, malformed, expired and other tenants' ids all answer the same 404.
      const notFound = () => new PlatformError('not_found', `no session '${id.slice(0, 128)}'`);
      if (!SESSION_ID_PATTERN.test(id)) throw notFound();
      if (event.httpMethod === 'DELETE') {
        if (!(await deps.sessions.delete(tenant, scopedSessionId(tenant, id), deps.now()))) throw notFound();
        return json(200, { object: 'session', id, deleted: true });
      }
      const session = await deps.sessions.get(tenant, scopedSessionId(tenant, id), deps.now());
      if (!session) throw notFound();
      return json(200, sessionView(session, id));
    }),
  );
}

export const handler = lambdaHandler((wiring) => create({ ...tenantRoutePorts(wiring), sessions: sessions(wiring) }));
