import '../components/arena.css';
import { useCallback, useEffect, useRef, useState } from 'react';
import { apiJson } from '../api.js';
import { SETTINGS, settingsSummary, shortId, WINNER_LABELS, type ChatMessage, type Instance, type Run, type RunTurn } from '../components/arena-types.js';
import { downloadFile } from '../components/download.js';
import { Link } from '../components/Link.js';
import { Markdown } from '../components/Markdown.js';
import { StreamColumn } from '../components/StreamColumn.js';
import { staticColumn, useColumns, type Turn } from '../components/useColumns.js';
import { navigate } from '../navigation.js';

const EXPORTS = [
  { format: 'json', label: 'JSON' },
  { format: 'csv', label: 'CSV' },
  { format: 'md', label: 'Markdown' },
] as const;

const isShown = (instance: Run['instances'][number]): instance is Instance => !('hidden' in instance);

/** The prompt is the last user message; what came before it is the conversation it continues. */
function splitHistory(history: ChatMessage[]) {
  const last = history.map((m) => m.role).lastIndexOf('user');
  return { earlier: history.slice(0, Math.max(0, last)), prompt: history[last]?.content ?? '' };
}

/** Every turn of the run in order; a server that predates conversations sends the one turn flat. */
function turnsOf(run: Run): RunTurn[] {
  if (run.turns && run.turns.length > 0) return run.turns;
  return [{ turn: 1, status: run.status, created_at: run.created_at, finished_at: run.finished_at, history: run.history, histories: run.histories ?? null, answers: run.answers }];
}

/** One instance's side of the conversation: each turn's question to it and its answer. */
function instanceTurns(turns: RunTurn[], id: string): Turn[] {
  return turns.flatMap((turn) => {
    const answer = turn.answers[id];
    if (!answer) return [];
    const { prompt } = splitHistory(turn.histories?.[id] ?? turn.history);
    return [{ prompt, answer: answer.response, metrics: answer.metrics, error: answer.error }];
  });
}

/**
 * A saved run's permalink: the prompt (every turn's, for a conversation) and the conversation before
 * it, every instance's settings and answers with their metrics, the battle's vote; re-run with the same settings (streamed here, then the
 * new run's page), and export as JSON, CSV or Markdown.
 */
