import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TENANT_PARTITION_PREFIX, TTL_ATTRIBUTE } from '../../contract/tables';
import { PlatformError } from '../core/errors';
import {
  admissionThresholds,
  dayKey,
  type Estimate,
  type LedgerCounters,
  minuteWindow,
  monthKey,
  refusal,
  startOfNextMonthMs,
} from '../core/limits';
import type { ActualUsage, Ledger, Reservation, TenantUsageRecord, UsageRecord } from '../core/ports';
import { type TenantContext, tenantKey } from '../core/tenant';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { deletePartition } from './dynamodb-partition';
import { isRetryable, withRetries } from './retry';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

/** Month items outlive their month by this long, for late questions about a bill. */
const MONTH_RETENTION_SECONDS = 400 * 24 * 3600;
/** Tries of the conditional writes before a request whose limits keep moving is told to retry. */
const MAX_ADMISSION_ROUNDS = 3;
const MONTH_PREFIX = 'QUOTA#';
const RESERVATION_PREFIX = 'R#';
/** Abandoned reservations released in one write: an expression of 50 names stays far below DynamoDB's 4 KB. */
const RELEASE_BATCH = 50;
const USAGE_PREFIX = 'U#';
const USAGE_FIELDS = { in: 'inputTokens', out: 'outputTokens', req: 'requests', nusd: 'costNanoUsd' } as const;
/**
 * The month item's counters, short because every reserve and settle writes them: the current
 * minute window, its requests and tokens, and the month's tokens and cost in nano-dollars.
 */
const C = { window: 'rw', windowRequests: 'rr', windowTokens: 'rt', monthTokens: 'tok', monthCost: 'nusd' } as const;

export interface DynamoDbLedgerOptions {
  /**
   * An unsettled reservation older than this is taken for the trace of a crashed call and released.
   * It must exceed the longest a handler can live (the Lambda timeout), or a slow call's settle
   * would find its reservation gone.
   */
  readonly reservationTtlMs: number;
}

interface StoredReservation {
  /** Reserved tokens and nano-USD. */
  readonly t: number;
  readonly c: number;
  /** When it may be released as abandoned (epoch ms). */
  readonly e: number;
}

const monthItemKey = (tenantId: string, month: string) => ({ pk: tenantKey(tenantId), sk: `${MONTH_PREFIX}${month}` });
const reservationAttribute = (requestId: string) => `${RESERVATION_PREFIX}${requestId}`;
/** `U#<dd>#<model>#<field>`: one settled-usage cell per day and model, inside the month item. */
const usageAttribute = (day: string, model: string, field: keyof typeof USAGE_FIELDS) =>
  `${USAGE_PREFIX}${day.slice(8, 10)}#${model}#${field}`;

/**
 * The usage ledger: one item per tenant and month (`TENANT#<id>` / `QUOTA#<yyyy-mm>`) holding
 * everything metering needs, so that an admitted call costs exactly two writes and no read:
 *
 * - reserve: one conditional UpdateItem checks requests and tokens per minute, monthly tokens and
 *   budget at once (`rw`/`rr`/`rt` for the minute window, `tok`/`nusd` for the month), adds the
 *   estimate and records the reservation `R#<requestId>`; it refuses a request id reserved before,
 *   so a retried reserve never counts twice;
 * - settle: one conditional UpdateItem removes `R#<requestId>`, replaces its estimate with the
 *   actual tokens and cost, and adds them to the day-and-model usage cells `U#<dd>#<model>#...`;
 *   it applies only while the reservation exists, so it is idempotent by request id.
 *
 * A reservation whose call crashed before settling expires: the tenant's next admitted reserve
 * sees it in the item its write returns (no read) and releases it, and when it is what stands
 * between a tenant and its limit the refused path releases it and tries again, so it never blocks.
 * Every call signs with the tenant's scoped credentials, so IAM confines it to that partition.
 */
