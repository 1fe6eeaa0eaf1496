import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TENANT_PARTITION_PREFIX, TTL_ATTRIBUTE } from '../../contract/tables';
import type { BudgetAlertMarks } from '../core/ports';
import { isConditionalCheckFailure } from './dynamodb-errors';
import { queryAll } from './dynamodb-partition';
import type { DocumentClient } from './dynamodb-wire';

/** Marks outlive their month by this long, then DynamoDB's TTL removes them. */
const MARK_RETENTION_SECONDS = 62 * 24 * 3600;

/**
 * Announced budget thresholds as items of the tenant registry, beside the tenant's record
 * (`ALERT#<month>#<percent>`), written with the function's own role: operator records, not tenant
 * data (a tenant id is never reused), gone by TTL two months after their month.
 */
export class DynamoDbBudgetAlertMarks implements BudgetAlertMarks {
  constructor(
    private readonly db: DocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async mark(tenantId: string, month: string, thresholdPercent: number): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...key(tenantId, month, thresholdPercent),
            [TTL_ATTRIBUTE]: Math.floor(this.now() / 1000) + MARK_RETENTION_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  async unmark(tenantId: string, month: string, thresholdPercent: number): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: key(tenantId, month, thresholdPercent) }));
  }

  async marked(tenantId: string): Promise<{ month: string; thresholdPercent: number }[]> {
    const items = await queryAll(this.db, {
      tableName: this.tableName,
      pk: key(tenantId, '', 0).pk,
      prefix: MARK_PREFIX,
    });
    return items.map((item) => {
      const [month, percent] = String(item.sk).slice(MARK_PREFIX.length).split('#');
      return { month, thresholdPercent: Number(percent) };
    });
  }
}

const MARK_PREFIX = 'ALERT#';

function key(tenantId: string, month: string, thresholdPercent: number) {
  return { pk: `${TENANT_PARTITION_PREFIX}${tenantId}`, sk: `${MARK_PREFIX}${month}#${thresholdPercent}` };
}
