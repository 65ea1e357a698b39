import { useState } from 'react';
import { defaultSettings, type InstanceSettings } from './arena-types.js';

/** "0.2, 0.7 1.2" → [0.2, 0.7, 1.2]; anything that is not a number is reported. */
export function parseNumberList(text: string): number[] | string {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const numbers = parts.map(Number);
  const bad = parts.filter((_, i) => !Number.isFinite(numbers[i]));
  return bad.length > 0 ? `not a number: ${bad.join(', ')}` : numbers;
}

/** Every combination of models × temperatures × seeds, each other setting at its default. */
export function expandGrid(models: string[], temperatures: number[], seeds: number[]): InstanceSettings[] {
  const out: InstanceSettings[] = [];
  for (const model of models) {
    for (const temperature of temperatures) {
      for (const seed of seeds) out.push({ ...defaultSettings(model), temperature, seed });
    }
  }
  return out;
}

/** The grid helper: pick models, list temperatures and seeds, replace or extend the instances with the grid. */
export function GridHelper({ models, onApply }: { models: string[]; onApply: (instances: InstanceSettings[], replace: boolean) => void }) {
  const [chosen, setChosen] = useState<string[]>([]);
  const [temperatures, setTemperatures] = useState('0.3, 0.7, 1.2');
  const [seeds, setSeeds] = useState('1');
  const temps = parseNumberList(temperatures);
  const seedList = parseNumberList(seeds);
  const error = typeof temps === 'string' ? `temperatures: ${temps}` : typeof seedList === 'string' ? `seeds: ${seedList}` : null;
  const grid = error || typeof temps === 'string' || typeof seedList === 'string' ? [] : expandGrid(chosen, temps, seedList);
  return (
    <div className="grid-helper" data-testid="grid-helper">
      <fieldset>
        <legend>models</legend>
        {models.map((name) => (
          <label key={name} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(name)}
              onChange={(e) => setChosen(e.target.checked ? [...chosen, name] : chosen.filter((m) => m !== name))}
            />
            {name}
          </label>
        ))}
      </fieldset>
      <label>
        temperatures
        <input value={temperatures} onChange={(e) => setTemperatures(e.target.value)} aria-label="grid temperatures" />
      </label>
      <label>
        seeds
        <input value={seeds} onChange={(e) => setSeeds(e.target.value)} aria-label="grid seeds" />
      </label>
      {error && <p className="error">{error}</p>}
      <div className="instance-actions">
        <button type="button" disabled={grid.length === 0} onClick={() => onApply(grid, true)}>
          Replace with {grid.length} instances
        </button>
        <button type="button" disabled={grid.length === 0} onClick={() => onApply(grid, false)}>
          Add {grid.length}
        </button>
      </div>
    </div>
  );
}
