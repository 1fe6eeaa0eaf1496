import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { StsTenantCredentials } from '../../lambdas/adapters/sts-tenant-credentials';
import { type TenantScopedDynamoDb, tenantScopedDynamoDb } from '../../lambdas/adapters/tenant-scoped-dynamodb';
import type { TenantContext } from '../../lambdas/core/tenant';
import type { PlatformConfig } from '../../lib/config';
import { type LocalPlatform, type LocalPlatformOptions, startLocalPlatform } from '../../local/platform';

/**
 * A clock tests move instead of sleeping: it steps past TTLs and waits when told to. Given a start,
 * it stands still in between (for per-second windows that must not turn over between two requests).
 */
export class ManualClock {
  private offsetMs = 0;
  constructor(private readonly frozenAt?: number) {}
  readonly now = () => (this.frozenAt ?? Date.now()) + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** A local platform on a free port, in memory, with its own data dir; `close` removes everything. */
export async function startTestPlatform(
  config?: PlatformConfig,
  options: Pick<
    LocalPlatformOptions,
    | 'now'
    | 'handlerTimeoutMs'
    | 'siloDeployFault'
    | 'siloDeployed'
    | 'ingestWorker'
    | 'partitionLimits'
    | 'moveSleep'
    | 'siloRegions'
    | 'workflowPollMs'
    | 'modelFaults'
  > = {},
): Promise<LocalPlatform & { dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'platform-test-'));
  // The workflows move only when a test runs them (`runDue`): no step is taken behind its back.
  const platform = await startLocalPlatform({
    dataDir,
    port: 0,
    persist: false,
    config,
    workflowPollMs: 0,
    ...options,
  });
  return {
    ...platform,
    dataDir,
    close: async () => {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Calls the platform over HTTP; returns status, headers and the parsed JSON body. */
export async function call(
  platform: LocalPlatform,
  method: string,
  path: string,
  options: { credential?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${platform.url}${path}`, {
    method,
    headers: {
      ...(options.credential && { authorization: `Bearer ${options.credential}` }),
      ...((options.body !== undefined || options.rawBody !== undefined) && { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  // Server-sent events stay text: `text` holds them.
  const isJson = (response.headers.get('content-type') ?? '').includes('json');
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: text && isJson ? JSON.parse(text) : undefined,
  };
}

/**
 * Puts the tenant of `context` in the registry (once), for tests that call handlers or adapters
 * with a context of their own: the local STS gives sessions only to tenants the registry holds.
 */
export async function registerTenant(platform: LocalPlatform, context: TenantContext): Promise<TenantContext> {
  if (await platform.deps.registry.getTenant(context.tenantId)) return context;
  await platform.deps.registry.createTenant({
    tenantId: context.tenantId,
    version: 1,
    tier: context.tier,
    status: 'active',
    limits: context.limits,
    auditPrompts: context.auditPrompts,
    placements: [...context.placements],
    createdAt: '2026-12-07T00:00:00Z',
  });
  return context;
}

/** Onboards a tenant through the admin API and returns its first API key. */
export async function onboard(platform: LocalPlatform, id: string, extra: Record<string, unknown> = {}) {
  const admin = platform.operatorToken;
  const created = await call(platform, 'POST', '/admin/tenants', { credential: admin, body: { id, ...extra } });
  if (created.status !== 201) throw new Error(`onboarding ${id} failed: ${created.text}`);
  // A key is issued at the tenant's version as read: a move's workflow (onboarding onto a silo) may
  // write the record meanwhile, and the issue answers 409, as it should; an operator asks again.
  let key = await call(platform, 'POST', `/admin/tenants/${id}/api-keys`, { credential: admin });
  for (let tries = 1; key.status === 409 && tries < 5; tries++) {
    key = await call(platform, 'POST', `/admin/tenants/${id}/api-keys`, { credential: admin });
  }
  if (key.status !== 201) throw new Error(`issuing a key for ${id} failed: ${key.text}`);
  return { tenant: created.body, apiKey: key.body.api_key as string, keyId: key.body.key_id as string };
}

/** Offboards through the admin API, then moves `clock` past the drain and lets the workflow finish; returns the tombstone. */
export async function offboardCompletely(platform: LocalPlatform, clock: ManualClock, id: string) {
  const admin = { credential: platform.operatorToken };
  const started = await call(platform, 'DELETE', `/admin/tenants/${id}`, admin);
  if (started.status !== 202) throw new Error(`offboarding ${id} did not start: ${started.text}`);
  clock.advance(platform.deps.settings.offboardingDrainSeconds * 1000 + 1000);
  await platform.offboarding.runDue();
  return (await call(platform, 'GET', `/admin/tenants/${id}`, admin)).body;
}

/** From now on, what reaches the local DynamoDB: each request's operation and the tables it touches. */
export function dynamodbRequestsFromNow(platform: LocalPlatform): () => [string, readonly string[]][] {
  const from = platform.dynamodbDecisions.length;
  return () => platform.dynamodbDecisions.slice(from).map(({ operation, tables }) => [operation, tables]);
}

/** Clients on the platform's local DynamoDB: tenant-scoped sessions (as handlers get them) and the platform's own role. */
export function localDynamoDb(platform: LocalPlatform): {
  credentials: StsTenantCredentials;
  scoped: TenantScopedDynamoDb;
  ownRole: DynamoDBDocumentClient;
} {
  const sts = new STSClient({
    region: 'us-east-1',
    endpoint: platform.endpoints.sts,
    credentials: platform.credentials,
  });
  const credentials = new StsTenantCredentials(sts, platform.deps.settings.tenantAccessRoleArn);
  const config = { region: 'us-east-1', endpoint: platform.endpoints.dynamodb, maxAttempts: 1 };
  return {
    credentials,
    scoped: tenantScopedDynamoDb(config, credentials),
    ownRole: DynamoDBDocumentClient.from(new DynamoDBClient({ ...config, credentials: platform.credentials })),
  };
}
