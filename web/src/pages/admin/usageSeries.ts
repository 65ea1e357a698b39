import { totalTokens, type UsageTotals } from './adminApi.js';
import type { Series } from './charts.js';

export type Metric = 'requests' | 'tokens';

function metricOf(row: UsageTotals, metric: Metric): number {
  return metric === 'requests' ? row.requests : totalTokens(row);
}

/** Every UTC day from `from` to `to` inclusive (YYYY-MM-DD), so days without traffic show as gaps. */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end; t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/** The UTC day `daysAgo` days before today (the usage ledger counts days in UTC). */
export function utcDay(daysAgo = 0, now = Date.now()): string {
  return new Date(now - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

/** Beyond this many series a chart's colours stop being told apart; the rest are summed as "other". */
const MAX_SERIES = 8;

/**
 * Turns `series_by_model` / `series_by_key` rows into one chart series per group, biggest first, with
 * a value for each of `days`. `label` names a group (a key's name, "(admin token)" for null...).
 */
export function pivot<R extends UsageTotals & { period: string }>(
  rows: R[],
  group: (row: R) => string | null,
  label: (id: string | null) => string,
  days: string[],
  metric: Metric,
): Series[] {
  const index = new Map(days.map((day, i) => [day, i]));
  const byGroup = new Map<string | null, number[]>();
  for (const row of rows) {
    const day = index.get(row.period.slice(0, 10));
    if (day === undefined) continue;
    const id = group(row);
    const values = byGroup.get(id) ?? days.map(() => 0);
    values[day]! += metricOf(row, metric);
    byGroup.set(id, values);
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const sorted = [...byGroup.entries()].filter(([, values]) => sum(values) > 0).sort((a, b) => sum(b[1]) - sum(a[1]));
  const shown = sorted.slice(0, MAX_SERIES - 1);
  const rest = sorted.slice(MAX_SERIES - 1);
  const series = shown.map(([id, values]) => ({ name: label(id), values }));
  if (rest.length === 1) series.push({ name: label(rest[0]![0]), values: rest[0]![1] });
  if (rest.length > 1) series.push({ name: `${rest.length} others`, values: days.map((_, d) => rest.reduce((s, [, v]) => s + v[d]!, 0)) });
  return series;
}