export function RunPage({ id }: { id: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const rerun = useColumns();
  const controller = useRef<AbortController | null>(null);

  const load = useCallback(async () => {
    try {
      setRun(await apiJson<Run>(`/api/runs/${encodeURIComponent(id)}`));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [id]);

  useEffect(() => {
    setRun(null);
    rerun.reset();
    void load();
  }, [load, rerun.reset]);
  useEffect(() => () => controller.current?.abort(), []);
  // A run still streaming elsewhere is shown as it stands, and refreshed until it is done.
  useEffect(() => {
    if (run?.status !== 'running') return;
    const timer = setTimeout(() => void load(), 1000);
    return () => clearTimeout(timer);
  }, [run, load]);

  if (error) return <p className="error page">{error}</p>;
  if (!run) return <p className="empty page">Loading run…</p>;

  const turns = turnsOf(run);
  // Re-running repeats the latest turn; what is shown starts from the first.
  const { prompt } = splitHistory(run.history);
  const { earlier, prompt: firstPrompt } = splitHistory(turns[0]!.history);
  const keys = run.instances.map((i) => i.id);
  const startRerun = async () => {
    setActionError(null);
    const abort = new AbortController();
    controller.current = abort;
    let newId: string | null = null;
    rerun.begin(keys, prompt);
    const response = await rerun.stream(`/api/runs/${encodeURIComponent(run.id)}/rerun`, undefined, keys, {
      signal: abort.signal,
      // Legacy runs stream `model` keys; every other run streams instance ids.
      columnOf: (line) => line.instance_id ?? line.model,
      onResponse: (r) => (newId = r.headers.get('x-run-id')),
    });
    if (response && newId) navigate(`/runs/${newId}`);
    else if (!response) setActionError('The re-run failed: see the columns.');
  };
  const exportRun = (format: string) =>
    downloadFile(`/api/runs/${encodeURIComponent(run.id)}/export?format=${format}`, `run-${run.id}.${format}`).catch((e: Error) => setActionError(e.message));

  const rerunning = Object.keys(rerun.columns).length > 0;
  const winner = run.battle?.winner ?? null;
  return (
    <div className="page run-page">
      <header className="run-head">
        <h1>
          {run.kind === 'battle' ? 'Battle' : 'Comparison'} <code>{shortId(run.id)}</code>
        </h1>
        <p className="hint">
          {new Date(run.created_at).toLocaleString()} · {run.status}
          {run.rerun_of && (
            <>
              {' '}· re-run of <Link to={`/runs/${run.rerun_of}`}>{shortId(run.rerun_of)}</Link>
            </>
          )}
        </p>
        <div className="run-actions">
          <button type="button" className="primary" disabled={rerun.streaming} onClick={() => void startRerun()}>
            Re-run
          </button>
          {rerun.streaming && (
            <button type="button" className="stop" onClick={() => controller.current?.abort()}>
              Stop
            </button>
          )}
          <span className="exports">
            Export:
            {EXPORTS.map(({ format, label }) => (
              <a
                key={format}
                href={`/api/runs/${encodeURIComponent(run.id)}/export?format=${format}`}
                onClick={(event) => {
                  event.preventDefault();
                  void exportRun(format);
                }}
              >
                {label}
              </a>
            ))}
          </span>
        </div>
        {actionError && <p className="error" role="alert">{actionError}</p>}
      </header>

      {earlier.length > 0 && (
        <details className="panel">
          <summary>Earlier conversation ({earlier.length} messages)</summary>
          {earlier.map((message, index) => (
            <div key={index} className={`message ${message.role}`}>
              <b>{message.role}</b>
              <Markdown text={message.content} />
            </div>
          ))}
        </details>
      )}
      {turns.length > 1 ? (
        <section className="panel prompt" data-testid="run-prompt">
          <b>Conversation of {turns.length} turns</b>
          <ol className="run-turns">
            {turns.map((turn) => (
              <li key={turn.turn} data-testid="run-turn">
                <Markdown text={splitHistory(turn.history).prompt} />
              </li>
            ))}
          </ol>
        </section>
      ) : (
        <section className="panel prompt" data-testid="run-prompt">
          <b>Prompt</b>
          <Markdown text={firstPrompt} />
        </section>
      )}

      {run.battle && (
        <p className="reveal">
          {winner ? (
            <>
              Vote: <b>{WINNER_LABELS[winner]}</b>
            </>
          ) : (
            'Not voted yet: contestants stay hidden until the vote.'
          )}
        </p>
      )}

      <div className="columns" style={{ ['--count' as string]: Math.max(1, run.instances.length) }}>
        {run.instances.map((instance, index) => {
          const label = run.kind === 'battle' ? `${instance.id.toUpperCase()}: ` : `#${index + 1} `;
          return (
            <StreamColumn
              key={instance.id}
              title={isShown(instance) ? `${label}${instance.model}` : `Model ${instance.id.toUpperCase()}`}
              subtitle={isShown(instance) ? settingsSummary(instance) : 'hidden'}
              actions={winner === instance.id && <span className="badge win">winner</span>}
              column={
                rerunning
                  ? rerun.columns[instance.id]
                  : staticColumn(instanceTurns(turns, instance.id))
              }
            />
          );
        })}
      </div>

      {run.instances.some(isShown) && (
        <details className="panel" open>
          <summary>Settings</summary>
          <div className="table-wrap">
            <table className="settings-table">
              <thead>
                <tr>
                  <th>instance</th>
                  <th>model</th>
                  {SETTINGS.map((s) => (
                    <th key={s.key} className="num">
                      {s.label}
                    </th>
                  ))}
                  <th>system</th>
                </tr>
              </thead>
              <tbody>
                {run.instances.filter(isShown).map((instance) => (
                  <tr key={instance.id}>
                    <td>
                      <code>{instance.id}</code>
                    </td>
                    <td>{instance.model}</td>
                    {SETTINGS.map((s) => (
                      <td key={s.key} className="num">
                        {instance[s.key]}
                      </td>
                    ))}
                    <td>{instance.system ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      )}
    </div>
  );
}
