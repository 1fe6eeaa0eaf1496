import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TENANT_SESSION_TAG } from '../contract/iam';
import {
  localServer,
  presignatureMatches,
  presignedScope,
  readBody,
  remember,
  signatureMatches,
  sigV4Scope,
} from './aws-wire';

/** What the local STS remembers of each session it issued. */
export interface IssuedSession {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly roleSessionName: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly expiresAtMs: number;
}

export interface LocalSts {
  readonly endpoint: string;
  /** Every AssumeRole request, as form fields: tests assert the exact request. */
  readonly requests: Record<string, string>[];
  sessionOf(accessKeyId: string): IssuedSession | undefined;
  /** The session it issued that signed this request (body included), while the session is current. */
  signedBy(request: IncomingMessage, body: Buffer): Promise<IssuedSession | undefined>;
  /** The session it issued that presigned this request (the signature in its URL's query), while the session is current. */
  presignedBy(request: IncomingMessage): Promise<IssuedSession | undefined>;
  close(): Promise<void>;
}

const MAX_SESSIONS = 10_000;

/**
 * The STS `AssumeRole` subset the platform uses (form-encoded query protocol, XML answer), for one
 * role, requiring exactly the session tags its trust policy requires, a caller signed with the
 * platform's own key, and a tenant the registry holds. It remembers each issued key's tags so the
 * local data fronts can check which tenant signed a request.
 */
export async function startLocalSts(options: {
  roleArn: string;
  requiredTags: readonly string[];
  /** The platform's own roles' key: the only one that may assume the role. */
  platformCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Whether the registry holds a tenant that may still act (not offboarded): the only ones given sessions. */
  tenantKnown: (tenantId: string) => Promise<boolean>;
  now?: () => number;
}): Promise<LocalSts> {
  const now = options.now ?? Date.now;
  const sessions = new Map<string, IssuedSession>();
  const requests: Record<string, string>[] = [];

  const server: Server = localServer(
    async (request, response) => {
      const body = await readBody(request);
      const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
      remember(requests, form);
      const fail = (status: number, code: string, message: string) => sendStsError(response, status, code, message);
      const scope = sigV4Scope(request.headers.authorization);
      if (
        scope?.service !== 'sts' ||
        scope.accessKeyId !== options.platformCredentials.accessKeyId ||
        !(await signatureMatches(request, body, options.platformCredentials))
      )
        return fail(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
      if (form.Action !== 'AssumeRole')
        return fail(400, 'InvalidAction', `local STS serves AssumeRole only, not ${form.Action}`);
      if (form.RoleArn !== options.roleArn)
        return fail(403, 'AccessDenied', 'not authorized to perform: sts:AssumeRole on this role');
      const tags: Record<string, string> = {};
      for (let i = 1; form[`Tags.member.${i}.Key`] !== undefined; i++)
        tags[form[`Tags.member.${i}.Key`]] = form[`Tags.member.${i}.Value`];
      const tagKeys = Object.keys(tags).sort();
      if (tagKeys.join() !== [...options.requiredTags].sort().join() || Object.values(tags).some((v) => !v)) {
        return fail(403, 'AccessDenied', 'not authorized to perform: sts:TagSession with these tags');
      }
      if (!(await options.tenantKnown(tags[TENANT_SESSION_TAG] ?? ''))) {
        return fail(
          403,
          'AccessDenied',
          'not authorized to perform: sts:AssumeRole for a tenant the registry does not hold',
        );
      }
      const durationSeconds = Number(form.DurationSeconds ?? 3600);
      if (!(durationSeconds >= 900 && durationSeconds <= 43_200))
        return fail(400, 'ValidationError', 'DurationSeconds must be 900 to 43200');

      const session: IssuedSession = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(48).toString('base64'),
        roleSessionName: form.RoleSessionName ?? '',
        tags,
        expiresAtMs: now() + durationSeconds * 1000,
      };
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
      sessions.set(session.accessKeyId, session);
      response.writeHead(200, { 'content-type': 'text/xml' });
      response.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId><SecretAccessKey>${session.secretAccessKey}</SecretAccessKey><SessionToken>${session.sessionToken}</SessionToken><Expiration>${new Date(session.expiresAtMs).toISOString()}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROALOCAL:${session.roleSessionName}</AssumedRoleId><Arn>${options.roleArn}/${session.roleSessionName}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    },
    (response, error) =>
      sendStsError(response, 400, 'MalformedInput', `malformed request: ${(error as Error).message}`),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    sessionOf: (accessKeyId) => sessions.get(accessKeyId),
    signedBy: async (request, body) => {
      const session = sessions.get(sigV4Scope(request.headers.authorization)?.accessKeyId ?? '');
      const current = session !== undefined && session.expiresAtMs >= now();
      return current && (await signatureMatches(request, body, session)) ? session : undefined;
    },
    presignedBy: async (request) => {
      const query = Object.fromEntries(new URL(request.url ?? '/', 'http://local').searchParams);
      const session = sessions.get(presignedScope(query)?.accessKeyId ?? '');
      const current = session !== undefined && session.expiresAtMs >= now();
      return current && (await presignatureMatches(request, session)) ? session : undefined;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An error as the STS query protocol sends it: XML. */
function sendStsError(response: ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'text/xml' });
  response.end(
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message.replace(/[<>&]/g, '')}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}
