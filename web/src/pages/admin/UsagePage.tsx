import { useEffect, useMemo, useState } from 'react';
import { fetchUsage, listKeys, totalTokens, type ApiKey, type UsageReport, type UsageTotals } from './adminApi.js';
import { colorMap, StackedBarChart } from './charts.js';
import { daysBetween, pivot, utcDay } from './usageSeries.js';
import { formatCount } from './format.js';
import './admin.css';

const RANGES = [7, 30, 90];
/** Traffic without a key: the admin token, or any caller of an open server. */
const NO_KEY = '(admin token / open)';
/** Requests that named no model: model listings, health checks, saved runs and the like. */
const NO_MODEL = '(no model: listings and other requests)';

function TotalsTable({ title, head, rows }: { title: string; head: string; rows: { label: string; totals: UsageTotals }[] }) {
  return (
    <div className="panel">
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <p className="empty">Nothing recorded.</p>
      ) : (
        <table className="data" aria-label={title}>
          <thead>
            <tr>
              <th>{head}</th>
              <th className="num">Requests</th>
              <th className="num" title="prompt tokens">
                Prompt
              </th>
              <th className="num" title="completion tokens">
                Completion
              </th>
              <th className="num" title="prompt + completion tokens">
                Tokens
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ label, totals }) => (
              <tr key={label}>
                <td>{label}</td>
                <td className="num">{formatCount(totals.requests)}</td>
                <td className="num">{formatCount(totals.prompt_tokens)}</td>
                <td className="num">{formatCount(totals.completion_tokens)}</td>
                <td className="num">{formatCount(totalTokens(totals))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function UsagePage() {
  // A key's "usage" link opens this page filtered to it (?key_id=).
  const [keyId, setKeyId] = useState(() => new URLSearchParams(window.location.search).get('key_id') ?? '');
  const [range, setRange] = useState(30);
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [report, setReport] = useState<UsageReport>();
  const [error, setError] = useState<string>();
  const from = utcDay(range - 1);
  const to = utcDay();

  useEffect(() => {
    listKeys()
      .then(setKeys)
      .catch(() => setKeys([]));
  }, []);

  useEffect(() => {
    let current = true;
    fetchUsage({ from, to, ...(keyId ? { key_id: keyId } : {}) })
      .then((r) => current && (setReport(r), setError(undefined)))
      .catch((e: Error) => current && setError(e.message));
    return () => {
      current = false;
    };
  }, [from, to, keyId]);

  const days = useMemo(() => daysBetween(from, to), [from, to]);
  const keyLabel = useMemo(() => {
    const names = new Map<string, string>();
    for (const key of keys) names.set(key.id, `${key.name} (${key.prefix}…)`);
    for (const row of report?.by_key ?? []) if (row.key_id && row.name) names.set(row.key_id, `${row.name} (${row.prefix}…)`);
    return (id: string | null) => (id === null ? NO_KEY : (names.get(id) ?? id));
  }, [keys, report]);
  const modelLabel = (model: string | null) => model ?? NO_MODEL;
  const byRequests = <R extends UsageTotals>(rows: R[] | undefined) => [...(rows ?? [])].sort((a, b) => b.requests - a.requests);
  const modelColor = colorMap(byRequests(report?.by_model).map((row) => modelLabel(row.model)));
  const keyColor = colorMap(byRequests(report?.by_key).map((row) => keyLabel(row.key_id)));

  return (
    <div className="admin-page">
      <h1>Usage</h1>
      <div className="usage-controls">
        <label>
          Period
          <select value={range} onChange={(e) => setRange(Number(e.target.value))} aria-label="period">
            {RANGES.map((n) => (
              <option key={n} value={n}>
                last {n} days
              </option>
            ))}
          </select>
        </label>
        <label>
          Key
          <select value={keyId} onChange={(e) => setKeyId(e.target.value)} aria-label="key filter">
            <option value="">every key</option>
            {keys.map((key) => (
              <option key={key.id} value={key.id}>
                {key.name} ({key.prefix}…)
              </option>
            ))}
          </select>
        </label>
        {report && (
          <p className="muted">
            {from} – {to} (UTC): {formatCount(report.totals.requests)} requests, {formatCount(totalTokens(report.totals))} tokens
          </p>
        )}
      </div>
      {error && <p className="error">{error}</p>}
      {report && (
        <>
          <div className="charts">
            <StackedBarChart title="Requests per day, by model" days={days} series={pivot(report.series_by_model, (r) => r.model, modelLabel, days, 'requests')} colorOf={modelColor} />
            <StackedBarChart title="Tokens per day, by model" days={days} series={pivot(report.series_by_model, (r) => r.model, modelLabel, days, 'tokens')} colorOf={modelColor} />
            <StackedBarChart title="Requests per day, by key" days={days} series={pivot(report.series_by_key, (r) => r.key_id, keyLabel, days, 'requests')} colorOf={keyColor} />
            <StackedBarChart title="Tokens per day, by key" days={days} series={pivot(report.series_by_key, (r) => r.key_id, keyLabel, days, 'tokens')} colorOf={keyColor} />
          </div>
          <p className="muted" data-testid="usage-note">
            A request that used several models (a comparison) counts once for each of them, so requests by model can add up to more than the
            total.
          </p>
          <div className="totals">
            <TotalsTable title="Totals by model" head="Model" rows={report.by_model.map((row) => ({ label: modelLabel(row.model), totals: row }))} />
            <TotalsTable title="Totals by key" head="Key" rows={report.by_key.map((row) => ({ label: keyLabel(row.key_id), totals: row }))} />
            <TotalsTable title="Totals by day" head="Day (UTC)" rows={report.by_day.map((row) => ({ label: row.day, totals: row }))} />
          </div>
        </>
      )}
    </div>
  );
}
