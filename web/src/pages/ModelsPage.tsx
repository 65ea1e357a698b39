import '../components/arena.css';
import { useState } from 'react';
import { apiJson } from '../api.js';
import type { ModelDetails, PullJob } from '../components/arena-types.js';
import { ProgressBar } from '../components/ProgressBar.js';
import { useModels } from '../components/useModels.js';
import { usePullFeed } from '../components/usePullFeed.js';

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** One model's row: its details, load or unload, and delete behind an inline confirmation. */
function ModelRow({ model, onChanged }: { model: ModelDetails; onChanged: () => Promise<void> }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const act = async (label: string, path: string, body?: unknown) => {
    setBusy(label);
    setError(null);
    try {
      await apiJson(path, { method: 'POST', body: JSON.stringify(body ?? {}) });
      await onChanged();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(null);
      setConfirming(false);
    }
  };
  const name = encodeURIComponent(model.name);
  return (
    <tr data-testid="model-row" data-model={model.name}>
      <td>
        <span className="name">{model.name}</span>
        {error && <small className="error" role="alert">{error}</small>}
      </td>
      <td>{model.family ?? '–'}</td>
      <td className="num">{model.parameter_size ?? '–'}</td>
      <td className="num">{model.size_mb === null ? '–' : `${model.size_mb} MB`}</td>
      <td>{model.quantization ?? '–'}</td>
      <td className="num">{model.context_size ?? '–'}</td>
      <td>
        {model.backends.map((b) => (
          <span key={b.id} className={`badge${b.healthy ? '' : ' down'}`} title={b.healthy ? 'healthy' : 'down'}>
            {b.kind === b.id ? b.kind : `${b.kind}: ${b.id}`}
          </span>
        ))}
      </td>
      <td>
        <span className={`badge${model.loaded ? ' on' : ''}`} data-testid="loaded">
          {model.loaded ? 'loaded' : 'not loaded'}
        </span>
      </td>
      <td>
        <div className="row-actions">
          {model.loaded ? (
            <button type="button" disabled={busy !== null} onClick={() => void act('unload', `/api/models/${name}/unload`)}>
              {busy === 'unload' ? 'Unloading…' : 'Unload'}
            </button>
          ) : (
            <button type="button" disabled={busy !== null} onClick={() => void act('load', `/api/models/${name}/load`)}>
              {busy === 'load' ? 'Loading…' : 'Load'}
            </button>
          )}
          {confirming ? (
            <span className="confirm">
              Delete {model.name}?
              <button type="button" className="danger" disabled={busy !== null} onClick={() => void act('delete', '/api/delete_model', { model: model.name })}>
                Yes, delete
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </span>
          ) : (
            <button type="button" className="danger" disabled={busy !== null} onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}

/** One download, as the server reports it to every open page. */
function PullRow({ job }: { job: PullJob }) {
  const [error, setError] = useState<string | null>(null);
  const percent = job.state === 'success' ? 100 : job.percent;
  return (
    <li className={`pull ${job.state}`} data-testid="pull" data-state={job.state}>
      <div className="pull-head">
        <b>{job.model}</b>
        <small className="source">{job.source}</small>
      </div>
      <ProgressBar percent={percent} label={`download of ${job.model}`} />
      <div className="pull-foot">
        <span>
          {job.state === 'running' ? job.status : job.state}
          {job.completed !== undefined && ` · ${megabytes(job.completed)} of ${megabytes(job.total)}`}
        </span>
        {job.error && job.state !== 'cancelled' && <span className="error">{job.error}</span>}
        {job.state === 'running' && (
          <button type="button" onClick={() => apiJson(`/api/pulls/${job.id}`, { method: 'DELETE' }).catch((e: Error) => setError(e.message))}>
            Cancel
          </button>
        )}
        {error && <span className="error">{error}</span>}
      </div>
    </li>
  );
}

/**
 * Every model with its details; load, unload and delete; pull from a URL or an hf: reference with
 * live progress from the server's download jobs.
 */
export function ModelsPage() {
  const { models, error, reload } = useModels();
  const { jobs, connected } = usePullFeed((job) => job.state === 'success' && void reload());
  const [source, setSource] = useState('');
  const [name, setName] = useState('');
  const [pullError, setPullError] = useState<string | null>(null);

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
    <div className="page models-page">
      <section className="panel">
        <h2>Pull a model</h2>
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
        {jobs.length > 0 && (
          <ul className="pulls" data-testid="pulls">
            {jobs.map((job) => (
              <PullRow key={job.id} job={job} />
            ))}
          </ul>
        )}
        {!connected && jobs.length > 0 && <p className="hint">Reconnecting to the download feed…</p>}
      </section>

      <section className="panel">
        <h2>Models</h2>
        {error && <p className="error">{error}</p>}
        {models && models.length === 0 && <p className="empty">No models yet: pull one above.</p>}
        {models && models.length > 0 && (
          <div className="table-wrap">
            <table className="models" data-testid="models">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Family</th>
                  <th className="num">Params</th>
                  <th className="num">Size</th>
                  <th>Quantization</th>
                  <th className="num">Context</th>
                  <th>Backends</th>
                  <th>State</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {models.map((model) => (
                  <ModelRow key={model.name} model={model} onChanged={reload} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
