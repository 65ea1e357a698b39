import '../components/arena.css';
import './evals.css';
import { useEffect, useState } from 'react';
import { apiJson } from '../api.js';
import { Link } from '../components/Link.js';
import { useModels } from '../components/useModels.js';
import { emptyForm, suiteFromForm, takeHandedSettings, type SuiteForm } from '../components/evalSuite.js';
import { navigate } from '../navigation.js';

interface EvalSummary {
  id: string;
  name: string;
  status: string;
  created_at: string;
  total: number;
  configurations: number;
  prompts: number;
}

/**
 * The evaluations page: a form for the common case (models, prompts, sweeps, checks) that writes the
 * suite, an editor for the suite itself (JSON or YAML, as the CLI reads it), and the past evaluations.
 */
export function EvalsPage() {
  const { models } = useModels();
  const names = models?.map((m) => m.name) ?? [];
  const [form, setForm] = useState<SuiteForm | null>(null);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [list, setList] = useState<EvalSummary[]>([]);

  useEffect(() => {
    if (!models || form) return;
    const handed = takeHandedSettings();
    const initial = emptyForm(names, handed);
    setForm(initial);
    setText(JSON.stringify(suiteFromForm(initial), null, 2));
  }, [models]);

  useEffect(() => {
    apiJson<{ evaluations: EvalSummary[] }>('/api/evals?limit=20').then((body) => setList(body.evaluations), () => undefined);
  }, []);

  const update = (change: Partial<SuiteForm>) => {
    const next = { ...form!, ...change };
    setForm(next);
    setText(JSON.stringify(suiteFromForm(next), null, 2));
  };

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      // The editor may hold JSON or YAML: the server reads both.
      const created = await apiJson<{ id: string }>('/api/evals', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: text });
      navigate(`/evals/${created.id}`);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const field = (label: string, key: keyof SuiteForm, hint?: string) => (
    <label className="eval-field">
      <span>{label}</span>
      <input aria-label={label} value={String(form![key])} onChange={(e) => update({ [key]: e.target.value })} placeholder={hint} />
    </label>
  );

  return (
    <div className="page evals-page">
      {form && (
        <details className="panel" open>
          <summary>Quick suite: models × prompts × settings</summary>
          {form.instances.length > 0 && (
            <p className="hint" data-testid="handed-settings">
              {form.instances.length} configurations from Compare: {form.instances.map((i) => `${i.model} (t=${i.temperature}, seed ${i.seed})`).join(', ')}{' '}
              <button type="button" onClick={() => update({ instances: [] })}>
                Drop them
              </button>
            </p>
          )}
          <fieldset className="eval-models">
            <legend>Sweep models</legend>
            {names.map((name) => (
              <label key={name}>
                <input
                  type="checkbox"
                  checked={form.models.includes(name)}
                  onChange={(e) => update({ models: e.target.checked ? [...form.models, name] : form.models.filter((m) => m !== name) })}
                />{' '}
                {name}
              </label>
            ))}
          </fieldset>
          <label className="eval-field wide">
            <span>Prompts (one a line)</span>
            <textarea aria-label="Prompts" rows={4} value={form.prompts} onChange={(e) => update({ prompts: e.target.value })} />
          </label>
          <div className="eval-fields">
            {field('Name', 'name')}
            {field('Temperatures', 'temperatures', '0.7, 1.2')}
            {field('Seeds', 'seeds', '1, 2')}
            {field('Max tokens', 'numPredict', '64')}
            {field('Repeats', 'repeats', '1')}
            {field('Must contain', 'contains')}
            {field('Must not contain', 'notContains')}
            {field('Must match (regex)', 'regex')}
            {field('Pass-rate threshold', 'threshold', '0.9')}
          </div>
        </details>
      )}
      <details className="panel" open>
        <summary>Suite (JSON or YAML: the same document as the API and `ollama-arena eval`)</summary>
        <textarea className="suite-editor" aria-label="Suite" rows={16} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
        <div className="instance-actions">
          <button type="button" className="primary" disabled={busy || text.trim() === ''} onClick={() => void start()}>
            Start evaluation
          </button>
          <span className="hint">
            Judges (pairwise or score), per-prompt assertions and more: see the <a href="/docs">API docs</a> and docs/evaluations.md.
          </span>
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </details>
      <section className="panel">
        <h2>Past evaluations</h2>
        {list.length === 0 ? (
          <p className="empty">None yet.</p>
        ) : (
          <ul className="eval-list">
            {list.map((e) => (
              <li key={e.id}>
                <Link to={`/evals/${e.id}`}>{e.name}</Link> <span className={`status ${e.status}`}>{e.status}</span>{' '}
                <span className="hint">
                  {e.prompts} prompts × {e.configurations} configurations · {new Date(e.created_at).toLocaleString()}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
