import {
  BatchGetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TENANT_PARTITION_PREFIX, TTL_ATTRIBUTE } from '../../contract/tables';
import type { AuditEntry } from '../core/audit';
import { BASE_PREFIX, baseFor } from '../core/catch-up';
import { PlatformError } from '../core/errors';
import {
  type AdmissionAttempt,
  type AdmissionStore,
  admitCall,
  leaseTerms,
  ledgerPartitions,
  type ShardState,
  shardPartition,
  shareOf,
} from '../core/ledger-shards';
import { dayKey, type Estimate, minuteWindow, startOfNextMonthMs } from '../core/limits';
import type { ActualUsage, Ledger, Reservation, TenantUsageRecord, UsageRecord } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { auditItem } from './dynamodb-audit-log';
import { deletePartition } from './dynamodb-partition';
import type { DocumentClient } from './dynamodb-wire';
import { isRetryable, withRetries } from './retry';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

/** Month items outlive their month by this long, for late questions about a bill. */
const MONTH_RETENTION_SECONDS = 400 * 24 * 3600;
/** Reservation records outlive their hold by this long: past their month, releasing them changes nothing. */
const RESERVATION_RETENTION_SECONDS = 40 * 24 * 3600;
/** The tenant's month grant, on its first partition key. */
const GRANT_PREFIX = 'GRANT#';
/** One shard's counters and lease for a month. */
const SHARD_PREFIX = 'SHARD#';
/** One call in flight, on its request's home shard. */
const RESERVATION_PREFIX = 'R#';
/** One shard's settled usage of one day, a cell per model and field. */
const USAGE_PREFIX = 'USAGE#';
const USAGE_FIELDS = { in: 'inputTokens', out: 'outputTokens', req: 'requests', nusd: 'costNanoUsd' } as const;
/** The shard item's attributes, short because every reserve and settle writes them. */
const C = {
  window: 'w',
  windowRequests: 'rr',
  windowTokens: 'rt',
  leaseTokens: 'lt',
  leaseCost: 'lc',
  termsTokens: 'mt',
  termsCost: 'mc',
  open: 'op',
} as const;
/** The month grant's attributes: tokens and nano-USD granted in leases, and the shards that took one. */
const G = { tokens: 'gt', cost: 'gc', shards: 'sh' } as const;

export interface DynamoDbLedgerOptions {
  /**
   * An unsettled reservation older than this is taken for the trace of a crashed call and released.
   * It must exceed the longest a handler can live (the Lambda timeout), or a slow call's settle
   * would find its reservation gone.
   */
  readonly reservationTtlMs: number;
  /** Where a settle writes the audit record it is given (the audit log's table and retention). */
  readonly audit?: { readonly tableName: string; readonly retentionDays: number };
}

/** The reservation record: estimate (tokens, nano-USD), the shard whose counters it holds, its month, when it counts as abandoned. */
interface StoredReservation {
  readonly t: number;
  readonly c: number;
  readonly s: number;
  readonly m: string;
  readonly e: number;
}

type Key = { pk: string; sk: string };
type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const grantKey = (tenantId: string, month: string): Key => ({
  pk: tenantKey(tenantId),
  sk: `${GRANT_PREFIX}${month}`,
});
const shardKey = (tenantId: string, shard: number, month: string): Key => ({
  pk: shardPartition(tenantId, shard),
  sk: `${SHARD_PREFIX}${month}`,
});
const reservationKey = (tenantId: string, shard: number, requestId: string): Key => ({
  pk: shardPartition(tenantId, shard),
  sk: `${RESERVATION_PREFIX}${requestId}`,
});
const usageKey = (tenantId: string, shard: number, day: string): Key => ({
  pk: shardPartition(tenantId, shard),
  sk: `${USAGE_PREFIX}${day}`,
});
const monthExpiry = (month: string) =>
  Math.floor(startOfNextMonthMs(Date.parse(`${month}-01T00:00:00Z`)) / 1000) + MONTH_RETENTION_SECONDS;

