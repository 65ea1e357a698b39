import '../components/arena.css';
import { useEffect, useState } from 'react';
import { apiJson } from '../api.js';
import { settingsSummary, type Leaderboard, type LeaderboardRow } from '../components/arena-types.js';
import { Link } from '../components/Link.js';

type By = 'model' | 'config';

/**
 * A contestant's 95% interval drawn on the scale shared by the whole table, with its rating as a dot:
 * overlapping bars are the ties in rank that the numbers alone make hard to see.
 */
function CiBar({ row, low, high }: { row: LeaderboardRow; low: number; high: number }) {
  const span = Math.max(1, high - low);
  const at = (value: number) => `${((value - low) / span) * 100}%`;
  return (
    <span className="ci-bar" aria-hidden="true">
      <span className="ci-range" style={{ left: at(row.ci_low), right: `calc(100% - ${at(row.ci_high)})` }} />
      <span className="ci-dot" style={{ left: at(row.rating) }} />
    </span>
  );
}

/**
 * Bradley–Terry ratings from the blind battles' votes, by model or by configuration, with 95%
 * bootstrap intervals; rank counts the contestants whose interval lies wholly above.
 */
export function LeaderboardPage() {
  const [by, setBy] = useState<By>('model');
  const [board, setBoard] = useState<Leaderboard | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setBoard(null);
    apiJson<Leaderboard>(`/api/leaderboard?by=${by}`).then(
      (b) => {
        if (!live) return;
        setBoard(b);
        setError(null);
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [by]);

  return (
    <div className="page leaderboard-page">
      <h1>Leaderboard</h1>
      <div className="tabs" role="tablist">
        {(['model', 'config'] as By[]).map((b) => (
          <button key={b} role="tab" aria-selected={by === b} className={by === b ? 'active' : undefined} onClick={() => setBy(b)}>
            By {b === 'model' ? 'model' : 'configuration'}
          </button>
        ))}
      </div>
      {error && <p className="error">{error}</p>}
      {board && (
        <>
          <p className="hint">
            {board.total_battles} voted {board.total_battles === 1 ? 'battle' : 'battles'} · 95% intervals from {board.bootstrap_rounds} bootstrap rounds ·
            ties and “both bad” count half · rows with fewer than 10 battles are provisional: their intervals are wide
          </p>
          {board.rows.length === 0 ? (
            <p className="empty">
              No votes yet. <Link to="/battle">Start a battle</Link>.
            </p>
          ) : (
            <div className="table-wrap">
              <table className="leaderboard" data-testid="leaderboard">
                <thead>
                  <tr>
                    <th>Rank</th>
                    <th>{by === 'model' ? 'Model' : 'Configuration'}</th>
                    <th className="num">Rating</th>
                    <th className="num">95% CI</th>
                    <th className="ci-col">
                      <span className="sr-only">Interval on a common scale</span>
                    </th>
                    <th className="num">Battles</th>
                    <th className="num">Win rate</th>
                    <th className="num">W / L / T</th>
                  </tr>
                </thead>
                <tbody>
                  {board.rows.map((row) => (
                    <tr key={row.contestant}>
                      <td>{row.rank}</td>
                      <td>
                        <span className="name">{row.model}</span>
                        {row.provisional && (
                          <span className="badge provisional" data-testid="provisional" title="fewer than 10 battles: the rating may still move a lot">
                            provisional
                          </span>
                        )}
                        {row.settings && <small className="config">{settingsSummary(row.settings)}</small>}
                      </td>
                      <td className="num">{row.rating.toFixed(0)}</td>
                      <td className="num ci">
                        {row.ci_low.toFixed(0)} – {row.ci_high.toFixed(0)}
                        <span className="ci-delta">
                          {' '}
                          (+{(row.ci_high - row.rating).toFixed(0)} / −{(row.rating - row.ci_low).toFixed(0)})
                        </span>
                      </td>
                      <td className="ci-col">
                        <CiBar row={row} low={Math.min(...board.rows.map((r) => r.ci_low))} high={Math.max(...board.rows.map((r) => r.ci_high))} />
                      </td>
                      <td className="num" data-testid="battles">{row.battles}</td>
                      <td className="num">{(row.win_rate * 100).toFixed(0)}%</td>
                      <td className="num">
                        {row.wins} / {row.losses} / {row.ties}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}
