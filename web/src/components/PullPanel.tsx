import { useState } from 'react';
import { apiJson } from '../api.js';
import type { PullJob } from './arena-types.js';
import { ProgressBar } from './ProgressBar.js';
import { usePullFeed } from './usePullFeed.js';

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

const DISMISSED_KEY = 'arena.dismissedPulls';

/** Finished downloads the user put away: kept across reloads, since the server lists recent jobs. */
function loadDismissed(): string[] {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

/** One download, as the server reports it to every open page; a finished one can be dismissed. */
function PullRow({ job, onDismiss }: { job: PullJob; onDismiss: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const running = job.state === 'running';
  // A finished download's bar is full and still, whatever its outcome: only a running one moves.
  const percent = running ? job.percent : 100;
  return (
    <li className={`pull ${job.state}`} data-testid="pull" data-state={job.state}>
      <div className="pull-head">
        <b>{job.model}</b>
        <small className="source">{job.source}</small>
      </div>
      <ProgressBar percent={percent} label={`download of ${job.model}`} text={running ? undefined : job.state === 'success' ? 'done' : job.state} />
      <div className="pull-foot">
        <span>
          {running ? job.status : job.state}
          {job.completed !== undefined && ` · ${megabytes(job.completed)} of ${megabytes(job.total)}`}
        </span>
        {job.error && job.state !== 'cancelled' && <span className="error">{job.error}</span>}
        {running ? (
          <button type="button" onClick={() => apiJson(`/api/pulls/${job.id}`, { method: 'DELETE' }).catch((e: Error) => setError(e.message))}>
            Cancel
          </button>
        ) : (
          <button type="button" onClick={onDismiss} aria-label={`dismiss the download of ${job.model}`}>
            Dismiss
          </button>
        )}
        {error && <span className="error">{error}</span>}
      </div>
    </li>
  );
}

/**
 * Pull a model by URL, hf: reference or Ollama name, with the live progress of the server's download
 * jobs (every open page sees the same). `onFinished` hears of each job that ends.
 */
export function PullPanel({ onFinished }: { onFinished?: (job: PullJob) => void }) {
  const { jobs, connected } = usePullFeed(onFinished);
  const [source, setSource] = useState('');
  const [name, setName] = useState('');
  const [pullError, setPullError] = useState<string | null>(null);
  const [dismissed, setDismissed] = useState(loadDismissed);
  const shown = jobs.filter((job) => !dismissed.includes(job.id));

  const dismiss = (id: string) => {
    // Only ids the server still lists are kept, so the stored list does not grow forever.
    const next = [...dismissed.filter((d) => jobs.some((j) => j.id === d)), id];
    setDismissed(next);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify(next));
  };

  const pull = async () => {
    setPullError(null);
    try {
      await apiJson('/api/pull_model', { method: 'POST', body: JSON.stringify({ model: source.trim(), ...(name.trim() ? { name: name.trim() } : {}) }) });
      setSource('');
      setName('');
    } catch (e) {
      setPullError((e as Error).message);
    }
  };

  return (
    <>
      <form
        className="pull-form"
        onSubmit={(event) => {
          event.preventDefault();
          void pull();
        }}
      >
        <input
          value={source}
          onChange={(e) => setSource(e.target.value)}
          placeholder="https://…/model.gguf, hf:owner/repo/file.gguf or an Ollama name"
          aria-label="model source"
        />
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="name (optional)" aria-label="model name" />
        <button type="submit" className="primary" disabled={source.trim() === ''}>
          Pull
        </button>
      </form>
      {pullError && <p className="error" role="alert">{pullError}</p>}
      {shown.length > 0 && (
        <ul className="pulls" data-testid="pulls">
          {shown.map((job) => (
            <PullRow key={job.id} job={job} onDismiss={() => dismiss(job.id)} />
          ))}
        </ul>
      )}
      {!connected && shown.length > 0 && <p className="hint">Reconnecting to the download feed…</p>}
    </>
  );
}
