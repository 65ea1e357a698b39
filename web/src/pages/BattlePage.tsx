import '../components/arena.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import { apiJson } from '../api.js';
import { settingsSummary, WINNER_LABELS, type VoteResult, type Winner } from '../components/arena-types.js';
import { Link } from '../components/Link.js';
import { PromptBox } from '../components/PromptBox.js';
import { StreamColumn } from '../components/StreamColumn.js';
import { useColumns } from '../components/useColumns.js';
import { useModels } from '../components/useModels.js';
import { loadInstances } from '../components/savedInstances.js';

/** Each vote's keys: the number row for one hand, a letter for the other. */
const VOTE_KEYS: Record<string, Winner> = { '1': 'a', a: 'a', '2': 'b', b: 'b', '3': 'tie', t: 'tie', '4': 'both_bad', x: 'both_bad' };
const SHORTCUT_OF: Record<Winner, string> = { a: '1 / A', b: '2 / B', tie: '3 / T', both_bad: '4 / X' };
const SIDES = ['a', 'b'] as const;

/** Typing in a field must not vote. */
function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

/**
 * A blind battle: two contestants drawn by the server answer the same prompt as A and B; the user
 * votes (buttons or 1-4 / a b t x), and only the vote's answer reveals who they were.
 */
export function BattlePage() {
  const { models } = useModels();
  const [pool, setPool] = useState<string[]>([]);
  // Configurations battle too: the compare page's instances can be the pool instead of whole models.
  const [configs] = useState(loadInstances);
  const [useConfigs, setUseConfigs] = useState(false);
  const columns = useColumns();
  const controller = useRef<AbortController | null>(null);
  const [battleId, setBattleId] = useState<string | null>(null);
  const [result, setResult] = useState<VoteResult | null>(null);
  const [voteError, setVoteError] = useState<string | null>(null);
  const [voting, setVoting] = useState(false);

  useEffect(() => () => controller.current?.abort(), []);

  const start = async (prompt: string) => {
    const abort = new AbortController();
    controller.current = abort;
    setBattleId(null);
    setResult(null);
    setVoteError(null);
    columns.reset();
    columns.begin([...SIDES], prompt);
    await columns.stream(
      '/api/battles',
      { history: [{ role: 'user', content: prompt }], ...(useConfigs ? { pool: configs } : pool.length > 0 ? { pool } : {}) },
      [...SIDES],
      {
        signal: abort.signal,
        columnOf: (line) => (line.instance_id === 'a' || line.instance_id === 'b' ? line.instance_id : undefined),
        onResponse: (response) => setBattleId(response.headers.get('x-battle-id')),
      },
    );
  };

  const canVote = battleId !== null && result === null && !columns.streaming && !voting;
  const vote = useCallback(
    async (winner: Winner) => {
      if (!canVote) return;
      setVoting(true);
      setVoteError(null);
      try {
        setResult(await apiJson<VoteResult>(`/api/battles/${battleId}/vote`, { method: 'POST', body: JSON.stringify({ winner }) }));
      } catch (error) {
        setVoteError((error as Error).message);
      } finally {
        setVoting(false);
      }
    },
    [battleId, canVote],
  );

  // Once both answers are in, the keys vote: focus leaves an empty prompt field for the vote buttons.
  const voteBar = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const active = document.activeElement;
    if (canVote && (active === document.body || (active instanceof HTMLTextAreaElement && active.value === ''))) voteBar.current?.focus();
  }, [canVote]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      const winner = VOTE_KEYS[event.key.toLowerCase()];
      if (winner && canVote) {
        event.preventDefault();
        void vote(winner);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [canVote, vote]);

  const started = Object.keys(columns.columns).length > 0;
  return (
    <div className="page battle-page">
      <h1>
        Battle <span className="hint">two hidden contestants answer; vote, then see who they were</span>
      </h1>
      {models && models.length === 0 && (
        <p className="empty" data-testid="no-models">
          No models to battle yet: pull one on the <Link to="/models">Models</Link> page.
        </p>
      )}
      <details className="panel">
        <summary>
          Pool: {useConfigs ? `the ${configs.length} configurations of the Compare page` : pool.length === 0 ? 'every model' : pool.join(', ')}{' '}
          <span className="hint">contestants are drawn from it at random</span>
        </summary>
        <div className="pool">
          <label className="check">
            <input type="radio" name="pool" checked={!useConfigs} onChange={() => setUseConfigs(false)} />
            models (none ticked: every model):
          </label>
          {(models ?? []).map((m) => (
            <label key={m.name} className="check">
              <input
                type="checkbox"
                disabled={useConfigs}
                checked={pool.includes(m.name)}
                onChange={(e) => setPool(e.target.checked ? [...pool, m.name] : pool.filter((n) => n !== m.name))}
              />
              {m.name}
            </label>
          ))}
          <label className="check pool-configs">
            <input type="radio" name="pool" checked={useConfigs} disabled={configs.length < 2} onChange={() => setUseConfigs(true)} />
            {configs.length >= 2
              ? `the ${configs.length} instances set up on the Compare page, each a model with its own settings`
              : 'the instances of the Compare page (set up two or more there first)'}
          </label>
          <p className="hint">With a single model, the battle is between two of its configurations.</p>
        </div>
      </details>

      <PromptBox
        busy={columns.streaming}
        disabled={!models || models.length === 0}
        onSend={(prompt) => void start(prompt)}
        onStop={() => controller.current?.abort()}
        placeholder={started ? 'A new prompt starts a new battle…' : 'Prompt for a blind battle…'}
      />

      <div className="columns" style={{ ['--count' as string]: 2 }}>
        {SIDES.map((side) => {
          const revealed = result?.contestants[side];
          return (
            <StreamColumn
              key={side}
              testId={`battle-${side}`}
              title={revealed ? `${side.toUpperCase()}: ${revealed.model}` : `Model ${side.toUpperCase()}`}
              subtitle={revealed ? settingsSummary(revealed) : 'hidden until you vote'}
              column={columns.columns[side]}
              hideMetrics={!revealed}
              actions={result && (result.winner === side ? <span className="badge win">winner</span> : null)}
            />
          );
        })}
      </div>

      {started && (
        <div className="vote-bar" role="group" aria-label="vote" tabIndex={-1} ref={voteBar}>
          {(Object.keys(WINNER_LABELS) as Winner[]).map((winner) => (
            <button
              key={winner}
              type="button"
              className={result?.winner === winner ? 'primary' : undefined}
              disabled={!canVote}
              onClick={() => void vote(winner)}
            >
              {WINNER_LABELS[winner]} <kbd>{SHORTCUT_OF[winner]}</kbd>
            </button>
          ))}
        </div>
      )}
      {voteError && <p className="error" role="alert">{voteError}</p>}
      {result && (
        <p className="reveal" data-testid="reveal">
          You voted <b>{WINNER_LABELS[result.winner]}</b>. A was <b>{result.contestants.a.model}</b>, B was <b>{result.contestants.b.model}</b>.{' '}
          <Link to={`/runs/${result.run_id}`}>Saved run</Link> · <Link to="/leaderboard">Leaderboard</Link>
        </p>
      )}

    </div>
  );
}