export class DynamoDbLedger implements Ledger {
  /** The minute window each tenant was last admitted in: picks which of the two writes to try first. */
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
    return unavailableWhenExhausted(() => this.admit(tenant, request));
  }

  private async admit(
    tenant: TenantContext,
    request: { requestId: string; model: string; estimate: Estimate; nowMs: number; holdMs?: number },
  ): Promise<Reservation> {
    const { estimate, nowMs } = request;
    const thresholds = admissionThresholds(tenant.limits, estimate);
    const window = minuteWindow(nowMs);
    const month = monthKey(nowMs);
    const key = monthItemKey(tenant.tenantId, month);
    const stored: StoredReservation = {
      t: estimate.tokens,
      c: estimate.costNanoUsd,
      e: nowMs + (request.holdMs ?? this.options.reservationTtlMs),
    };
    const common = {
      TableName: this.tableName,
      Key: key,
      ExpressionAttributeNames: { '#r': reservationAttribute(request.requestId) },
    };
    const monthValues = {
      ':tokens': estimate.tokens,
      ':cost': estimate.costNanoUsd,
      ':w': window,
      ':one': 1,
      ':res': stored,
      ':maxTok': thresholds.maxMonthTokensBefore,
      ':maxCost': thresholds.maxMonthCostNanoUsdBefore,
    };
    const sameWindow: UpdateCommandInput = {
      ...common,
      UpdateExpression: `SET #r = :res ADD ${C.windowRequests} :one, ${C.windowTokens} :tokens, ${C.monthTokens} :tokens, ${C.monthCost} :cost`,
      ConditionExpression:
        `attribute_not_exists(#r) AND ${C.window} = :w AND ${C.windowRequests} <= :maxReq AND ${C.windowTokens} <= :maxWinTok` +
        ` AND ${C.monthTokens} <= :maxTok AND ${C.monthCost} <= :maxCost`,
      ExpressionAttributeValues: {
        ...monthValues,
        ':maxReq': thresholds.maxWindowRequestsBefore,
        ':maxWinTok': thresholds.maxWindowTokensBefore,
      },
    };
    const newWindow: UpdateCommandInput = {
      ...common,
      UpdateExpression:
        `SET ${C.window} = :w, ${C.windowRequests} = :one, ${C.windowTokens} = :tokens, ${TTL_ATTRIBUTE} = :exp, #r = :res` +
        ` ADD ${C.monthTokens} :tokens, ${C.monthCost} :cost`,
      ConditionExpression:
        `attribute_not_exists(#r) AND (attribute_not_exists(${C.window}) OR ${C.window} < :w)` +
        ` AND (attribute_not_exists(${C.monthTokens}) OR (${C.monthTokens} <= :maxTok AND ${C.monthCost} <= :maxCost))`,
      ExpressionAttributeValues: {
        ...monthValues,
        ':exp': Math.floor(startOfNextMonthMs(nowMs) / 1000) + MONTH_RETENTION_SECONDS,
      },
    };
    const reservation: Reservation = {
      tenantId: tenant.tenantId,
      requestId: request.requestId,
      model: request.model,
      month,
      estimate,
      reservedAtMs: nowMs,
    };

    const attempts =
      this.lastWindow.get(tenant.tenantId) === window ? [sameWindow, newWindow] : [newWindow, sameWindow];
    // Only the refused path reads: to see whether an earlier try of this very request got through,
    // to release abandoned reservations, and to say which limit refused it. When no limit does
    // (settles gave room back since the write was refused), it tries again.
    for (let round = 1; ; round++) {
      for (const attempt of attempts) {
        const admitted = await this.conditionalUpdate(tenant.tenantId, { ...attempt, ReturnValues: 'ALL_NEW' }).catch(
          // The item is at DynamoDB's 400 KB with calls in flight: refused like a full window, so the
          // refused path releases what crashed calls left (or says 429), never a lockout.
          (error: unknown) => {
            if (isItemTooLarge(error)) return undefined;
            throw error;
          },
        );
        if (admitted) {
          this.lastWindow.set(tenant.tenantId, window);
          // The item comes back with the write at no read cost: release what crashed calls left, now.
          await this.releaseAbandoned(tenant.tenantId, key, admitted, nowMs);
          return reservation;
        }
      }
      const item = await this.monthItem(tenant.tenantId, key);
      if (item[reservationAttribute(request.requestId)] !== undefined) return reservation;
      const released = await this.releaseAbandoned(tenant.tenantId, key, item, nowMs);
      const refused = released > 0 ? undefined : refusal(tenant.limits, estimate, counters(item), nowMs);
      if (refused) throw refused;
      if (round === MAX_ADMISSION_ROUNDS) {
        throw new PlatformError('rate_limited', 'too many concurrent requests, retry shortly', 1);
      }
    }
  }

  async settle(reservation: Reservation, usage: ActualUsage): Promise<void> {
    const { tenantId, month, estimate, model, reservedAtMs, requestId } = reservation;
    const day = dayKey(reservedAtMs);
    await this.removeReservation(tenantId, month, requestId, {
      UpdateExpression: `REMOVE #r ADD ${C.monthTokens} :tokens, ${C.monthCost} :cost, #in :in, #out :out, #req :one, #nusd :actualCost`,
      ExpressionAttributeNames: {
        '#in': usageAttribute(day, model, 'in'),
        '#out': usageAttribute(day, model, 'out'),
        '#req': usageAttribute(day, model, 'req'),
        '#nusd': usageAttribute(day, model, 'nusd'),
      },
      ExpressionAttributeValues: {
        ':tokens': usage.inputTokens + usage.outputTokens - estimate.tokens,
        ':cost': usage.costNanoUsd - estimate.costNanoUsd,
        ':in': usage.inputTokens,
        ':out': usage.outputTokens,
        ':one': 1,
        ':actualCost': usage.costNanoUsd,
      },
    });
  }

  async release(reservation: Reservation): Promise<void> {
    const { estimate } = reservation;
    await this.removeReservation(reservation.tenantId, reservation.month, reservation.requestId, {
      UpdateExpression: `REMOVE #r ADD ${C.monthTokens} :tokens, ${C.monthCost} :cost`,
      ExpressionAttributeValues: { ':tokens': -estimate.tokens, ':cost': -estimate.costNanoUsd },
    });
  }

  async usage(tenant: TenantContext, range: { from: string; to: string }): Promise<UsageRecord[]> {
    const records: UsageRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db(tenant.tenantId).send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': tenantKey(tenant.tenantId),
            ':from': `${MONTH_PREFIX}${range.from.slice(0, 7)}`,
            ':to': `${MONTH_PREFIX}${range.to.slice(0, 7)}`,
          },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? [])
        records.push(...usageRecords(item).filter((r) => r.date >= range.from && r.date <= range.to));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  async deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId));
  }

  /** The one write that ends a reservation. */
  private async removeReservation(
    tenantId: string,
    month: string,
    requestId: string,
    update: Pick<UpdateCommandInput, 'UpdateExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>,
  ): Promise<void> {
    await unavailableWhenExhausted(() =>
      this.conditionalUpdate(tenantId, {
        TableName: this.tableName,
        Key: monthItemKey(tenantId, month),
        ...update,
        // Gone already: an earlier try of this settle got through, or it was released as abandoned.
        ConditionExpression: 'attribute_exists(#r)',
        ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#r': reservationAttribute(requestId) },
      }),
    );
  }

  private async releaseAbandoned(
    tenantId: string,
    key: { pk: string; sk: string },
    item: Record<string, unknown>,
    nowMs: number,
  ) {
    const abandoned = Object.entries(item).filter(
      ([name, value]) => name.startsWith(RESERVATION_PREFIX) && (value as StoredReservation).e < nowMs,
    ) as [string, StoredReservation][];
    // In batches, each all or nothing (every one still there); a batch that raced a settle goes one by one.
    for (let i = 0; i < abandoned.length; i += RELEASE_BATCH) {
      const batch = abandoned.slice(i, i + RELEASE_BATCH);
      if (await this.releaseAll(tenantId, key, batch)) continue;
      for (const one of batch) await this.releaseAll(tenantId, key, [one]);
    }
    return abandoned.length;
  }

  /** Removes these reservations and gives their estimates back, if every one is still there. */
  private releaseAll(tenantId: string, key: { pk: string; sk: string }, reservations: [string, StoredReservation][]) {
    const names = Object.fromEntries(reservations.map(([name], i) => [`#r${i}`, name]));
    return this.conditionalUpdate(tenantId, {
      TableName: this.tableName,
      Key: key,
      UpdateExpression: `REMOVE ${Object.keys(names).join(', ')} ADD ${C.monthTokens} :tokens, ${C.monthCost} :cost`,
      ConditionExpression: Object.keys(names)
        .map((name) => `attribute_exists(${name})`)
        .join(' AND '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: {
        ':tokens': -reservations.reduce((sum, [, r]) => sum + r.t, 0),
        ':cost': -reservations.reduce((sum, [, r]) => sum + r.c, 0),
      },
    });
  }

  /**
   * One conditional write, retried on throttling and lost answers. Every write here is idempotent
   * (guarded by its reservation's presence or absence), so a retry of a write that did land fails
   * its condition instead of counting twice.
   */
  /** The item's attributes as the write asked for them (`ReturnValues`) when it applied; undefined when its condition failed. */
  private async conditionalUpdate(
    tenantId: string,
    input: UpdateCommandInput,
  ): Promise<Record<string, unknown> | undefined> {
    return withRetries(async () => {
      try {
        const { Attributes } = await this.db(tenantId).send(new UpdateCommand(input));
        return Attributes ?? {};
      } catch (error) {
        if (isConditionalCheckFailure(error)) return undefined;
        throw error;
      }
    });
  }

  private async monthItem(tenantId: string, key: { pk: string; sk: string }): Promise<Record<string, unknown>> {
    const { Item: item } = await withRetries(() =>
      this.db(tenantId).send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return item ?? {};
  }
}

/**
 * Month items of every tenant, for the operator's report. Runs with the admin function's own
 * credentials (a Scan, which no tenant session may do), off every tenant's hot path.
 */
export class DynamoDbLedgerReports {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async monthOfAllTenants(month: string): Promise<TenantUsageRecord[]> {
    const records: TenantUsageRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'sk = :month',
          ExpressionAttributeValues: { ':month': `${MONTH_PREFIX}${month}` },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const tenantId = String(item.pk).slice(TENANT_PARTITION_PREFIX.length);
        records.push(...usageRecords(item).map((record) => ({ tenantId, ...record })));
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }
}

/**
 * DynamoDB still throttling or unreachable after the retries: a 503 the caller may retry. Both the
 * reserve and the settle are idempotent by request id, so nothing is counted twice when they do.
 */
async function unavailableWhenExhausted<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (isRetryable(error)) throw new PlatformError('upstream_unavailable', 'metering is busy, retry shortly', 1);
    throw error;
  }
}

