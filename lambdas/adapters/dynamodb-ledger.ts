import { createHash } from 'node:crypto';
import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TENANT_PARTITION_PREFIX, TTL_ATTRIBUTE } from '../../contract/tables';
import type { AuditEntry } from '../core/audit';
import { BASE_PREFIX, baseFor } from '../core/catch-up';
import { PlatformError } from '../core/errors';
import {
  type AdmissionAttempt,
  type AdmissionStore,
  admitCall,
  HOLD_SLOTS,
  isStale,
  leaseTerms,
  ledgerPartitions,
  type ShardState,
  type SlotHold,
  shardPartition,
  shareOf,
  slotOf,
} from '../core/ledger-shards';
import { dayKey, minuteWindow, startOfNextMonthMs } from '../core/limits';
import { usageByModel } from '../core/metering';
import type {
  ActualUsage,
  Ledger,
  LedgerScope,
  Reservation,
  ScopeUsageRecord,
  TenantUsageRecord,
  UsageRecord,
} from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { auditItem } from './dynamodb-audit-log';
import { isConditionalCheckFailure } from './dynamodb-errors';
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
/** `SCOPE#<kind>#<hash>` on the tenant's partition: one of its scopes with limits of their own (`reserveScope`). */
const SCOPE_PREFIX = 'SCOPE#';
const SCOPE_ATTRIBUTES = { kind: 'k', id: 'id' } as const;
/** How many scopes' usage a report reads at once. */
const SCOPES_READ_AT_ONCE = 8;
/** One shard's counters and lease for a month. */
const SHARD_PREFIX = 'SHARD#';
/** One call in flight held by a record (a queued job), on its request's home shard. */
const RESERVATION_PREFIX = 'R#';
/** One shard's settled usage of one day, a cell per model and field: what its shard item moved out past 1 KB. */
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
  /** The request id (hashed) of the shard's last reserve: a retry whose first try landed finds it. */
  lastReserve: 'lr',
} as const;
/** A slot's attributes (`HOLD_SLOTS`): its epoch, and the requests, tokens and nano-USD its calls hold. */
const holdNames = (slot: number) => ({
  epoch: `he${slot}`,
  requests: `hn${slot}`,
  tokens: `ht${slot}`,
  cost: `hc${slot}`,
});
/** A usage cell in a shard item: `<dd>|<field>#<model>`, the day of the month it was settled for. */
const USAGE_CELL = /^(\d\d)\|([a-z]+)#(.+)$/;
const usageCell = (day: string, field: string, model: string) => `${day.slice(8, 10)}|${field}#${model}`;
/**
 * A reserve of a request (its id and its time), short and fixed in size, for the shard item's last
 * reserve. Not the id alone: a queued job's id comes again when its job runs again after its call
 * ended (released, settled), and that mark, still there, would admit the new call unheld and unchecked.
 */
const reserveHash = (requestId: string, reservedAtMs: number) =>
  createHash('sha256').update(`${requestId}\u0000${reservedAtMs}`).digest('base64url').slice(0, 16);
/**
 * The client token of a call's `n`th settle or release transaction (DynamoDB takes at most 36 characters):
 * of the reserve's time too, or a later call of the same request id would find its settle answered by the
 * earlier call's token (applied already, or a mismatch) and bill nothing.
 */
const clientToken = (tenantId: string, requestId: string, reservedAtMs: number, n: number) =>
  createHash('sha256')
    .update(`${tenantId}\u0000${requestId}\u0000${reservedAtMs}\u0000${n}`)
    .digest('base64url')
    .slice(0, 36);
/** The month grant's attributes: tokens and nano-USD granted in leases, and the shards that took one. */
const G = { tokens: 'gt', cost: 'gc', shards: 'sh' } as const;

export interface DynamoDbLedgerOptions {
  /**
   * How long a call held by a record without a hold of its own (its epoch's slot blocked by a move's
   * copy) lasts before it is taken for the trace of a crashed call and released. It must exceed the
   * longest a handler can live (the Lambda timeout), or a slow call's settle would find it gone.
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
  /** The scopes this instance has marked: each is marked once, then only admitted. */
  private readonly markedScopes = new Set<string>();
  /** A ledger's client by its id: a scope's ledger (`<tenant>#<kind>#<hash>`) is its tenant's data, under its session. */
  private readonly db: TenantScopedDynamoDb;