/**
 * The usage ledger, sharded so that no item grows and no partition key runs hot. A tenant's
 * admission state is split over `shardCount(limits)` shards (one for all but the busiest tenants),
 * each on its own partition key (`TENANT#<id>`, `TENANT#<id>#S<n>`); admission (its loop and
 * arithmetic) is core's `admitCall`, this adapter its `AdmissionStore`: conditional writes and one
 * read. Items, all of constant size:
 *
 * - `SHARD#<yyyy-mm>` per shard: its minute window's requests and tokens (a share of the limits)
 *   and what is left of its lease of the month's tokens and budget;
 * - `GRANT#<yyyy-mm>` on the tenant's key: what the month has granted in leases (never more than
 *   the monthly limits) and which shards took one;
 * - `R#<requestId>` on the request's home shard: one call in flight, with TTL;
 * - `USAGE#<yyyy-mm-dd>` per shard: settled usage of the day, a cell per model (3 models: ~300 B).
 *
 * An admitted call is two transactions and no read: the reserve writes the shard's counters
 * (conditional on its window share and lease) and puts the reservation record (conditional on its
 * absence, so a retried reserve never counts twice); the settle deletes the record (conditional on
 * its presence, so it is idempotent), gives the unused estimate back to the lease and adds the
 * usage. Only a refused write reads: every shard and the grant in one BatchGetItem, then the next
 * step (lease, rebalance, release what crashed calls left, or refuse) from core. A crashed call's
 * reservation holds its window share until the minute ends and its lease until the refused path
 * releases it, so it never blocks a tenant. Every call signs with the tenant's scoped credentials,
 * so IAM confines it to that tenant's partition keys.
 */