function counters(item: Record<string, unknown>): LedgerCounters {
  return {
    window: Number(item[C.window] ?? -1),
    windowRequests: Number(item[C.windowRequests] ?? 0),
    windowTokens: Number(item[C.windowTokens] ?? 0),
    monthTokens: Number(item[C.monthTokens] ?? 0),
    monthCostNanoUsd: Number(item[C.monthCost] ?? 0),
  };
}

/** The usage cells of one month item, one record per day and model. */
function usageRecords(item: Record<string, unknown>): UsageRecord[] {
  const month = String(item.sk).slice(MONTH_PREFIX.length);
  const cells = new Map<string, { -readonly [K in keyof UsageRecord]: UsageRecord[K] }>();
  for (const [name, value] of Object.entries(item)) {
    if (!name.startsWith(USAGE_PREFIX)) continue;
    const [, dd, model, field] = name.split('#');
    const cell = cells.get(`${dd}#${model}`) ?? {
      date: `${month}-${dd}`,
      model,
      requests: 0,
      inputTokens: 0,
      outputTokens: 0,
      costNanoUsd: 0,
    };
    cell[USAGE_FIELDS[field as keyof typeof USAGE_FIELDS]] = Number(value);
    cells.set(`${dd}#${model}`, cell);
  }
  return [...cells.values()];
}

/** DynamoDB refusing a write that would grow an item past 400 KB. */
function isItemTooLarge(error: unknown): boolean {
  return (
    (error as { name?: string }).name === 'ValidationException' &&
    /item size.*(exceeded|maximum)/i.test((error as Error).message)
  );
}
