/** A DynamoDB operation's kind, for capacity: what reads and what writes. */
export function capacityKind(operation: string): 'read' | 'write' | undefined {
  if (/^(GetItem|BatchGetItem|Query|Scan|TransactGetItems)$/.test(operation)) return 'read';
  if (/^(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems)$/.test(operation)) return 'write';
  return undefined;
}

/** Units consumed on one partition key. */
export interface KeyCapacity {
  readUnits: number;
  writeUnits: number;
}

/**
 * DynamoDB's per-partition-key throughput as on-demand tables enforce it: at most 1,000 write
 * units and 3,000 read units a second on one partition key, whatever the table's total. Counted
 * per wall-clock second from the capacity DynamoDB reports consumed (`ReturnConsumedCapacity`),
 * which follows AWS's size rules: a write unit per KB written, a read unit per 4 KB read strongly.
 */
export class PartitionCapacity {
  /** Everything consumed since the start, by `table/key`: what benches measure. */
  readonly totals = new Map<string, KeyCapacity>();
  private readonly windows = new Map<string, { second: number } & KeyCapacity>();

  constructor(
    private readonly limits: { readonly writeUnitsPerSecond: number; readonly readUnitsPerSecond: number } = {
      writeUnitsPerSecond: 1000,
      readUnitsPerSecond: 3000,
    },
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a request on these keys finds one of them already at its limit this second (it is then throttled). */
  exceeded(keys: readonly string[], kind: 'read' | 'write'): boolean {
    return keys.some((key) => {
      const window = this.window(key);
      return kind === 'write'
        ? window.writeUnits >= this.limits.writeUnitsPerSecond
        : window.readUnits >= this.limits.readUnitsPerSecond;
    });
  }

  /** Counts what a request consumed, split evenly over the keys it touched. */
  record(keys: readonly string[], kind: 'read' | 'write', units: number): void {
    if (keys.length === 0 || units <= 0) return;
    const share = units / keys.length;
    for (const key of keys) {
      const total = this.totals.get(key) ?? { readUnits: 0, writeUnits: 0 };
      this.totals.set(key, total);
      for (const counter of [this.window(key), total]) {
        if (kind === 'write') counter.writeUnits += share;
        else counter.readUnits += share;
      }
    }
  }

  private window(key: string) {
    const second = Math.floor(this.now() / 1000);
    let window = this.windows.get(key);
    if (window?.second !== second) {
      window = { second, readUnits: 0, writeUnits: 0 };
      this.windows.set(key, window);
    }
    return window;
  }
}
