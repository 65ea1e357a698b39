import { useId, useState, type FormEvent } from 'react';
import { SETTINGS, type ModelParameters } from '../../components/arena-types.js';
import { ConfirmButton } from '../../components/ConfirmButton.js';
import { formatStops, parseStops } from '../../components/stopSequences.js';
import { resetCatalogEntry, saveCatalogEntry, type CatalogModel } from './adminApi.js';

type NumericParameter = Exclude<keyof ModelParameters, 'stop'>;

/**
 * Every numeric default the server's catalog accepts, in the order shown. Typed over the server's own
 * ModelParameters, so a parameter it adds fails the build here until the form offers it. The Arena's
 * six take their step and range hint from the shared instance settings; `step` is for the others.
 */
const FIELDS: Record<NumericParameter, { step?: number; note?: string }> = {
  temperature: {},
  top_p: {},
  top_k: {},
  min_p: { step: 0.01 },
  repeat_penalty: {},
  repeat_last_n: { note: '-1 = whole context' },
  presence_penalty: { step: 0.1 },
  frequency_penalty: { step: 0.1 },
  num_predict: { note: '-1 = no limit' },
  max_tokens: { note: 'the same as num_predict' },
  seed: { note: '0 = random in the Arena' },
  num_ctx: {},
};
const NUMERIC = Object.keys(FIELDS) as NumericParameter[];

/** A field's range hint and step: the Arena's range where it has one (the compare page holds instances to it). */
function fieldInfo(key: NumericParameter) {
  const arena = SETTINGS.find((s) => s.key === key);
  const range = arena && `${arena.min}–${arena.max === Number.MAX_SAFE_INTEGER ? '∞' : arena.max}`;
  const outside = (value: number) => arena !== undefined && (value < arena.min || value > arena.max || (arena.step === 1 && !Number.isInteger(value)));
  return { step: arena?.step ?? FIELDS[key].step ?? 1, hint: [range, FIELDS[key].note].filter(Boolean).join(' · '), outside };
}

/** Whether the model has anything a reset would clear (a DELETE of an entry that is not there is a 404). */
function isCustomised(model: CatalogModel): boolean {
  return model.description !== '' || !model.is_active || Object.keys(model.parameters).length > 0;
}

/** The form's text back into the catalog's parameters: an empty field is no default. */
function toParameters(values: Record<NumericParameter, string>, stops: string): ModelParameters {
  const parameters: ModelParameters = {};
  for (const key of NUMERIC) if (values[key].trim() !== '') parameters[key] = Number(values[key]);
  const stop = parseStops(stops);
  if (stop) parameters.stop = stop;
  return parameters;
}

/**
 * An admin's catalog entry for one model: description, active flag and default parameters. The
 * server is the judge of every value (`noValidate`: the Arena's ranges are hints here, its answer
 * with the reason is shown beside the buttons).
 */
export function CatalogForm({ model, id, onSaved, onClose }: { model: CatalogModel; id: string; onSaved: () => Promise<void>; onClose: () => void }) {
  const [description, setDescription] = useState(model.description);
  const [active, setActive] = useState(model.is_active);
  const [values, setValues] = useState(() => Object.fromEntries(NUMERIC.map((key) => [key, String(model.parameters[key] ?? '')])) as Record<NumericParameter, string>);
  const [stops, setStops] = useState(formatStops(model.parameters.stop));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ids = useId();

  const run = async (change: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await change();
      await onSaved();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(() => saveCatalogEntry(model.name, { description, is_active: active, parameters: toParameters(values, stops) }));
  };

  return (
    <form
      id={id}
      className="catalog-form"
      aria-label={`catalog of ${model.name}`}
      noValidate
      onSubmit={submit}
      onKeyDown={(e) => e.key === 'Escape' && !e.defaultPrevented && onClose()}
    >
      <label className="wide">
        description
        <textarea rows={2} value={description} autoFocus onChange={(e) => setDescription(e.target.value)} placeholder="what this model is good for" />
      </label>
      <label className="check wide">
        <input type="checkbox" checked={active} onChange={(e) => setActive(e.target.checked)} />
        active: listed and usable (an inactive model is hidden from every list and refused)
      </label>
      <fieldset className="catalog-defaults wide">
        <legend>
          default parameters <span className="hint">empty = the backend’s default; a request’s own value wins; ranges shown are the Arena’s</span>
        </legend>
        {NUMERIC.map((key) => {
          const { step, hint, outside } = fieldInfo(key);
          const text = values[key];
          const warn = text.trim() !== '' && outside(Number(text));
          return (
            <div className="field" key={key}>
              <label htmlFor={`${ids}-${key}`}>{key}</label>
              <input
                id={`${ids}-${key}`}
                type="number"
                step={step}
                value={text}
                aria-describedby={hint ? `${ids}-${key}-hint` : undefined}
                onChange={(e) => setValues((all) => ({ ...all, [key]: e.target.value }))}
              />
              {hint && (
                <small id={`${ids}-${key}-hint`} className={warn ? 'error' : undefined}>
                  {warn ? `outside the Arena’s ${hint}` : hint}
                </small>
              )}
            </div>
          );
        })}
        <label className="wide">
          stop (one sequence per line, \n for a line break)
          <textarea rows={2} value={stops} onChange={(e) => setStops(e.target.value)} />
        </label>
      </fieldset>
      <div className="catalog-actions wide">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save'}
        </button>
        <ConfirmButton
          label="Reset to defaults"
          question="Clear the description and every default, and make it active?"
          confirmLabel="Yes, reset"
          busy={busy}
          disabled={!isCustomised(model)}
          onConfirm={() => run(() => resetCatalogEntry(model.name))}
        />
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </div>
    </form>
  );
}
