import '../components/arena.css';
import { useId, useRef, useState } from 'react';
import { apiJson } from '../api.js';
import type { ModelParameters } from '../components/arena-types.js';
import { ConfirmButton } from '../components/ConfirmButton.js';
import { useModelList } from '../components/useModels.js';
import { PullPanel } from '../components/PullPanel.js';
import type { CatalogModel } from './admin/adminApi.js';
import { CatalogForm } from './admin/CatalogForm.js';

/** The models table's columns; the catalog's form spans them all. */
const COLUMNS: { label: string; numeric?: boolean }[] = [
  { label: 'Name' },
  { label: 'Family' },
  { label: 'Params', numeric: true },
  { label: 'Size', numeric: true },
  { label: 'Quantization' },
  { label: 'Context', numeric: true },
  { label: 'Backends' },
  { label: 'State' },
  { label: 'Actions' },
];

/** The catalog's defaults in one line, e.g. `temperature 0.3 · stop ["The end"]`. */
function defaultsSummary(parameters: ModelParameters): string {
  return Object.entries(parameters)
    .map(([key, value]) => `${key} ${Array.isArray(value) ? JSON.stringify(value) : String(value)}`)
    .join(' · ');
}

/**
 * One model's row: its details and catalog fields (description, active, defaults; all rendered as
 * text), load or unload, delete behind an inline confirmation, and for an admin the catalog's form in
 * a row of its own below. Cells carry their column's name, which the phone layout shows beside them.
 */
function ModelRow({ model, admin, onChanged }: { model: CatalogModel; admin: boolean; onChanged: () => Promise<void> }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const formId = useId();
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
    }
  };
  // The form goes away on Save, Reset, Cancel or Escape; focus goes back to the button that opened it.
  const closeEditor = () => {
    setEditing(false);
    editButton.current?.focus();
  };
  const name = encodeURIComponent(model.name);
  const defaults = defaultsSummary(model.parameters);
  return (
    <>
      <tr data-testid="model-row" data-model={model.name} className={model.is_active ? undefined : 'inactive'}>
        <td className="model-name">
          <span className="name">{model.name}</span>
          {model.description && <small data-testid="description">{model.description}</small>}
          {defaults && <small data-testid="defaults">defaults: {defaults}</small>}
          {error && <small className="error" role="alert">{error}</small>}
        </td>
        <td data-label="Family">{model.family ?? '–'}</td>
        <td data-label="Params" className="num">{model.parameter_size ?? '–'}</td>
        <td data-label="Size" className="num">{model.size_mb === null ? '–' : `${model.size_mb} MB`}</td>
        <td data-label="Quantization">{model.quantization ?? '–'}</td>
        <td data-label="Context" className="num">{model.context_size ?? '–'}</td>
        <td data-label="Backends">
          {model.backends.map((b) => (
            <span key={b.id} className={`badge${b.healthy ? '' : ' down'}`} title={b.healthy ? 'healthy' : 'down'}>
              {b.kind === b.id ? b.kind : `${b.kind}: ${b.id}`}
            </span>
          ))}
        </td>
        <td data-label="State" className="state">
          <span className={`badge ${model.is_active ? 'on' : 'off'}`} data-testid="active">
            {model.is_active ? 'active' : 'inactive'}
          </span>
          {model.available ? (
            <span className={`badge${model.loaded ? ' on' : ''}`} data-testid="loaded">
              {model.loaded ? 'loaded' : 'not loaded'}
            </span>
          ) : (
            <span className="badge" title="a catalog entry of a model no backend serves now">
              not served
            </span>
          )}
        </td>
        <td className="actions">
          <div className="row-actions">
            {model.available &&
              (model.loaded ? (
                <button type="button" disabled={busy !== null} onClick={() => void act('unload', `/api/models/${name}/unload`)}>
                  {busy === 'unload' ? 'Unloading…' : 'Unload'}
                </button>
              ) : (
                <button type="button" disabled={busy !== null} onClick={() => void act('load', `/api/models/${name}/load`)}>
                  {busy === 'load' ? 'Loading…' : 'Load'}
                </button>
              ))}
            {model.available && (
              <ConfirmButton
                label="Delete"
                question={<>Delete <span className="whole-name">{model.name}</span>?</>}
                confirmLabel="Yes, delete"
                busy={busy !== null}
                onConfirm={() => act('delete', '/api/delete_model', { model: model.name })}
              />
            )}
            {admin && (
              <button
                type="button"
                ref={editButton}
                aria-expanded={editing}
                aria-controls={editing ? formId : undefined}
                onClick={() => (editing ? closeEditor() : setEditing(true))}
              >
                Edit catalog
              </button>
            )}
          </div>
        </td>
      </tr>
      {editing && (
        <tr className="catalog-row">
          <td colSpan={COLUMNS.length}>
            <CatalogForm
              id={formId}
              model={model}
              onClose={closeEditor}
              onSaved={async () => {
                await onChanged();
                closeEditor();
              }}
            />
          </td>
        </tr>
      )}
    </>
  );
}

/**
 * Every model with its details and catalog fields; load, unload and delete; an admin also edits the
 * catalog (and sees the inactive models, which nobody else does); pull from a URL or an hf: reference with
 * live progress from the server's download jobs.
 */
export function ModelsPage() {
  const { models, error, reload, admin } = useModelList();
  return (
    <div className="page models-page">
      <h1>Models</h1>
      <section className="panel">
        <h2>Pull a model</h2>
        <PullPanel onFinished={(job) => job.state === 'success' && void reload()} />
      </section>

      <section className="panel">
        <h2>
          Models {admin && <span className="hint">as the catalog has them: inactive ones greyed, to switch back on</span>}
        </h2>
        {error && <p className="error">{error}</p>}
        {models && models.length === 0 && <p className="empty">No models yet: pull one above.</p>}
        {models && models.length > 0 && (
          <div className="table-wrap">
            <table className="models" data-testid="models">
              <thead>
                <tr>
                  {COLUMNS.map((column) => (
                    <th key={column.label} className={column.numeric ? 'num' : undefined}>
                      {column.label}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {models.map((model) => (
                  <ModelRow key={model.name} model={model} admin={admin === true} onChanged={reload} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
