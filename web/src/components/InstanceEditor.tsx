import { SETTINGS, type InstanceSettings } from './arena-types.js';

/**
 * The settings of one model instance: model, every sampling setting within its documented range, and
 * an optional system prompt. Duplicate makes a copy to change one setting of.
 */
export function InstanceEditor({ index, value, models, onChange, onDuplicate, onRemove }: {
  index: number;
  value: InstanceSettings;
  models: string[];
  onChange: (value: InstanceSettings) => void;
  onDuplicate: () => void;
  onRemove?: () => void;
}) {
  // A saved instance keeps its model when the list no longer has it (deleted, or switched off by an
  // admin): still selected, so the instance is not silently changed, but marked and not offered again.
  // While the list loads nothing is known to be missing.
  const kept = value.model !== '' && !models.includes(value.model);
  const unlisted = kept && models.length > 0;
  return (
    <fieldset className="instance-editor" data-testid="instance-editor">
      <legend>#{index + 1}</legend>
      <label className="wide">
        model
        <select value={value.model} onChange={(e) => onChange({ ...value, model: e.target.value })} aria-label={`model of instance ${index + 1}`}>
          {kept && (
            <option value={value.model} disabled={unlisted}>
              {unlisted ? `${value.model} (not listed)` : value.model}
            </option>
          )}
          {models.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
      </label>
      {SETTINGS.map((setting) => (
        <label key={setting.key}>
          {setting.label}
          <input
            type="number"
            min={setting.min}
            max={setting.max}
            step={setting.step}
            value={value[setting.key]}
            aria-label={`${setting.label} of instance ${index + 1}`}
            onChange={(e) => {
              // An emptied field keeps its last value: a half-typed number is not a setting yet.
              if (e.target.value === '' || !Number.isFinite(e.target.valueAsNumber)) return;
              onChange({ ...value, [setting.key]: e.target.valueAsNumber });
            }}
          />
        </label>
      ))}
      <label className="wide">
        system prompt
        <textarea
          rows={2}
          value={value.system ?? ''}
          placeholder="(none)"
          aria-label={`system prompt of instance ${index + 1}`}
          onChange={(e) => onChange({ ...value, system: e.target.value || undefined })}
        />
      </label>
      <div className="instance-actions">
        <button type="button" onClick={onDuplicate}>
          Duplicate
        </button>
        {onRemove && (
          <button type="button" onClick={onRemove} aria-label={`remove instance ${index + 1}`}>
            Remove
          </button>
        )}
      </div>
    </fieldset>
  );
}

/** Settings outside their range, as messages (the server would refuse them with a 400). */
export function settingsProblems(value: InstanceSettings): string[] {
  const problems: string[] = [];
  if (!value.model) problems.push('no model chosen');
  for (const s of SETTINGS) {
    const v = value[s.key];
    const integer = s.step === 1;
    if (v < s.min || v > s.max || (integer && !Number.isInteger(v))) {
      problems.push(`${s.label} must be ${integer ? 'an integer ' : ''}between ${s.min} and ${s.key === 'seed' ? '∞' : s.max}`);
    }
  }
  return problems;
}