  constructor(
    db: TenantScopedDynamoDb,
    private readonly tableName: string,
    private readonly options: DynamoDbLedgerOptions,
  ) {
    this.db = (ledgerId) => db(tenantOfLedger(ledgerId));
  }

  reserve(tenant: TenantContext, request: Parameters<Ledger['reserve']>[1]): Promise<Reservation> {
    return unavailableWhenExhausted(() => admitCall(this, tenant, request));
  }

  /**
   * One reserve on `shard`, trying the window the shard was last seen in first: its counters and
   * the call's hold, in the epoch's slot (one conditional update) or by a reservation record (a
   * transaction with its put). A call held to the month alone takes its lease and its record, no
   * window. `exists` when the record is there already.
   */
  async tryReserve(
    attempt: AdmissionAttempt,
    shard: number,
    byRecord: boolean,
    seen?: ShardState,
  ): Promise<'admitted' | 'refused' | 'exists'> {
    const { tenant, estimate, nowMs, month, shards } = attempt;
    const terms = leaseTerms(tenant.limits);
    const lease = `${C.leaseTokens} >= :t AND ${C.leaseCost} >= :c AND ${C.termsTokens} = :mt AND ${C.termsCost} = :mc`;
    if (!attempt.perMinute) {
      return this.reserveByRecord(attempt, shard, {
        UpdateExpression: `ADD ${C.leaseTokens} :negT, ${C.leaseCost} :negC, ${C.open} :one`,
        ConditionExpression: lease,
        ExpressionAttributeValues: {
          ':t': estimate.tokens,
          ':c': estimate.costNanoUsd,
          ':negT': -estimate.tokens,
          ':negC': -estimate.costNanoUsd,
          ':one': 1,
          ':mt': terms.monthlyTokens,
          ':mc': terms.budgetNanoUsd,
        },
      });
    }
    const window = minuteWindow(nowMs);
    const hold = holdNames(slotOf(attempt.epoch));
    const values = {
      ':t': estimate.tokens,
      ':c': estimate.costNanoUsd,
      ':negT': -estimate.tokens,
      ':negC': -estimate.costNanoUsd,
      ':one': 1,
      ':w': window,
      ':mt': terms.monthlyTokens,
      ':mc': terms.budgetNanoUsd,
      ...(byRecord ? {} : { ':e': attempt.epoch, ':zero': 0, ':rid': reserveHash(attempt.requestId, attempt.nowMs) }),
    };
    // Held by the slot: it must be this epoch's or empty, and this request not its shard's last reserve.
    const held = byRecord
      ? { set: '', add: `${C.open} :one`, condition: '' }
      : {
          set: `, ${C.lastReserve} = :rid, #he = :e`,
          add: '#hn :one, #ht :t, #hc :c',
          condition: ` AND (attribute_not_exists(#hn) OR #he = :e OR (#hn = :zero AND #ht = :zero AND #hc = :zero)) AND (attribute_not_exists(${C.lastReserve}) OR ${C.lastReserve} <> :rid)`,
        };
    const names = byRecord
      ? undefined
      : { '#he': hold.epoch, '#hn': hold.requests, '#ht': hold.tokens, '#hc': hold.cost };
    const sameWindow = {
      UpdateExpression: `ADD ${C.windowRequests} :one, ${C.windowTokens} :t, ${C.leaseTokens} :negT, ${C.leaseCost} :negC, ${held.add}${held.set && ` SET ${held.set.slice(2)}`}`,
      ConditionExpression: `${C.window} = :w AND ${C.windowRequests} <= :maxReq AND ${C.windowTokens} <= :maxTok AND ${lease}${held.condition}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: {
        ...values,
        ':maxReq': shareOf(tenant.limits.requestsPerMinute, shards, shard) - 1,
        ':maxTok': shareOf(tenant.limits.tokensPerMinute, shards, shard) - estimate.tokens,
      },
    };
    const newWindow = {
      UpdateExpression: `SET ${C.window} = :w, ${C.windowRequests} = :one, ${C.windowTokens} = :t${held.set} ADD ${C.leaseTokens} :negT, ${C.leaseCost} :negC, ${held.add}`,
      ConditionExpression: `(attribute_not_exists(${C.window}) OR ${C.window} < :w) AND ${lease}${held.condition}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
    const windowKey = `${tenant.tenantId}/${shard}`;
    // The shard as just read names its minute, and so does the minute this function last admitted on it
    // in, if it is this one (a refusal then would be the other form's too). Else it opens the minute, or
    // another function did: each form is tried, unless this function never wrote to the shard (a refused
    // form costs a write unit, a read of the state less; the refusal's read tells which form).
    const last = this.lastWindow.get(windowKey);
    const variants = seen
      ? [seen.window === window ? sameWindow : newWindow]
      : last === window
        ? [sameWindow]
        : last === undefined
          ? [newWindow]
          : [newWindow, sameWindow];
    const key = shardKey(tenant.tenantId, shard, month);
    for (const variant of variants) {
      if (!byRecord) {
        const written = await this.update(tenant.tenantId, {
          TableName: this.tableName,
          Key: key,
          ...variant,
          ReturnConsumedCapacity: 'TOTAL',
        });
        if (written === undefined) continue;
        this.lastWindow.set(windowKey, window);
        // Past 1 KB (the cells of many days or models), every write of the item costs more: move them out.
        if (written > 1) await this.compactUsage(tenant.tenantId, key);
        return 'admitted';
      }
      const outcome = await this.reserveByRecord(attempt, shard, variant);
      if (outcome === 'admitted') this.lastWindow.set(windowKey, window);
      if (outcome !== 'refused') return outcome;
    }
    return 'refused';
  }

  /**
   * `update` of the shard item and the call's reservation record, put in one transaction conditional on
   * its absence: `exists` when the record is there already.
   */
  private async reserveByRecord(
    attempt: AdmissionAttempt,
    shard: number,
    update: Omit<NonNullable<TransactItem['Update']>, 'TableName' | 'Key'>,
  ): Promise<'admitted' | 'refused' | 'exists'> {
    const { tenant, estimate, nowMs, month } = attempt;
    const expiresAtMs = nowMs + (attempt.holdMs ?? this.options.reservationTtlMs);
    const record: StoredReservation = {
      t: estimate.tokens,
      c: estimate.costNanoUsd,
      s: shard,
      m: month,
      e: expiresAtMs,
    };
    const outcome = await this.transact(
      [
        { Update: { TableName: this.tableName, Key: shardKey(tenant.tenantId, shard, month), ...update } },
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
    if (outcome === 'done') return 'admitted';
    return outcome[1] ? 'exists' : 'refused';
  }

  /**
   * One conditional update, retried on throttling and lost answers: the write units it consumed (1 when
   * not asked or not told), undefined when its condition failed.
   */
  private async update(tenantId: string, input: UpdateCommandInput): Promise<number | undefined> {
    try {
      const answer = await withRetries(() => this.db(tenantId).send(new UpdateCommand(input)));
      return answer.ConsumedCapacity?.CapacityUnits ?? 1;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return undefined;
      throw error;
    }
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
            // Not when a call leased to it meanwhile: concurrent first calls of a month lease once, not each.
            ConditionExpression: `(attribute_not_exists(${C.termsTokens}) OR (${C.termsTokens} = :mt AND ${C.termsCost} = :mc)) AND (attribute_not_exists(${C.leaseTokens}) OR ${C.leaseTokens} < :needT OR ${C.leaseCost} < :needC)`,
            ExpressionAttributeValues: {
              ':t': amount.tokens,
              ':c': amount.costNanoUsd,
              ':mt': terms.monthlyTokens,
              ':mc': terms.budgetNanoUsd,
              ':exp': expiry,
              ':needT': attempt.estimate.tokens,
              ':needC': attempt.estimate.costNanoUsd,
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
    const { tenantId, estimate, reservedAtMs } = reservation;
    const day = dayKey(reservedAtMs);
    const auditPut = audit && {
      Put: { TableName: this.auditTable().tableName, Item: this.auditItem(tenantId, audit) },
    };
    // Each model the call ran counts a request of its own, at its own price.
    const cells = usageByModel(reservation, usage).flatMap((part) =>
      Object.entries({
        in: part.inputTokens,
        out: part.outputTokens,
        req: part.requests ?? 1,
        nusd: part.costNanoUsd,
      } satisfies Record<keyof typeof USAGE_FIELDS, number>).map(([field, value]) => ({
        field,
        model: part.model,
        value,
      })),
    );
    const refund = {
      tokens: estimate.tokens - usage.inputTokens - usage.outputTokens,
      costNanoUsd: estimate.costNanoUsd - usage.costNanoUsd,
    };
    const outcome =
      reservation.epoch === undefined
        ? await this.endReservation(
            reservation,
            refund.tokens,
            refund.costNanoUsd,
            {
              Update: {
                TableName: this.tableName,
                Key: usageKey(tenantId, reservation.shard, day),
                UpdateExpression: `SET ${TTL_ATTRIBUTE} = :exp ADD ${cells.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
                ExpressionAttributeNames: Object.fromEntries(
                  cells.map(({ field, model }, i) => [`#c${i}`, `${field}#${model}`]),
                ),
                ExpressionAttributeValues: {
                  ...Object.fromEntries(cells.map(({ value }, i) => [`:c${i}`, value])),
                  ':exp': monthExpiry(reservation.month),
                },
              },
            },
            auditPut,
          )
        : await this.endHold(
            reservation,
            refund,
            Object.fromEntries(cells.map(({ field, model, value }) => [usageCell(day, field, model), value])),
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
    const { estimate } = reservation;
    await (reservation.epoch === undefined
      ? this.endReservation(reservation, estimate.tokens, estimate.costNanoUsd)
      : this.endHold(reservation, estimate, {}));
  }

  /**
   * Ends a call held by its epoch's slot: takes its estimate out of the slot, gives `refund` back to
   * the lease and adds the usage `cells` (a day's, `usageCell`), with `also`, in one transaction whose
   * client token comes from the request (`transact`): a try whose answer was lost is answered success,
   * never applied twice. `released` when the slot no longer holds the call: released as abandoned
   * (nothing to give back, nothing billed).
   */
  private endHold(
    reservation: Reservation,
    refund: { tokens: number; costNanoUsd: number },
    cells: Readonly<Record<string, number>>,
    also?: TransactItem,
  ): Promise<'done' | 'released'> {
    const { tenantId, requestId, estimate, epoch = 0 } = reservation;
    const key = shardKey(tenantId, reservation.shard, reservation.month);
    const hold = holdNames(slotOf(epoch));
    const cellNames = Object.keys(cells);
    const update: TransactItem = {
      Update: {
        TableName: this.tableName,
        Key: key,
        UpdateExpression: `ADD ${C.leaseTokens} :lt, ${C.leaseCost} :lc, #hn :minusOne, #ht :negT, #hc :negC${cellNames.map((_, i) => `, #u${i} :u${i}`).join('')}`,
        // The slot is another epoch's once its calls were released as abandoned (`releaseSlot`).
        ConditionExpression: '#he = :e',
        ExpressionAttributeNames: {
          '#he': hold.epoch,
          '#hn': hold.requests,
          '#ht': hold.tokens,
          '#hc': hold.cost,
          ...Object.fromEntries(cellNames.map((name, i) => [`#u${i}`, name])),
        },
        ExpressionAttributeValues: {
          ':e': epoch,
          ':lt': refund.tokens,
          ':lc': refund.costNanoUsd,
          ':minusOne': -1,
          ':negT': -estimate.tokens,
          ':negC': -estimate.costNanoUsd,
          ...Object.fromEntries(cellNames.map((name, i) => [`:u${i}`, cells[name]])),
        },
      },
    };
    return unavailableWhenExhausted(async () => {
      try {
        const outcome = await this.transact([update, ...(also ? [also] : [])], tenantId, {
          attempts: END_ATTEMPTS,
          token: (n) => clientToken(tenantId, requestId, reservation.reservedAtMs, n),
        });
        return outcome === 'done' ? 'done' : 'released';
      } catch (error) {
        // Its token ended this call already with other items (a settle after its release, or the reverse).
        if ((error as Error).name === 'IdempotentParameterMismatchException') return 'released';
        throw error;
      }
    });
  }

  /**
   * Moves the usage cells of the shard item at `key` into their days' `USAGE#` items, in one
   * transaction conditional on the cells as read (a settle adding to one meanwhile cancels it, and a
   * later reserve tries again): the item every call writes twice stays under 1 KB whatever the days
   * and models its cells come from.
   */
  private async compactUsage(tenantId: string, key: Key): Promise<void> {
    const item = await this.getItem(tenantId, key);
    const month = key.sk.slice(SHARD_PREFIX.length);
    const moved = Object.entries(item ?? {}).flatMap(([name, value]) => {
      const cell = USAGE_CELL.exec(name);
      return cell ? [{ name, dd: cell[1], dayName: `${cell[2]}#${cell[3]}`, value }] : [];
    });
    if (moved.length === 0) return;
    const days = [...new Set(moved.map((cell) => cell.dd))];
    await this.transact(
      [
        ...days.map((dd): TransactItem => {
          const cells = moved.filter((cell) => cell.dd === dd);
          return {
            Update: {
              TableName: this.tableName,
              Key: { pk: key.pk, sk: `${USAGE_PREFIX}${month}-${dd}` },
              UpdateExpression: `SET ${TTL_ATTRIBUTE} = :exp ADD ${cells.map((_, i) => `#f${i} :f${i}`).join(', ')}`,
              ExpressionAttributeNames: Object.fromEntries(cells.map((cell, i) => [`#f${i}`, cell.dayName])),
              ExpressionAttributeValues: {
                ...Object.fromEntries(cells.map((cell, i) => [`:f${i}`, cell.value])),
                ':exp': monthExpiry(month),
              },
            },
          };
        }),
        {
          Update: {
            TableName: this.tableName,
            Key: key,
            UpdateExpression: `REMOVE ${moved.map((_, i) => `#m${i}`).join(', ')}`,
            ConditionExpression: moved.map((_, i) => `#m${i} = :m${i}`).join(' AND '),
            ExpressionAttributeNames: Object.fromEntries(moved.map((cell, i) => [`#m${i}`, cell.name])),
            ExpressionAttributeValues: Object.fromEntries(moved.map((cell, i) => [`:m${i}`, cell.value])),
          },
        },
      ],
      tenantId,
    ).catch((error: unknown) => {
      // Busy: a later reserve that finds the item past 1 KB moves them.
      if (!isRetryable(error)) throw error;
    });
  }

  private async getItem(tenantId: string, key: Key): Promise<Record<string, unknown> | undefined> {
    const answer = await withRetries(() =>
      this.db(tenantId).send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return answer.Item;
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
        { attempts: END_ATTEMPTS },
      ),
    );
  }

  /**
   * Releases what crashed calls left: each stale slot of `seen` gives what it holds back to its
   * shard's lease (conditional on it as read), and, when any shard holds a record, every record of
   * the tenant past its hold is ended.
   */
  async releaseAbandoned(attempt: AdmissionAttempt, seen: readonly ShardState[]): Promise<void> {
    const { shards, nowMs, month } = attempt;
    const { tenantId } = attempt.tenant;
    for (const shard of seen) {
      const stale = shard.holds.filter((hold) => isStale(hold, attempt.epoch));
      if (stale.length === 0 || (await this.copiedNotCaughtUp(tenantId, shardKey(tenantId, shard.shard, month)))) {
        continue;
      }
      for (const hold of stale) await this.releaseSlot(tenantId, shardKey(tenantId, shard.shard, month), hold);
    }
    if (!seen.some((shard) => shard.open > 0)) return;
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

  /** Empties a stale slot into its shard's lease, if it is as it was read. */
  private async releaseSlot(tenantId: string, key: Key, hold: SlotHold): Promise<void> {
    const names = holdNames(hold.slot);
    await this.update(tenantId, {
      TableName: this.tableName,
      Key: key,
      // Marked released, not of its epoch: a settle that comes after all the same (a clock far behind) bills nothing.
      UpdateExpression: `SET #he = :released, #hn = :zero, #ht = :zero, #hc = :zero ADD ${C.leaseTokens} :t, ${C.leaseCost} :c`,
      ConditionExpression: '#he = :e AND #hn = :n AND #ht = :t AND #hc = :c',
      ExpressionAttributeNames: { '#he': names.epoch, '#hn': names.requests, '#ht': names.tokens, '#hc': names.cost },
      ExpressionAttributeValues: {
        ':released': -1,
        ':zero': 0,
        ':e': hold.epoch,
        ':n': hold.requests,
        ':t': hold.tokens,
        ':c': hold.costNanoUsd,
      },
    });
  }

  /**
   * A move copied this shard item into this plane and has not caught up yet: its slots may hold the
   * other plane's calls, whose settles come with the catch-up; released here too, their estimates would
   * be given back twice.
   */
  private async copiedNotCaughtUp(tenantId: string, key: Key): Promise<boolean> {
    return (await this.getItem(tenantId, { pk: key.pk, sk: `${BASE_PREFIX}${key.sk}` })) !== undefined;
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
    const shardKeys = Array.from({ length: shards }, (_, s) => shardKey(tenantId, s, month));
    const items = await this.consistentBatchGet(tenantId, [grantKey(tenantId, month), record, ...shardKeys]);
    const at = (key: Key) => items.get(`${key.pk}/${key.sk}`);
    const grant = at(grantKey(tenantId, month)) ?? {};
    const stored = at(record) as StoredReservation | undefined;
    const shardItems = shardKeys.map((key) => at(key) ?? {});
    const lastReserve = reserveHash(attempt.requestId, attempt.nowMs);
    const slotHeld = shardItems.findIndex((item) => item[C.lastReserve] === lastReserve);
    // Shards a lease went to under limits that gave more of them: read only when there are some.
    const retired = [...((grant[G.shards] as Set<number> | undefined) ?? [])].filter((shard) => shard >= shards);
    const retiredKeys = retired.map((shard) => shardKey(tenantId, shard, month));
    const retiredItems = retired.length > 0 ? await this.consistentBatchGet(tenantId, retiredKeys) : new Map();
    return {
      admitted: stored
        ? { shard: stored.s, month: stored.m }
        : slotHeld >= 0
          ? { shard: slotHeld, month, epoch: attempt.epoch }
          : undefined,
      grant: { tokens: Number(grant[G.tokens] ?? 0), costNanoUsd: Number(grant[G.cost] ?? 0) },
      shards: shardItems.map((item, shard) => shardState(item, shard)),
      retired: retired.map((shard, i) =>
        shardState(retiredItems.get(`${retiredKeys[i].pk}/${retiredKeys[i].sk}`) ?? {}, shard),
      ),
    };
  }

  /** Items by `pk/sk`, read strongly consistent, unprocessed keys asked again a few times. */
  private async consistentBatchGet(tenantId: string, keys: readonly Key[]) {
    const items = new Map<string, Record<string, unknown>>();
    let pending: Key[] = [...keys];
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
    return items;
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
    // Each shard's day items (cells moved out of its month items) and its month items (the cells since).
    const between = (shard: number, from: string, to: string) =>
      this.queryAll(tenantId, {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': shardPartition(tenantId, shard), ':from': from, ':to': to },
      });
    const items = (
      await Promise.all(
        [...shards].flatMap((shard) => [
          between(shard, `${USAGE_PREFIX}${range.from}`, `${USAGE_PREFIX}${range.to}`),
          between(shard, `${SHARD_PREFIX}${range.from.slice(0, 7)}`, `${SHARD_PREFIX}${range.to.slice(0, 7)}`),
        ]),
      )
    ).flat();
    return mergeUsage(
      items.map((item) => ({ tenantId, item })),
      range,
    ).map(({ tenantId: _, ...record }) => record);
  }

  /**
   * A scope is admitted by the same ledger as its tenant, under an id of its own (its partitions
   * `TENANT#<tenant>#<kind>#<hash of its id>`, which the tenant's session reaches), with its own
   * limits: every rule of the tenant's ledger holds for it, exactness under concurrency, crashed
   * calls given back, usage by day and model. A marker on the tenant's partition names it, so its
   * usage can be listed and offboarding finds it.
   */
  async reserveScope(
    tenant: TenantContext,
    scope: LedgerScope,
    request: Parameters<Ledger['reserve']>[1],
  ): Promise<Reservation> {
    const ledgerId = scopeLedgerId(tenant.tenantId, scope);
    if (!this.markedScopes.has(ledgerId)) {
      await this.markScope(tenant.tenantId, scope, ledgerId);
      this.markedScopes.add(ledgerId);
    }
    return this.reserve({ ...tenant, tenantId: ledgerId, limits: scope.limits }, request);
  }

  private async markScope(tenantId: string, scope: LedgerScope, ledgerId: string): Promise<void> {
    try {
      await withRetries(() =>
        this.db(tenantId).send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...scopeMarkerKey(tenantId, ledgerId),
              [SCOPE_ATTRIBUTES.kind]: scope.kind,
              [SCOPE_ATTRIBUTES.id]: scope.id,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  /** The tenant's scopes (of `kind`): their ids, and their ledgers'. */
  private async scopes(tenantId: string, kind?: LedgerScope['kind']) {
    const markers = await this.queryAll(tenantId, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ':prefix': `${SCOPE_PREFIX}${kind ?? ''}` },
    });
    return markers.map((marker) => ({
      id: String(marker[SCOPE_ATTRIBUTES.id]),
      ledgerId: `${tenantId}#${String(marker.sk).slice(SCOPE_PREFIX.length)}`,
    }));
  }

  async scopeUsage(
    tenant: TenantContext,
    kind: LedgerScope['kind'],
    range: { from: string; to: string },
  ): Promise<ScopeUsageRecord[]> {
    const scopes = await this.scopes(tenant.tenantId, kind);
    const records: ScopeUsageRecord[] = [];
    // A few scopes at a time: a tenant may have many end users, each a few queries.
    for (let start = 0; start < scopes.length; start += SCOPES_READ_AT_ONCE) {
      const usages = await Promise.all(
        scopes.slice(start, start + SCOPES_READ_AT_ONCE).map(async (scope) =>
          (await this.usage({ ...tenant, tenantId: scope.ledgerId }, range)).map((record) => ({
            ...record,
            scope: scope.id,
          })),
        ),
      );
      records.push(...usages.flat());
    }
    return records;
  }

  async deleteAll(tenantId: string): Promise<number> {
    let deleted = 0;
    // Its scopes' ledgers first: their markers, on its own partition, name them.
    for (const scope of await this.scopes(tenantId)) {
      for (const pk of ledgerPartitions(scope.ledgerId))
        deleted += await deletePartition(this.db(tenantId), this.tableName, pk);
    }
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
   * One transaction, retried on throttling, conflicts and lost answers: `done`, or per item whether its
   * condition failed. Without `token`, every one here is guarded by a condition, so a retry of one that
   * did land is cancelled instead of counting twice. With it, `token(n)` is the client token of its tries
   * after `n - 1` conflicts: a try whose outcome is unknown (timed out, lost) is sent again with the same
   * token and answered success if it landed; only a try DynamoDB refused as a whole gets a new one.
   */
  private transact(
    items: TransactItem[],
    tenantId: string,
    options: { attempts?: number; token?: (n: number) => string } = {},
  ): Promise<'done' | boolean[]> {
    let conflicts = 0;
    return withRetries(async () => {
      try {
        await this.db(tenantId).send(
          new TransactWriteCommand({ TransactItems: items, ClientRequestToken: options.token?.(conflicts + 1) }),
        );
        return 'done' as const;
      } catch (error) {
        const reasons = (error as { name?: string; CancellationReasons?: { Code?: string }[] }).CancellationReasons;
        if ((error as Error).name !== 'TransactionCanceledException' || !reasons) throw error;
        if (reasons.some((r) => r.Code === 'TransactionConflict' || r.Code === 'ThrottlingError')) {
          conflicts++;
          throw Object.assign(new Error('transaction conflict'), { name: 'TransactionConflictException' });
        }
        if (reasons.some((r) => r.Code !== 'None' && r.Code !== 'ConditionalCheckFailed')) throw error;
        return reasons.map((r) => r.Code === 'ConditionalCheckFailed');
      }
    }, options.attempts);
  }
}

/**
 * Tries of a settle or release (a reserve gets withRetries' default 4). A settle comes after the model
 * answered: giving up would answer 503 for a call that may have been billed (its write landed, its answer
 * lost), which the client then retries and pays twice; on a hot tenant concurrent settles conflict on the
 * shard item, so it keeps trying for a few seconds (backoff at most 1 s a try) before it does.
 */
const END_ATTEMPTS = 10;

/** A shard item as admission reads it (absent: `{}`, a shard nothing was admitted on this month). */
function shardState(item: Readonly<Record<string, unknown>>, shard: number): ShardState {
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
    holds: Array.from({ length: HOLD_SLOTS }, (_, slot) => slot).flatMap((slot) => {
      const names = holdNames(slot);
      if (item[names.epoch] === undefined) return [];
      return [
        {
          slot,
          epoch: Number(item[names.epoch]),
          requests: Number(item[names.requests] ?? 0),
          tokens: Number(item[names.tokens] ?? 0),
          costNanoUsd: Number(item[names.cost] ?? 0),
        },
      ];
    }),
  };
}

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
          FilterExpression: 'begins_with(sk, :days) OR sk = :month',
          ExpressionAttributeValues: { ':days': `${USAGE_PREFIX}${month}`, ':month': `${SHARD_PREFIX}${month}` },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const tenantId = tenantOfPartition(String(item.pk));
        // A scope's usage is its tenant's counted again (by key, by end user): the bill counts the tenant's once.
        if (!tenantId.includes('#')) items.push({ tenantId, item });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return mergeUsage(items);
  }
}

/**
 * A ledger item's counters: what its writes add to (leases, held calls, what the month has granted
 * and to which shards, usage cells), as a move to a silo catches them up.
 */
export function ledgerCounters(item: Readonly<Record<string, unknown>>): string[] {
  const sk = String(item.sk);
  if (sk.startsWith(SHARD_PREFIX)) {
    return [
      C.leaseTokens,
      C.leaseCost,
      C.open,
      ...Array.from({ length: HOLD_SLOTS }, (_, slot) => {
        const { requests, tokens, cost } = holdNames(slot);
        return [requests, tokens, cost];
      }).flat(),
      ...Object.keys(item).filter((name) => USAGE_CELL.test(name)),
    ];
  }
  if (sk.startsWith(GRANT_PREFIX)) return [G.tokens, G.cost, G.shards];
  if (sk.startsWith(USAGE_PREFIX)) return Object.keys(item).filter((name) => name.includes('#'));
  return [];
}

/** The tenant a ledger partition key belongs to: `TENANT#<id>` or `TENANT#<id>#S<n>`. */
function tenantOfPartition(pk: string): string {
  return pk.slice(TENANT_PARTITION_PREFIX.length).replace(/#S\d+$/, '');
}

/** The tenant a ledger belongs to: itself, or the tenant of a scope's ledger (tenant ids hold no `#`). */
function tenantOfLedger(ledgerId: string): string {
  const end = ledgerId.indexOf('#');
  return end < 0 ? ledgerId : ledgerId.slice(0, end);
}

/**
 * A scope's ledger id: its tenant's, its kind, and a hash of its id (an end user's id is the
 * caller's text: hashed, no id can reach into another's partitions, and every key stays short).
 */
export function scopeLedgerId(tenantId: string, scope: Pick<LedgerScope, 'kind' | 'id'>): string {
  return `${tenantId}#${scope.kind}#${createHash('sha256').update(scope.id).digest('base64url').slice(0, 22)}`;
}

const scopeMarkerKey = (tenantId: string, ledgerId: string): Key => ({
  pk: tenantKey(tenantId),
  sk: `${SCOPE_PREFIX}${ledgerId.slice(tenantId.length + 1)}`,
});

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

/**
 * Usage summed into one record per tenant, day and model, from a shard's days (`USAGE#<day>`, a cell
 * `<field>#<model>` each) and its month items (a cell `<dd>|<field>#<model>` each), within `range`.
 */
function mergeUsage(
  items: readonly { tenantId: string; item: Record<string, unknown> }[],
  range?: { from: string; to: string },
): TenantUsageRecord[] {
  const records = new Map<string, { -readonly [K in keyof TenantUsageRecord]: TenantUsageRecord[K] }>();
  for (const { tenantId, item } of items) {
    const sk = String(item.sk);
    const month = sk.startsWith(SHARD_PREFIX) ? sk.slice(SHARD_PREFIX.length) : undefined;
    for (const [name, value] of Object.entries(item)) {
      const cell = month ? USAGE_CELL.exec(name) : /^()([a-z]+)#(.+)$/.exec(name);
      if (!cell || !(cell[2] in USAGE_FIELDS)) continue;
      const date = month ? `${month}-${cell[1]}` : sk.slice(USAGE_PREFIX.length);
      if (range && (date < range.from || date > range.to)) continue;
      const field = cell[2] as keyof typeof USAGE_FIELDS;
      const model = cell[3];
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