export class DynamoDbLedger implements Ledger, AdmissionStore {
  /** The minute window each shard was last admitted in: picks which of the two writes to try first. */
  private readonly lastWindow = new Map<string, number>();

  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
    private readonly options: DynamoDbLedgerOptions,
  ) {}

  reserve(
    tenant: TenantContext,
    request: { requestId: string; model: string; estimate: Estimate; nowMs: number; holdMs?: number },
  ): Promise<Reservation> {
    return unavailableWhenExhausted(() => admitCall(this, tenant, request));
  }

  /**
   * One reserve on `shard`: its counters and the reservation record, in one transaction, trying the
   * window the shard was last seen in first. `exists` when the record is there already.
   */
  async tryReserve(attempt: AdmissionAttempt, shard: number): Promise<'admitted' | 'refused' | 'exists'> {
    const { tenant, estimate, nowMs, month, shards } = attempt;
    const window = minuteWindow(nowMs);
    const terms = leaseTerms(tenant.limits);
    const expiresAtMs = nowMs + (attempt.holdMs ?? this.options.reservationTtlMs);
    const record: StoredReservation = {
      t: estimate.tokens,
      c: estimate.costNanoUsd,
      s: shard,
      m: month,
      e: expiresAtMs,
    };
    const values = {
      ':t': estimate.tokens,
      ':c': estimate.costNanoUsd,
      ':negT': -estimate.tokens,
      ':negC': -estimate.costNanoUsd,
      ':one': 1,
      ':w': window,
      ':mt': terms.monthlyTokens,
      ':mc': terms.budgetNanoUsd,
    };
    const lease = `${C.leaseTokens} >= :t AND ${C.leaseCost} >= :c AND ${C.termsTokens} = :mt AND ${C.termsCost} = :mc`;
    const sameWindow = {
      UpdateExpression: `ADD ${C.windowRequests} :one, ${C.windowTokens} :t, ${C.leaseTokens} :negT, ${C.leaseCost} :negC, ${C.open} :one`,
      ConditionExpression: `${C.window} = :w AND ${C.windowRequests} <= :maxReq AND ${C.windowTokens} <= :maxTok AND ${lease}`,
      ExpressionAttributeValues: {
        ...values,
        ':maxReq': shareOf(tenant.limits.requestsPerMinute, shards, shard) - 1,
        ':maxTok': shareOf(tenant.limits.tokensPerMinute, shards, shard) - estimate.tokens,
      },
    };
    const newWindow = {
      UpdateExpression: `SET ${C.window} = :w, ${C.windowRequests} = :one, ${C.windowTokens} = :t ADD ${C.leaseTokens} :negT, ${C.leaseCost} :negC, ${C.open} :one`,
      ConditionExpression: `(attribute_not_exists(${C.window}) OR ${C.window} < :w) AND ${lease}`,
      ExpressionAttributeValues: values,
    };
    const windowKey = `${tenant.tenantId}/${shard}`;
    const variants = this.lastWindow.get(windowKey) === window ? [sameWindow, newWindow] : [newWindow, sameWindow];
    for (const variant of variants) {
      const outcome = await this.transact(
        [
          { Update: { TableName: this.tableName, Key: shardKey(tenant.tenantId, shard, month), ...variant } },
          {
            Put: {
              TableName: this.tableName,
              Item: {
                ...reservationKey(tenant.tenantId, attempt.home, attempt.requestId),
                ...record,
                [TTL_ATTRIBUTE]: Math.floor(expiresAtMs / 1000) + RESERVATION_RETENTION_SECONDS,
              },
              ConditionExpression: 'attribute_not_exists(sk)',
            },
          },
        ],
        tenant.tenantId,
      );
      if (outcome === 'done') {
        this.lastWindow.set(windowKey, window);
        return 'admitted';
      }
      if (outcome[1]) return 'exists';
    }
    return 'refused';
  }

  /** Carves a lease from the month's grant into a shard, never granting past the monthly limits. */
  async lease(
    attempt: AdmissionAttempt,
    shard: number,
    amount: { tokens: number; costNanoUsd: number },
  ): Promise<void> {
    const { month } = attempt;
    const { tenantId, limits } = attempt.tenant;
    const terms = leaseTerms(limits);
    const expiry = monthExpiry(month);
    await this.transact(
      [
        {
          Update: {
            TableName: this.tableName,
            Key: grantKey(tenantId, month),
            UpdateExpression: `SET ${TTL_ATTRIBUTE} = :exp ADD ${G.tokens} :t, ${G.cost} :c, ${G.shards} :shard`,
            ConditionExpression: `attribute_not_exists(${G.tokens}) OR (${G.tokens} <= :maxT AND ${G.cost} <= :maxC)`,
            ExpressionAttributeValues: {
              ':t': amount.tokens,
              ':c': amount.costNanoUsd,
              ':shard': new Set([shard]),
              ':exp': expiry,
              ':maxT': terms.monthlyTokens - amount.tokens,
              ':maxC': terms.budgetNanoUsd - amount.costNanoUsd,
            },
          },
        },
        {
          Update: {
            TableName: this.tableName,
            Key: shardKey(tenantId, shard, month),
            UpdateExpression: `SET ${C.termsTokens} = :mt, ${C.termsCost} = :mc, ${TTL_ATTRIBUTE} = :exp ADD ${C.leaseTokens} :t, ${C.leaseCost} :c`,
            ConditionExpression: `attribute_not_exists(${C.termsTokens}) OR (${C.termsTokens} = :mt AND ${C.termsCost} = :mc)`,
            ExpressionAttributeValues: {
              ':t': amount.tokens,
              ':c': amount.costNanoUsd,
              ':mt': terms.monthlyTokens,
              ':mc': terms.budgetNanoUsd,
              ':exp': expiry,
            },
          },
        },
      ],
      tenantId,
    );
  }

  /** Gives a shard's lease back to the month and takes up the current limits, if the shard is as it was read. */
  async returnLease(attempt: AdmissionAttempt, seen: ShardState): Promise<void> {
    if (!seen.terms) return;
    const { month } = attempt;
    const { tenantId, limits } = attempt.tenant;
    const terms = leaseTerms(limits);
    await this.transact(
      [
        {
          Update: {
            TableName: this.tableName,
            Key: grantKey(tenantId, month),
            UpdateExpression: `ADD ${G.tokens} :t, ${G.cost} :c`,
            ConditionExpression: `attribute_exists(${G.tokens})`,
            ExpressionAttributeValues: { ':t': -seen.leaseTokens, ':c': -seen.leaseCostNanoUsd },
          },
        },
        {
          Update: {
            TableName: this.tableName,
            Key: shardKey(tenantId, seen.shard, month),
            UpdateExpression: `SET ${C.leaseTokens} = :zero, ${C.leaseCost} = :zero, ${C.termsTokens} = :mt, ${C.termsCost} = :mc`,
            ConditionExpression: `${C.leaseTokens} = :seenT AND ${C.leaseCost} = :seenC`,
            ExpressionAttributeValues: {
              ':zero': 0,
              ':seenT': seen.leaseTokens,
              ':seenC': seen.leaseCostNanoUsd,
              ':mt': terms.monthlyTokens,
              ':mc': terms.budgetNanoUsd,
            },
          },
        },
      ],
      tenantId,
    );
  }

  async settle(reservation: Reservation, usage: ActualUsage, audit?: AuditEntry): Promise<void> {
    const { tenantId, estimate, model, reservedAtMs } = reservation;
    const day = dayKey(reservedAtMs);
    const cells = Object.keys(USAGE_FIELDS) as (keyof typeof USAGE_FIELDS)[];
    const auditPut = audit && {
      Put: { TableName: this.auditTable().tableName, Item: this.auditItem(tenantId, audit) },
    };
    const outcome = await this.endReservation(
      reservation,
      estimate.tokens - usage.inputTokens - usage.outputTokens,
      estimate.costNanoUsd - usage.costNanoUsd,
      {
        Update: {
          TableName: this.tableName,
          Key: usageKey(tenantId, reservation.shard, day),
          UpdateExpression: `SET ${TTL_ATTRIBUTE} = :exp ADD ${cells.map((field) => `#${field} :${field}`).join(', ')}`,
          ExpressionAttributeNames: Object.fromEntries(cells.map((field) => [`#${field}`, `${field}#${model}`])),
          ExpressionAttributeValues: {
            ':in': usage.inputTokens,
            ':out': usage.outputTokens,
            ':req': 1,
            ':nusd': usage.costNanoUsd,
            ':exp': monthExpiry(reservation.month),
          },
        },
      },
      auditPut,
    );
    // Settled by an earlier try (which wrote the record too) or released as abandoned: the record alone.
    if (outcome !== 'done' && auditPut) {
      await unavailableWhenExhausted(() => withRetries(() => this.db(tenantId).send(new PutCommand(auditPut.Put))));
    }
  }

  private auditTable() {
    if (!this.options.audit) throw new Error('this ledger was built without the audit table its settle writes to');
    return this.options.audit;
  }

  private auditItem(tenantId: string, entry: AuditEntry) {
    return auditItem(tenantId, entry, this.auditTable().retentionDays);
  }

  async release(reservation: Reservation): Promise<void> {
    await this.endReservation(reservation, reservation.estimate.tokens, reservation.estimate.costNanoUsd);
  }

  /**
   * Deletes the reservation record and gives `tokens` and `cost` back to its shard's lease, with
   * `also` in the same transaction; nothing when the record is gone already (an earlier try of
   * this settle got through, or it was released as abandoned).
   */
  private endReservation(
    reservation: Omit<Reservation, 'tier'>,
    tokens: number,
    cost: number,
    ...also: (TransactItem | undefined)[]
  ): Promise<'done' | boolean[]> {
    const { tenantId, requestId, month } = reservation;
    return unavailableWhenExhausted(() =>
      this.transact(
        [
          {
            Delete: {
              TableName: this.tableName,
              Key: reservationKey(tenantId, reservation.recordShard, requestId),
              ConditionExpression: 'attribute_exists(sk)',
            },
          },
          {
            Update: {
              TableName: this.tableName,
              Key: shardKey(tenantId, reservation.shard, month),
              UpdateExpression: `ADD ${C.leaseTokens} :t, ${C.leaseCost} :c, ${C.open} :minusOne`,
              ExpressionAttributeValues: { ':t': tokens, ':c': cost, ':minusOne': -1 },
            },
          },
          ...also.filter((item) => item !== undefined),
        ],
        tenantId,
        END_ATTEMPTS,
      ),
    );
  }

  /** Releases every reservation of the tenant past its hold: the calls that made them crashed. */
  async releaseAbandoned(attempt: AdmissionAttempt): Promise<void> {
    const { shards, nowMs } = attempt;
    const { tenantId } = attempt.tenant;
    for (let shard = 0; shard < shards; shard++) {
      const records = await this.queryAll(tenantId, {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :r)',
        FilterExpression: 'e < :now',
        ExpressionAttributeValues: { ':pk': shardPartition(tenantId, shard), ':r': RESERVATION_PREFIX, ':now': nowMs },
        ConsistentRead: true,
      });
      for (const record of await this.notCopied(tenantId, shard, records as unknown as (StoredReservation & Key)[])) {
        await this.endReservation(
          {
            tenantId,
            requestId: record.sk.slice(RESERVATION_PREFIX.length),
            model: '',
            month: record.m,
            estimate: { tokens: record.t, costNanoUsd: record.c },
            reservedAtMs: 0,
            shard: record.s,
            recordShard: shard,
          },
          record.t,
          record.c,
        );
      }
    }
  }

  /**
   * The records but those a move to this silo copied and has not caught up yet: whether the pool's
   * call behind one ended (its settle comes with the catch-up) is not known here, and releasing it too
   * would give its estimate back twice. The catch-up deletes it, or, the pool's call having crashed,
   * drops its base and leaves it to be released here.
   */
  private async notCopied<R extends Key>(tenantId: string, shard: number, records: readonly R[]): Promise<R[]> {
    if (records.length === 0) return [];
    const bases = await this.queryAll(tenantId, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :base)',
      ExpressionAttributeValues: {
        ':pk': shardPartition(tenantId, shard),
        ':base': `${BASE_PREFIX}${RESERVATION_PREFIX}`,
      },
      ProjectionExpression: 'pk, sk',
      ConsistentRead: true,
    });
    const copied = new Set(bases.map((base) => baseFor(base as unknown as Key).sk));
    return records.filter((record) => !copied.has(record.sk));
  }

  /** Every shard of the month, its grant and this request's record, in one strongly consistent BatchGetItem. */
  async admissionState(attempt: AdmissionAttempt) {
    const { month, shards } = attempt;
    const { tenantId } = attempt.tenant;
    const record = reservationKey(tenantId, attempt.home, attempt.requestId);
    const keys = [
      grantKey(tenantId, month),
      record,
      ...Array.from({ length: shards }, (_, s) => shardKey(tenantId, s, month)),
    ];
    const items = new Map<string, Record<string, unknown>>();
    let pending: Key[] = keys;
    for (let round = 1; pending.length > 0; round++) {
      const keysNow = pending;
      const answer = await withRetries(() =>
        this.db(tenantId).send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keysNow, ConsistentRead: true } } }),
        ),
      );
      for (const item of answer.Responses?.[this.tableName] ?? []) items.set(`${item.pk}/${item.sk}`, item);
      pending = (answer.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Key[];
      if (pending.length > 0 && round >= 4) {
        throw Object.assign(new Error('unprocessed keys'), { name: 'ThrottlingException' });
      }
    }
    const at = (key: Key) => items.get(`${key.pk}/${key.sk}`);
    const grant = at(keys[0]) ?? {};
    const stored = at(record) as StoredReservation | undefined;
    return {
      record: stored && { shard: stored.s, month: stored.m },
      grant: { tokens: Number(grant[G.tokens] ?? 0), costNanoUsd: Number(grant[G.cost] ?? 0) },
      shards: Array.from({ length: shards }, (_, shard): ShardState => {
        const item = at(shardKey(tenantId, shard, month)) ?? {};
        return {
          shard,
          window: Number(item[C.window] ?? -1),
          windowRequests: Number(item[C.windowRequests] ?? 0),
          windowTokens: Number(item[C.windowTokens] ?? 0),
          leaseTokens: Number(item[C.leaseTokens] ?? 0),
          leaseCostNanoUsd: Number(item[C.leaseCost] ?? 0),
          terms:
            item[C.termsTokens] === undefined
              ? undefined
              : { monthlyTokens: Number(item[C.termsTokens]), budgetNanoUsd: Number(item[C.termsCost]) },
          open: Number(item[C.open] ?? 0),
        };
      }),
    };
  }

  async usage(tenant: TenantContext, range: { from: string; to: string }): Promise<UsageRecord[]> {
    const { tenantId } = tenant;
    // The months' grants name the shards that admitted anything, hence hold usage.
    const grants = await this.queryAll(tenantId, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': tenantKey(tenantId),
        ':from': `${GRANT_PREFIX}${range.from.slice(0, 7)}`,
        ':to': `${GRANT_PREFIX}${range.to.slice(0, 7)}`,
      },
    });
    const shards = new Set(grants.flatMap((grant) => [...((grant[G.shards] as Set<number> | undefined) ?? [])]));
    const items = (
      await Promise.all(
        [...shards].map((shard) =>
          this.queryAll(tenantId, {
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
            ExpressionAttributeValues: {
              ':pk': shardPartition(tenantId, shard),
              ':from': `${USAGE_PREFIX}${range.from}`,
              ':to': `${USAGE_PREFIX}${range.to}`,
            },
          }),
        ),
      )
    ).flat();
    return mergeUsage(items.map((item) => ({ tenantId, item }))).map(({ tenantId: _, ...record }) => record);
  }

  async deleteAll(tenantId: string): Promise<number> {
    let deleted = 0;
    for (const pk of ledgerPartitions(tenantId))
      deleted += await deletePartition(this.db(tenantId), this.tableName, pk);
    return deleted;
  }

  private async queryAll(tenantId: string, input: ConstructorParameters<typeof QueryCommand>[0]) {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await withRetries(() =>
        this.db(tenantId).send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /**
   * One transaction, retried on throttling, conflicts and lost answers (every one here is guarded
   * by a condition, so a retry of one that did land is cancelled instead of counting twice).
   * `done`, or per item whether its condition failed.
   */
  private transact(items: TransactItem[], tenantId: string, attempts?: number): Promise<'done' | boolean[]> {
    return withRetries(async () => {
      try {
        await this.db(tenantId).send(new TransactWriteCommand({ TransactItems: items }));
        return 'done' as const;
      } catch (error) {
        const reasons = (error as { name?: string; CancellationReasons?: { Code?: string }[] }).CancellationReasons;
        if ((error as Error).name !== 'TransactionCanceledException' || !reasons) throw error;
        if (reasons.some((r) => r.Code === 'TransactionConflict' || r.Code === 'ThrottlingError')) {
          throw Object.assign(new Error('transaction conflict'), { name: 'TransactionConflictException' });
        }
        if (reasons.some((r) => r.Code !== 'None' && r.Code !== 'ConditionalCheckFailed')) throw error;
        return reasons.map((r) => r.Code === 'ConditionalCheckFailed');
      }
    }, attempts);
  }
}

/**
 * Tries of a settle or release (a reserve gets withRetries' default 4). A settle comes after the model
 * answered: giving up would answer 503 for a call that may have been billed (its write landed, its answer
 * lost), which the client then retries and pays twice; on a hot tenant concurrent settles conflict on the
 * shard item, so it keeps trying for a few seconds (backoff at most 1 s a try) before it does.
 */
const END_ATTEMPTS = 10;

/**
 * Settled usage of every tenant, for the operator's report. Runs with the admin function's own
 * credentials (a Scan, which no tenant session may do), off every tenant's hot path; it reads
 * every item of the table once (each tenant's usage items are a few hundred bytes a shard and day).
 */
export class DynamoDbLedgerReports {
  constructor(
    private readonly db: DocumentClient,
    private readonly tableName: string,
  ) {}

  async monthOfAllTenants(month: string): Promise<TenantUsageRecord[]> {
    const items: { tenantId: string; item: Record<string, unknown> }[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'begins_with(sk, :month)',
          ExpressionAttributeValues: { ':month': `${USAGE_PREFIX}${month}` },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) items.push({ tenantId: tenantOfPartition(String(item.pk)), item });
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return mergeUsage(items);
  }
}

/**
 * A ledger item's counters: what its writes add to (leases, open reservations, what the month has
 * granted and to which shards, a day's usage cells), as a move to a silo catches them up.
 */
export function ledgerCounters(item: Readonly<Record<string, unknown>>): string[] {
  const sk = String(item.sk);
  if (sk.startsWith(SHARD_PREFIX)) return [C.leaseTokens, C.leaseCost, C.open];
  if (sk.startsWith(GRANT_PREFIX)) return [G.tokens, G.cost, G.shards];
  if (sk.startsWith(USAGE_PREFIX)) return Object.keys(item).filter((name) => name.includes('#'));
  return [];
}

/** The tenant a ledger partition key belongs to: `TENANT#<id>` or `TENANT#<id>#S<n>`. */
function tenantOfPartition(pk: string): string {
  return pk.slice(TENANT_PARTITION_PREFIX.length).replace(/#S\d+$/, '');
}

/**
 * DynamoDB still throttling or unreachable after the retries: a 503 the caller may retry. Both the
 * reserve and the settle are idempotent by request id, so nothing is counted twice when they do.
 */
async function unavailableWhenExhausted<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (isRetryable(error))
      throw new PlatformError('upstream_unavailable', 'metering is busy, retry shortly', { retryAfterSeconds: 1 });
    throw error;
  }
}

/** Usage items (a shard's day, a cell `<field>#<model>` per model) summed into one record per tenant, day and model. */
function mergeUsage(items: readonly { tenantId: string; item: Record<string, unknown> }[]): TenantUsageRecord[] {
  const records = new Map<string, { -readonly [K in keyof TenantUsageRecord]: TenantUsageRecord[K] }>();
  for (const { tenantId, item } of items) {
    const date = String(item.sk).slice(USAGE_PREFIX.length);
    for (const [name, value] of Object.entries(item)) {
      const split = name.indexOf('#');
      const field = name.slice(0, split) as keyof typeof USAGE_FIELDS;
      if (split < 0 || !(field in USAGE_FIELDS)) continue;
      const model = name.slice(split + 1);
      const id = `${tenantId}/${date}/${model}`;
      const record = records.get(id) ?? {
        tenantId,
        date,
        model,
        requests: 0,
        inputTokens: 0,
        outputTokens: 0,
        costNanoUsd: 0,
      };
      record[USAGE_FIELDS[field]] += Number(value);
      records.set(id, record);
    }
  }
  return [...records.values()];
}
