import * as z from '../../contract/zod';
import { nanoUsdToUsd } from './catalog';
import { PlatformError } from './errors';
import { dayKey } from './limits';
import type { LedgerScope, ScopeUsageRecord, TenantUsageRecord, UsageRecord } from './ports';

/** A real calendar day as `yyyy-mm-dd` (2026-02-31 is not one). */
const date = z.string().check(
  z.regex(/^\d{4}-\d{2}-\d{2}$/, 'dates are yyyy-mm-dd'),
  z.refine((day) => dayKey(Date.parse(`${day}T00:00:00Z`) || 0) === day, 'not a calendar date'),
);

/** The longest range one report covers. */
const MAX_RANGE_DAYS = 366;

export const usageQuerySchema = z.strictObject({
  from: z.optional(date),
  to: z.optional(date),
  group_by: z.optional(z.enum(['day', 'model', 'project', 'key', 'user'])),
});
export type UsageQuery = z.infer<typeof usageQuerySchema>;

/** Default range: the current UTC month up to today. A reversed or over-long range is the caller's 400. */
export function usageRange(query: UsageQuery, nowMs: number): { from: string; to: string } {
  const today = dayKey(nowMs);
  const range = { from: query.from ?? `${today.slice(0, 7)}-01`, to: query.to ?? today };
  if (range.from > range.to)
    throw new PlatformError('invalid_request', `from (${range.from}) is after to (${range.to})`);
  if (Date.parse(range.to) - Date.parse(range.from) > (MAX_RANGE_DAYS - 1) * 86_400_000) {
    throw new PlatformError('invalid_request', `a report covers at most ${MAX_RANGE_DAYS} days`);
  }
  return range;
}

export interface UsageLine {
  date?: string;
  model?: string;
  /** The project, the API key or the end user of a line by scope. */
  project?: string;
  key?: string;
  user?: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface UsageReport {
  object: 'usage_report';
  from: string;
  to: string;
  group_by: 'day' | 'model' | 'day_model' | LedgerScope['kind'];
  data: UsageLine[];
  totals: Omit<UsageLine, 'date' | 'model'>;
}

/** Counts of a usage line while it is summed: cost stays in nano-dollars until the end. */
type Summing<L> = L & { requests: number; input_tokens: number; output_tokens: number; costNanoUsd: number };

/**
 * Sums records into one line per `keyOf(record)`, each line starting with `labelsOf(record)`,
 * sorted by key, cost in USD; and the totals of them all.
 */
function sumUsage<R extends UsageRecord, L extends object>(
  records: readonly R[],
  keyOf: (record: R) => string,
  labelsOf: (record: R) => L,
) {
  const lines = new Map<string, Summing<L>>();
  const totals: Summing<object> = { requests: 0, input_tokens: 0, output_tokens: 0, costNanoUsd: 0 };
  for (const record of records) {
    const key = keyOf(record);
    const line = lines.get(key) ?? {
      ...labelsOf(record),
      requests: 0,
      input_tokens: 0,
      output_tokens: 0,
      costNanoUsd: 0,
    };
    for (const sum of [line, totals]) {
      sum.requests += record.requests;
      sum.input_tokens += record.inputTokens;
      sum.output_tokens += record.outputTokens;
      sum.costNanoUsd += record.costNanoUsd;
    }
    lines.set(key, line);
  }
  const inUsd = <T extends Summing<object>>({ costNanoUsd, ...counts }: T) => ({
    ...counts,
    cost_usd: nanoUsdToUsd(costNanoUsd),
  });
  const data = [...lines.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, line]) => inUsd(line));
  return { data, totals: inUsd(totals) };
}

/**
 * Usage by scope (`group_by=project|key|user`): one line per project, or per API key or end user
 * with limits of its own, per model, from each scope's own ledger. Keys and users without limits
 * are not counted apart.
 */
export function scopeUsageReport(
  records: readonly ScopeUsageRecord[],
  range: { from: string; to: string },
  groupBy: LedgerScope['kind'],
): UsageReport {
  const { data, totals } = sumUsage(
    records,
    (record) => JSON.stringify([record.scope, record.model]),
    (record): Pick<UsageLine, LedgerScope['kind'] | 'model'> => ({ [groupBy]: record.scope, model: record.model }),
  );
  return { object: 'usage_report', ...range, group_by: groupBy, data, totals };
}

/** Sums per-day, per-model records into the lines the caller asked for. */
export function usageReport(
  records: readonly UsageRecord[],
  range: { from: string; to: string },
  groupBy?: 'day' | 'model',
): UsageReport {
  const { data, totals } = sumUsage(
    records,
    (record) =>
      groupBy === 'day' ? record.date : groupBy === 'model' ? record.model : `${record.date}#${record.model}`,
    (record) => ({
      ...(groupBy !== 'model' && { date: record.date }),
      ...(groupBy !== 'day' && { model: record.model }),
    }),
  );
  return { object: 'usage_report', ...range, group_by: groupBy ?? 'day_model', data, totals };
}

export const adminUsageQuerySchema = z.strictObject({
  month: z.string().check(z.regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'month is yyyy-mm')),
  /** `model` (the bill, the default) or `day` (each tenant over time, for charts). */
  group_by: z.optional(z.enum(['model', 'day'])),
});

export interface AdminUsageLine {
  tenant_id: string;
  model: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

/** One month's usage of every tenant, per tenant and model (the operator's bill) or per tenant and day, with totals. */
export function adminUsageReport(records: readonly TenantUsageRecord[], month: string, groupBy?: 'model' | 'day') {
  const byDay = groupBy === 'day';
  const { data, totals } = sumUsage(
    records,
    (record) => `${record.tenantId}#${byDay ? record.date : record.model}`,
    (record) => ({ tenant_id: record.tenantId, ...(byDay ? { date: record.date } : { model: record.model }) }),
  );
  return {
    object: 'admin_usage_report' as const,
    month,
    group_by: groupBy ?? 'model',
    data,
    totals: { tenants: new Set(data.map((line) => line.tenant_id)).size, ...totals },
  };
}

const CSV_COLUMNS: (keyof AdminUsageLine)[] = [
  'tenant_id',
  'model',
  'requests',
  'input_tokens',
  'output_tokens',
  'cost_usd',
];

/** RFC 4180 CSV of the report's lines (tenant ids and model names never need quoting, but are quoted if they would). */
export function usageCsv(lines: readonly AdminUsageLine[]): string {
  const cell = (value: string | number) =>
    /[",\n]/.test(String(value)) ? `"${String(value).replaceAll('"', '""')}"` : String(value);
  // Costs in fixed notation to the nano-dollar: spreadsheets misread 7.2e-7.
  const value = (line: AdminUsageLine, column: keyof AdminUsageLine) =>
    column === 'cost_usd' ? line.cost_usd.toFixed(9) : cell(line[column]);
  return [
    CSV_COLUMNS.join(','),
    ...lines.map((line) => CSV_COLUMNS.map((column) => value(line, column)).join(',')),
  ].join('\n');
}
