import { GetCommand, QueryCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
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
import { type TenantContext, tenantKey } from '../core/tenant';
import type { ActualUsage, Ledger, Reservation, UsageRecord } from '../ports';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { deletePartition } from './dynamodb-partition';
import type { TenantScopedDynamoDb } from './tenant-scoped-dynamodb';

/** Counter items outlive their month by this long, for late settles and support questions. */
const COUNTER_RETENTION_SECONDS = 60 * 24 * 3600;

const quotaKey = (tenantId: string, month: string) => ({ pk: tenantKey(tenantId), sk: `QUOTA#${month}` });
const usageKey = (tenantId: string, day: string, model: string) => ({
  pk: tenantKey(tenantId),
  sk: `USAGE#${day}#${model}`,
});

/**
 * The usage ledger on one DynamoDB table (pk = TENANT#<id>).
 *
 * `QUOTA#<yyyy-mm>` holds the month's tokens and cost (reserved or settled) and the current minute
 * window's request and token counts, so one conditional UpdateItem checks every limit at once and
 * the hot path reads nothing. `USAGE#<yyyy-mm-dd>#<model>` holds settled usage for reports.
 * Every call signs with the tenant's scoped credentials, so IAM confines it to that partition.
 */
export class DynamoDbLedger implements Ledger {
  /** The minute window each tenant was last admitted in: picks which of the two writes to try first. */
  private readonly lastWindow = new Map<string, number>();

  constructor(
    private readonly db: TenantScopedDynamoDb,
    private readonly tableName: string,
  ) {}

  async reserve(
    tenant: TenantContext,
    request: { requestId: string; model: string; estimate: Estimate; nowMs: number },
  ): Promise<Reservation> {
    const { estimate, nowMs } = request;
    const thresholds = admissionThresholds(tenant.limits, estimate);
    const window = minuteWindow(nowMs);
    const month = monthKey(nowMs);
    const key = quotaKey(tenant.tenantId, month);
    const monthValues = {
      ':tokens': estimate.tokens,
      ':cost': estimate.costNanoUsd,
      ':w': window,
      ':maxTok': thresholds.maxMonthTokensBefore,
      ':maxCost': thresholds.maxMonthCostNanoUsdBefore,
    };
    const sameWindow: UpdateCommandInput = {
      TableName: this.tableName,
      Key: key,
      UpdateExpression: 'ADD rr :one, rt :tokens, tok :tokens, nusd :cost',
      ConditionExpression: 'rw = :w AND rr <= :maxReq AND rt <= :maxWinTok AND tok <= :maxTok AND nusd <= :maxCost',
      ExpressionAttributeValues: {
        ...monthValues,
        ':one': 1,
        ':maxReq': thresholds.maxWindowRequestsBefore,
        ':maxWinTok': thresholds.maxWindowTokensBefore,
      },
    };
    const newWindow: UpdateCommandInput = {
      TableName: this.tableName,
      Key: key,
      UpdateExpression: 'SET rw = :w, rr = :one, rt = :tokens, expiresAt = :exp ADD tok :tokens, nusd :cost',
      ConditionExpression:
        '(attribute_not_exists(rw) OR rw < :w) AND (attribute_not_exists(tok) OR (tok <= :maxTok AND nusd <= :maxCost))',
      ExpressionAttributeValues: {
        ...monthValues,
        ':one': 1,
        ':exp': Math.floor(startOfNextMonthMs(nowMs) / 1000) + COUNTER_RETENTION_SECONDS,
      },
    };

    const attempts =
      this.lastWindow.get(tenant.tenantId) === window ? [sameWindow, newWindow] : [newWindow, sameWindow];
    for (const attempt of attempts) {
      if (await this.conditionalUpdate(tenant.tenantId, attempt)) {
        this.lastWindow.set(tenant.tenantId, window);
        return {
          tenantId: tenant.tenantId,
          requestId: request.requestId,
          model: request.model,
          month,
          estimate,
          reservedAtMs: nowMs,
        };
      }
    }
    // Only a refused request pays for this read, to say which limit refused it.
    throw refusal(tenant.limits, estimate, await this.counters(tenant.tenantId, key), nowMs);
  }

  async settle(reservation: Reservation, usage: ActualUsage): Promise<void> {
    const { tenantId, month, estimate, model, reservedAtMs } = reservation;
    await Promise.all([
      this.adjustMonth(tenantId, month, {
        tokens: usage.inputTokens + usage.outputTokens - estimate.tokens,
        costNanoUsd: usage.costNanoUsd - estimate.costNanoUsd,
      }),
      this.db(tenantId).send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: usageKey(tenantId, dayKey(reservedAtMs), model),
          UpdateExpression: 'ADD requests :one, inputTokens :in, outputTokens :out, nusd :cost',
          ExpressionAttributeValues: {
            ':one': 1,
            ':in': usage.inputTokens,
            ':out': usage.outputTokens,
            ':cost': usage.costNanoUsd,
          },
        }),
      ),
    ]);
  }

  async release(reservation: Reservation): Promise<void> {
    const { estimate } = reservation;
    await this.adjustMonth(reservation.tenantId, reservation.month, {
      tokens: -estimate.tokens,
      costNanoUsd: -estimate.costNanoUsd,
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
            ':from': `USAGE#${range.from}`,
            ':to': `USAGE#${range.to}#\uffff`,
          },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const [, date, model] = String(item.sk).split('#');
        records.push({
          date,
          model,
          requests: Number(item.requests ?? 0),
          inputTokens: Number(item.inputTokens ?? 0),
          outputTokens: Number(item.outputTokens ?? 0),
          costNanoUsd: Number(item.nusd ?? 0),
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  async deleteAll(tenantId: string): Promise<number> {
    return deletePartition(this.db(tenantId), this.tableName, tenantKey(tenantId));
  }

  private async adjustMonth(tenantId: string, month: string, delta: Estimate): Promise<void> {
    await this.db(tenantId).send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: quotaKey(tenantId, month),
        UpdateExpression: 'ADD tok :tokens, nusd :cost',
        ExpressionAttributeValues: { ':tokens': delta.tokens, ':cost': delta.costNanoUsd },
      }),
    );
  }

  private async conditionalUpdate(tenantId: string, input: UpdateCommandInput): Promise<boolean> {
    try {
      await this.db(tenantId).send(new UpdateCommand(input));
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  private async counters(tenantId: string, key: { pk: string; sk: string }): Promise<LedgerCounters> {
    const { Item: item } = await this.db(tenantId).send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return {
      window: Number(item?.rw ?? -1),
      windowRequests: Number(item?.rr ?? 0),
      windowTokens: Number(item?.rt ?? 0),
      monthTokens: Number(item?.tok ?? 0),
      monthCostNanoUsd: Number(item?.nusd ?? 0),
    };
  }
}
