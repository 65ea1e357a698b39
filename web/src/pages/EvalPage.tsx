import '../components/arena.css';
import './evals.css';
import { useEffect, useState } from 'react';
import type { EvalView } from '../../../src/domain/evals.js';
import type { Cell } from '../../../src/domain/evals.js';
import { apiFetch, apiJson, readNdjson } from '../api.js';
import { downloadFile } from '../components/download.js';
import { Link } from '../components/Link.js';
import { ProgressBar } from '../components/ProgressBar.js';
import { navigate } from '../navigation.js';
import { AnswerDiff } from './EvalDiff.js';

const FINISHED = new Set(['done', 'cancelled', 'failed']);
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/**
 * One evaluation, at its permalink: progress while it runs (the matrix fills as cells arrive), the
 * summary as a chart of pass rates with their intervals, the matrix of prompts × configurations, a
 * cell's detail, a diff of two configurations' answers, exports, cancel and re-run.
 */
export function EvalPage({ id }: { id: string }) {
  const [view, setView] = useState<EvalView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<Cell | null>(null);

  useEffect(() => {
    let live = true;
    const controller = new AbortController();
    const load = () => apiJson<EvalView>(`/api/evals/${encodeURIComponent(id)}`).then((v) => live && setView(v));
    (async () => {
      await load();
      const response = await apiFetch(`/api/evals/${encodeURIComponent(id)}/events`, { signal: controller.signal });
      await readNdjson<{ type: string; cell?: Cell; progress?: { done: number; total: number }; status?: string }>(response, (event) => {
        if (!live) return;
        setView((current) => {
          if (!current) return current;
          const next = { ...current, progress: event.progress ?? current.progress, status: (event.status as EvalView['status']) ?? current.status };
          if (event.type === 'cell' && event.cell) next.cells = [...current.cells, event.cell];
          return next;
        });
        if (event.type === 'end') void load();
      });
    })().catch((e: Error) => live && e.name !== 'AbortError' && setError(e.message));
    return () => {
      live = false;
      controller.abort();
    };
  }, [id]);

  if (error) return <p className="error page">{error}</p>;
  if (!view) return <p className="page">Loading…</p>;
  const running = !FINISHED.has(view.status);
  const percent = view.progress.total === 0 ? 100 : (view.progress.done / view.progress.total) * 100;
  const act = (path: string, body: unknown = {}) =>
    apiJson<{ id: string }>(`/api/evals/${encodeURIComponent(id)}/${path}`, { method: 'POST', body: JSON.stringify(body) }).then(
      (r) => r.id !== id && navigate(`/evals/${r.id}`),
      (e: Error) => setError(e.message),
    );

  return (
    <div className="page eval-page">
      <h1>
        {view.name} <span className={`status ${view.status}`} data-testid="eval-status">{view.status}</span>
      </h1>
      <p className="hint">
        <Link to="/evals">All evaluations</Link> · {view.prompts.length} prompts × {view.instances.length} configurations
        {view.rerun_of && (
          <>
            {' '}· re-run of <Link to={`/evals/${view.rerun_of}`}>{view.rerun_of.slice(0, 8)}</Link>
          </>
        )}
        {view.threshold && ` · threshold ${pct(view.threshold.pass_rate)}: ${view.passed === null ? '…' : view.passed ? 'met' : 'not met'}`}
      </p>
      <div data-testid="eval-progress">
        <ProgressBar percent={percent} label="Evaluation progress" />
        <span className="hint">
          {view.progress.done}/{view.progress.total}
        </span>
      </div>
      <div className="instance-actions">
        {running && <button type="button" onClick={() => void act('cancel')}>Cancel</button>}
        {!running && <button type="button" onClick={() => void act('rerun')}>Re-run all</button>}
        {!running && view.cells.some((c) => !c.pass) && <button type="button" onClick={() => void act('rerun', { failed_only: true })}>Re-run failed</button>}
        {(['json', 'csv', 'md'] as const).map((format) => (
          <button key={format} type="button" onClick={() => void downloadFile(`/api/evals/${encodeURIComponent(id)}/export?format=${format}`, `evaluation-${id}.${format}`).catch((e: Error) => setError(e.message))}>
            Export {format.toUpperCase()}
          </button>
        ))}
      </div>

      <section className="panel" data-testid="eval-summary">
        <h2>Summary</h2>
        <table className="eval-summary">
          <thead>
            <tr>
              <th>configuration</th>
              <th>pass rate (95% interval)</th>
              <th>latency mean / p95 (s)</th>
              <th>TTFT mean / p95 (s)</th>
              <th>tokens/s</th>
              <th>judge</th>
            </tr>
          </thead>
          <tbody>
            {view.summary.map((row) => (
              <tr key={row.instance_id}>
                <td className="mono">{row.instance_id}</td>
                <td>
                  <div className="rate-chart" title={`${pct(row.pass_rate_low)}–${pct(row.pass_rate_high)}`}>
                    <div className="rate-bar" style={{ width: pct(row.pass_rate) }} />
                    <div className="rate-interval" style={{ left: pct(row.pass_rate_low), width: pct(row.pass_rate_high - row.pass_rate_low) }} />
                  </div>
                  {pct(row.pass_rate)} ({row.passed}/{row.cells}) [{pct(row.pass_rate_low)}, {pct(row.pass_rate_high)}]
                  {row.meets_threshold === false && ' ✗'}
                </td>
                <td>
                  {row.latency_mean_s ?? '–'} / {row.latency_p95_s ?? '–'}
                </td>
                <td>
                  {row.ttft_mean_s ?? '–'} / {row.ttft_p95_s ?? '–'}
                </td>
                <td>{row.tokens_per_sec_mean ?? '–'}</td>
                <td>{row.judge?.rating == null ? (row.judge ? `abstained ${row.judge.abstained}` : '') : `${row.judge.rating} [${row.judge.rating_low}, ${row.judge.rating_high}]`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="panel">
        <h2>Matrix</h2>
        <table className="eval-matrix" data-testid="eval-matrix">
          <thead>
            <tr>
              <th>prompt</th>
              {view.instances.map((i) => (
                <th key={i.id} className="mono">
                  {i.id}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {view.prompts.map((prompt, p) => (
              <tr key={p}>
                <td>{prompt.messages.filter((m) => m.role === 'user').at(-1)?.content}</td>
                {view.instances.map((instance) => (
                  <td key={instance.id}>
                    {view.cells
                      .filter((c) => c.prompt_index === p && c.instance_id === instance.id)
                      .map((c) => (
                        <button key={c.repeat} type="button" className={`cell ${c.pass ? 'pass' : 'fail'}`} onClick={() => setOpen(c)} title={c.answer}>
                          {c.pass ? '✓' : '✗'} {c.answer.slice(0, 40)}
                        </button>
                      ))}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      {open && (
        <section className="panel cell-detail" data-testid="cell-detail">
          <h2>
            Prompt {open.prompt_index + 1} · {open.instance_id} · repeat {open.repeat + 1}{' '}
            <button type="button" onClick={() => setOpen(null)}>
              Close
            </button>
          </h2>
          <pre className="answer">{open.error ? `error: ${open.error}` : open.answer}</pre>
          {open.metrics && (
            <p className="hint">
              {open.metrics.tokens} tokens in {open.metrics.duration_s} s · first token after {open.metrics.ttft_s ?? '–'} s · {open.metrics.tokens_per_sec} tokens/s
            </p>
          )}
          <ul>
            {open.assertions.map((a, i) => (
              <li key={i} className={a.pass ? 'pass' : 'fail'}>
                {a.pass ? '✓' : '✗'} {a.type}
                {a.score !== undefined && ` (${a.score})`}
                {a.error && `: ${a.error}`}
              </li>
            ))}
          </ul>
          {open.judge && <p>Judge: {open.judge.abstained ? 'abstained' : open.judge.score} — “{open.judge.reply}”</p>}
        </section>
      )}

      {view.instances.length > 1 && <AnswerDiff view={view} />}
    </div>
  );
}
