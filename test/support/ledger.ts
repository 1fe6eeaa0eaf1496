import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentClient } from '../../lambdas/adapters/dynamodb-wire';
import { ledgerPartitions } from '../../lambdas/core/ledger-shards';

/**
 * What a tenant's ledger items say for `month`, summed over its shards: the tokens and nano-USD
 * used or held (granted in leases, minus what the leases still hold), the current minute's
 * requests, the calls held in slots and the request ids of those held by records.
 */
export async function ledgerState(db: DocumentClient, tenantId: string, month = '2026-11') {
  const items = (
    await Promise.all(
      ledgerPartitions(tenantId).map((pk) =>
        db.send(
          new QueryCommand({
            TableName: 'ledger',
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
            ConsistentRead: true,
          }),
        ),
      ),
    )
  ).flatMap((page) => page.Items ?? []);
  const sum = (prefix: string, field: string) =>
    items.filter((i) => String(i.sk).startsWith(prefix)).reduce((total, i) => total + Number(i[field] ?? 0), 0);
  const slots = (field: string) =>
    [0, 1, 2].reduce((total, slot) => total + sum(`SHARD#${month}`, `${field}${slot}`), 0);
  return {
    tok: sum(`GRANT#${month}`, 'gt') - sum(`SHARD#${month}`, 'lt'),
    nusd: sum(`GRANT#${month}`, 'gc') - sum(`SHARD#${month}`, 'lc'),
    rr: sum(`SHARD#${month}`, 'rr'),
    /** Calls held in the shards' slots: how many, and the tokens and nano-USD they hold. */
    held: slots(`hn`),
    heldTokens: slots(`ht`),
    heldCost: slots(`hc`),
    /** Calls held by records (queued jobs), by request id. */
    inFlight: items
      .filter((i) => String(i.sk).startsWith('R#'))
      .map((i) => String(i.sk).slice(2))
      .sort(),
    items,
  };
}

/** An item's size as DynamoDB counts it for write units: names and values, numbers by their digits. */
export function dynamoDbItemBytes(item: Readonly<Record<string, unknown>>): number {
  const valueBytes = (value: unknown): number => {
    if (typeof value === 'string') return Buffer.byteLength(value);
    if (typeof value === 'number')
      return Math.ceil(String(Math.abs(value)).replace('.', '').replace(/^0+/, '').length / 2) + 1;
    if (value instanceof Set) return [...value].reduce((sum: number, member) => sum + valueBytes(member), 0);
    if (typeof value === 'boolean' || value === null) return 1;
    return Buffer.byteLength(JSON.stringify(value));
  };
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + valueBytes(value), 0);
}
