import { useState } from 'react';
import { apiFetch, ApiError } from '../api.js';
import type { InstanceSettings } from './arena-types.js';

/**
 * Saves a compare column's configuration (model, sampling settings, system prompt) as a model of its
 * own through Ollama's /api/create, so that any Ollama or OpenAI client can use it by name.
 */
export function SaveAsModel({ settings }: { settings: InstanceSettings }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [state, setState] = useState<{ saving?: boolean; saved?: string; error?: string }>({});

  async function save() {
    setState({ saving: true });
    // The Arena reads seed 0 as "random"; a saved model then keeps no seed, as Ollama's default is random.
    const parameters: Record<string, number> = {
      temperature: settings.temperature,
      top_p: settings.top_p,
      top_k: settings.top_k,
      repeat_penalty: settings.repeat_penalty,
      num_predict: settings.num_predict,
      ...(settings.seed > 0 ? { seed: settings.seed } : {}),
    };
    try {
      await apiFetch('/api/create', {
        method: 'POST',
        body: JSON.stringify({ model: name.trim(), from: settings.model, ...(settings.system ? { system: settings.system } : {}), parameters, stream: false }),
      });
      setState({ saved: name.includes(':') ? name.trim() : `${name.trim()}:latest` });
      setOpen(false);
    } catch (error) {
      setState({ error: error instanceof ApiError ? error.message : String(error) });
    }
  }

  if (!open) {
    return (
      <span className="save-as-model">
        <button type="button" onClick={() => setOpen(true)} data-testid="save-as-model">
          Save as model
        </button>
        {state.saved && <small role="status" data-testid="saved-model">Saved as {state.saved}</small>}
      </span>
    );
  }
  return (
    <form
      className="save-as-model"
      onSubmit={(event) => {
        event.preventDefault();
        void save();
      }}
    >
      <label>
        Model name
        <input value={name} onChange={(event) => setName(event.target.value)} placeholder="my-storyteller" required pattern="[A-Za-z0-9][A-Za-z0-9._\-/]*(:[A-Za-z0-9._\-]+)?" data-testid="model-name" />
      </label>
      <button type="submit" disabled={state.saving || name.trim() === ''}>
        Save
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
      {state.error && (
        <small className="error" role="alert">
          {state.error}
        </small>
      )}
    </form>
  );
}
