import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDbLedger } from '../lambdas/adapters/dynamodb-ledger';
import type { DocumentClient } from '../lambdas/adapters/dynamodb-wire';
import { StsTenantCredentials } from '../lambdas/adapters/sts-tenant-credentials';
import { type TenantScopedDynamoDb, tenantScopedDynamoDb } from '../lambdas/adapters/tenant-scoped-dynamodb';
import type { TenantContext } from '../lambdas/core/tenant';
import { type LocalPlatform, startLocalPlatform } from '../local/platform';
import { registerTenant } from '../test/support/platform';
import { printTable } from './chat';

const DURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 32;
const READ = /^(Get|BatchGet|Query|Scan)/;

/** Counts every command the ledger's clients send, before SDK retries: requests as the client sees them. */
function countingClients(platform: LocalPlatform, counts: { reads: number; writes: number }): TenantScopedDynamoDb {
  const sts = new STSClient({
    region: 'us-east-1',
    endpoint: platform.endpoints.sts,
    credentials: platform.credentials,
  });
  const scoped = tenantScopedDynamoDb(
    { region: 'us-east-1', endpoint: platform.endpoints.dynamodb },
    new StsTenantCredentials(sts, platform.deps.settings.tenantAccessRoleArn),
  );
  return (tenantId) => {
    const client = scoped(tenantId);
    const send = ((command: { constructor: { name: string } }) => {
      if (READ.test(command.constructor.name)) counts.reads++;
      else counts.writes++;
      return client.send(command as never);
    }) as DocumentClient['send'];
    return { send };
  };
}

function tenant(tenantId: string, requestsPerMinute = 10_000_000): TenantContext {
  return {
    tenantId,
    tier: 'enterprise',
    principal: { type: 'api_key', id: 'bench' },
    limits: { requestsPerMinute, tokensPerMinute: 1e12, monthlyTokens: 1e12, monthlyBudgetUsd: 1_000_000 },
    auditPrompts: false,
    placements: [],
  };
}

/** Closed loop: `CONCURRENCY` workers each run reserve + settle back to back for the duration. */
async function measure(
  ledger: DynamoDbLedger,
  tenants: TenantContext[],
  counts: { reads: number; writes: number },
  settle = true,
) {
  const latencies: number[] = [];
  let refused = 0;
  counts.reads = 0;
  counts.writes = 0;
  const deadline = performance.now() + DURATION_SECONDS * 1000;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const who = tenants[next++ % tenants.length];
        try {
          const reservation = await ledger.reserve(who, {
            requestId: randomUUID(),
            model: 'nova-micro',
            estimate: { tokens: 600, costNanoUsd: 70_000 },
            nowMs: Date.now(),
          });
          if (settle) await ledger.settle(reservation, { inputTokens: 40, outputTokens: 60, costNanoUsd: 9_800 });
        } catch {
          refused++;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const calls = latencies.length;
  latencies.sort((a, b) => a - b);
  return {
    calls,
    admittedPerSecond: (calls - refused) / seconds,
    p50: latencies[Math.floor(latencies.length / 2)] ?? 0,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    writesPerCall: counts.writes / calls,
    readsPerCall: counts.reads / calls,
    cpuMsPerCall: (cpu.user + cpu.system) / 1000 / calls,
  };
}

export async function benchMetering(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-metering-'));
  const platform = await startLocalPlatform({ dataDir, port: 0, persist: false });
  try {
    const counts = { reads: 0, writes: 0 };
    const ledger = new DynamoDbLedger(countingClients(platform, counts), 'ledger', { reservationTtlMs: 300_000 });
    const hot = [tenant('hot-tenant')];
    const many = Array.from({ length: 100 }, (_, i) => tenant(`tenant-${String(i).padStart(3, '0')}`));
    const limited = [tenant('at-its-limit', 1)];
    // The local STS gives sessions only to tenants the registry holds.
    for (const t of [...hot, ...many, ...limited]) await registerTenant(platform, t);
    // Warm-up: STS sessions, connections, JIT.
    await measure(ledger, [...hot, ...many], counts);

    const rows = [
      ['1 hot tenant, admitted', await measure(ledger, hot, counts)],
      ['100 tenants, admitted', await measure(ledger, many, counts)],
      ['1 tenant at its limit, refused', await measure(ledger, limited, counts, false)],
    ] as const;
    printTable(
      ['workload', 'metered calls', 'admitted/s', 'p50 ms', 'p99 ms', 'writes/call', 'reads/call', 'CPU ms/call'],
      rows.map(([name, r]) => [
        name,
        String(r.calls),
        r.admittedPerSecond.toFixed(0),
        r.p50.toFixed(2),
        r.p99.toFixed(2),
        r.writesPerCall.toFixed(2),
        r.readsPerCall.toFixed(2),
        r.cpuMsPerCall.toFixed(2),
      ]),
    );
    console.log(
      `\nreserve + settle through the production DynamoDbLedger with STS-scoped credentials, ${CONCURRENCY} concurrent callers, ${DURATION_SECONDS}s per row; DynamoDB requests counted at the client (before SDK retries). Local mode: dynalite, the LeadingKeys front and the caller share one process, so CPU/call includes the emulator's work.`,
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
