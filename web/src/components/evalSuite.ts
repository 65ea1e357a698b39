import type { InstanceSettings } from './arena-types.js';

/**
 * The evaluation form's model: what the common case needs (models, prompts, sweeps, a few checks),
 * turned into the same suite document the API and the CLI take. Settings handed over from the
 * compare page ("Evaluate these settings") travel through sessionStorage.
 */

export interface SuiteForm {
  name: string;
  models: string[];
  prompts: string;
  temperatures: string;
  seeds: string;
  numPredict: string;
  repeats: string;
  contains: string;
  notContains: string;
  regex: string;
  threshold: string;
  /** Configurations from the compare page, used as they are (beside any sweep of `models`). */
  instances: InstanceSettings[];
}

const HANDOFF_KEY = 'ollama-arena-eval-settings';

export function handOffSettings(instances: InstanceSettings[]): void {
  sessionStorage.setItem(HANDOFF_KEY, JSON.stringify(instances));
}

/** The settings handed over, once: reading them clears them. */
export function takeHandedSettings(): InstanceSettings[] {
  const raw = sessionStorage.getItem(HANDOFF_KEY);
  sessionStorage.removeItem(HANDOFF_KEY);
  try {
    const parsed = raw ? (JSON.parse(raw) as unknown) : [];
    return Array.isArray(parsed) ? (parsed as InstanceSettings[]) : [];
  } catch {
    return [];
  }
}

export function emptyForm(models: string[], instances: InstanceSettings[] = []): SuiteForm {
  return {
    name: 'my evaluation',
    models: instances.length > 0 ? [] : models.slice(0, 1),
    prompts: 'Once upon a time\nTell me about a cat',
    temperatures: instances.length > 0 ? '' : '0.7, 1.2',
    seeds: '1',
    numPredict: '64',
    repeats: '1',
    contains: '',
    notContains: '',
    regex: '\\w',
    threshold: '0.9',
    instances,
  };
}

const numbers = (text: string) =>
  text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isFinite(n));

/** The suite document the form describes (the API validates it; the form only shapes it). */
export function suiteFromForm(form: SuiteForm): Record<string, unknown> {
  const assert: Record<string, unknown>[] = [];
  if (form.contains.trim()) assert.push({ type: 'contains', value: form.contains.trim() });
  if (form.notContains.trim()) assert.push({ type: 'not_contains', value: form.notContains.trim() });
  if (form.regex.trim()) assert.push({ type: 'regex', value: form.regex.trim() });
  const suite: Record<string, unknown> = {
    name: form.name.trim() || 'evaluation',
    prompts: form.prompts
      .split('\n')
      .map((p) => p.trim())
      .filter(Boolean),
  };
  if (form.instances.length > 0) suite.model_instances = form.instances.map((i) => ({ ...i }));
  if (form.models.length > 0) {
    const grid: Record<string, unknown> = { model: form.models };
    const temperatures = numbers(form.temperatures);
    const seeds = numbers(form.seeds);
    const numPredict = numbers(form.numPredict);
    if (temperatures.length > 0) grid.temperature = temperatures;
    if (seeds.length > 0) grid.seed = seeds;
    if (numPredict.length > 0) grid.num_predict = numPredict;
    suite.grid = grid;
  }
  const repeats = Number(form.repeats);
  if (Number.isInteger(repeats) && repeats > 1) suite.repeats = repeats;
  if (assert.length > 0) suite.assert = assert;
  const threshold = Number(form.threshold);
  if (form.threshold.trim() && Number.isFinite(threshold)) suite.threshold = { pass_rate: threshold };
  return suite;
}
