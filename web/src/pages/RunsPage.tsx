import '../components/arena.css';
import { useEffect, useState } from 'react';
import { apiJson } from '../api.js';
import { WINNER_LABELS, type RunList } from '../components/arena-types.js';
import { Link } from '../components/Link.js';

const PAGE_SIZE = 25;
const FILTERS = [
  { kind: '', label: 'All' },
  { kind: 'comparison', label: 'Comparisons' },
  { kind: 'battle', label: 'Battles' },
] as const;

/**
 * The history: every saved comparison and battle, newest first, each linking to its permalink. A
 * conversation is one row, however many turns it has.
 */
export function RunsPage() {
  const [kind, setKind] = useState<string>('');
  const [offset, setOffset] = useState(0);
  const [list, setList] = useState<RunList | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset), ...(kind ? { kind } : {}) });
    apiJson<RunList>(`/api/runs?${query}`).then(
      (l) => {
        if (!live) return;
        setList(l);
        setError(null);
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [kind, offset]);

  return (
    <div className="page runs-page">
      <h1>History</h1>
      <div className="tabs" role="tablist">
        {FILTERS.map((f) => (
          <button
            key={f.kind}
            role="tab"
            aria-selected={kind === f.kind}
            className={kind === f.kind ? 'active' : undefined}
            onClick={() => {
              setKind(f.kind);
              setOffset(0);
            }}
          >
            {f.label}
          </button>
        ))}
      </div>
      {error && <p className="error">{error}</p>}
      {list && list.runs.length === 0 && (
        <p className="empty">
          Nothing saved yet: every <Link to="/">comparison</Link> and <Link to="/battle">battle</Link> is kept here.
        </p>
      )}
      {list && list.runs.length > 0 && (
        <div className="table-wrap">
          <table data-testid="runs">
            <thead>
              <tr>
                <th>When</th>
                <th>Kind</th>
                <th>Prompt</th>
                <th className="num">Turns</th>
                <th>Models</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {list.runs.map((run) => (
                <tr key={run.id}>
                  <td className="when">
                    {new Date(run.created_at).toLocaleString()}
                    {(run.turn_count ?? 1) > 1 && run.updated_at && <small>latest {new Date(run.updated_at).toLocaleString()}</small>}
                  </td>
                  <td>
                    {run.kind}
                    {run.rerun_of && <small>re-run</small>}
                  </td>
                  <td className="prompt-cell">
                    <Link to={`/runs/${run.id}`}>{run.prompt || '(empty prompt)'}</Link>
                  </td>
                  <td className="num" data-testid="turn-count">
                    {run.turn_count ?? 1}
                  </td>
                  <td>{run.models.length > 0 ? run.models.join(', ') : <span className="hint">hidden until voted</span>}</td>
                  <td>
                    {run.status}
                    {run.battle?.winner && <small>vote: {WINNER_LABELS[run.battle.winner]}</small>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list && list.total > PAGE_SIZE && (
        <div className="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            Newer
          </button>
          <span className="hint">
            {offset + 1}–{Math.min(offset + PAGE_SIZE, list.total)} of {list.total}
          </span>
          <button type="button" disabled={offset + PAGE_SIZE >= list.total} onClick={() => setOffset(offset + PAGE_SIZE)}>
            Older
          </button>
        </div>
      )}
    </div>
  );
}
