import { parse as parseYaml } from 'yaml';
import type { ChatMessage } from '../../domain/chat.js';
import { parseArenaRequest, parseHistory, type UnsaidByInstance } from '../arena.js';
import type { ModelInstance } from '../../domain/arena.js';
import { isRecord } from '../../shared/is-record.js';
import { configurationKey, INSTANCE_RANGES, type InstanceSetting } from '../../shared/instances.js';
import { parseAssertions } from './assertions.js';
import { SuiteError } from './suite-error.js';
import type { SuitePrompt, JudgeSpec, Suite } from '../../domain/evals.js';

/**
 * An evaluation suite: prompts × configurations × repeats, with assertions and an optional judge.
 * The same document comes from the API (JSON or YAML), the web page and the CLI; this module turns it
 * into a validated plan, or throws SuiteError with a message a person can act on.
 */

export { SuiteError };

/** Configurations one suite may expand to (model instances plus the grid). */
export const MAX_CONFIGURATIONS = 64;
/** Cells (prompts × configurations × repeats) one evaluation may run. */
export const MAX_CELLS = 5_000;
const MAX_PROMPTS = 1_000;
const MAX_REPEATS = 20;
const MAX_CONCURRENCY = 16;
const DEFAULT_CONCURRENCY = 4;

const GRID_NUMBERS: InstanceSetting[] = ['temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed'];

/** A suite document as text: JSON, or YAML (of which JSON is a subset). */
export function readSuiteText(text: string): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 100 }) as unknown;
  } catch (error) {
    throw new SuiteError(`the suite is neither valid JSON nor YAML: ${(error as Error).message}`);
  }
}

function fill(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{\s*([A-Za-z_][\w-]*)\s*\}\}/g, (whole, name: string) => vars[name] ?? whole);
}

function parsePrompt(raw: unknown, index: number): SuitePrompt {
  const where = `prompts[${index}]`;
  const entry = typeof raw === 'string' ? { prompt: raw } : raw;
  if (!isRecord(entry)) throw new SuiteError(`${where} must be a text or an object with prompt or messages`);
  const vars: Record<string, string> = {};
  if (entry.vars !== undefined) {
    if (!isRecord(entry.vars)) throw new SuiteError(`${where}.vars must be an object of names to values`);
    for (const [name, value] of Object.entries(entry.vars)) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw new SuiteError(`${where}.vars.${name} must be a text or a number`);
      vars[name] = String(value);
    }
  }
  let messages: ChatMessage[];
  if (typeof entry.prompt === 'string' && entry.prompt.trim() !== '') {
    if (entry.messages !== undefined) throw new SuiteError(`${where} has both prompt and messages: give one`);
    messages = [{ role: 'user', content: entry.prompt }];
  } else if (entry.messages !== undefined) {
    try {
      messages = parseHistory(entry.messages);
    } catch (error) {
      throw new SuiteError(`${where}.messages: ${(error as Error).message.replace(/^history/, 'messages')}`);
    }
  } else {
    throw new SuiteError(`${where} needs a non-empty prompt or messages`);
  }
  if (entry.system !== undefined) {
    if (typeof entry.system !== 'string') throw new SuiteError(`${where}.system must be a text`);
    messages = [{ role: 'system', content: entry.system }, ...messages.filter((m) => m.role !== 'system')];
  }
  messages = messages.map((m) => ({ ...m, content: fill(m.content, vars) }));
  if (entry.reference !== undefined && typeof entry.reference !== 'string') throw new SuiteError(`${where}.reference must be a text`);
  const reference = entry.reference === undefined ? undefined : fill(entry.reference, vars);
  return { messages, reference, assert: parseAssertions(entry.assert, `${where}.assert`) };
}

/** One configuration through the Arena's own instance validation, so both accept exactly the same settings. */
function parseInstance(raw: Record<string, unknown>, where: string, unsaid: UnsaidByInstance): ModelInstance {
  try {
    const parse = (entry: Record<string, unknown>) => {
      const request = parseArenaRequest({ history: [{ role: 'user', content: '-' }], model_instances: [entry] });
      const instance = request.instances[0]!;
      const left = request.unsaid?.get(instance);
      if (left) unsaid.set(instance, left);
      return instance;
    };
    const instance = parse(raw);
    // The instance id leaves the system prompt out; two configurations differing in it alone need two ids.
    return instance.system && raw.id === undefined ? parse({ ...raw, id: configurationKey(instance) }) : instance;
  } catch (error) {
    throw new SuiteError(`${where}: ${(error as Error).message.replace(/ \(instance 0\)|model_instances\[0\]\./g, '')}`);
  }
}

function gridValues(grid: Record<string, unknown>, key: string): unknown[] | undefined {
  const value = grid[key];
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new SuiteError(`grid.${key} must not be empty`);
  return list;
}

/** The grid's cartesian product, refused before it is built when it would pass the cap. */
function expandGrid(raw: unknown, already: number): Record<string, unknown>[] {
  if (raw === undefined || raw === null) return [];
  if (!isRecord(raw)) throw new SuiteError('grid must be an object of setting names to lists of values');
  const known = new Set(['model', 'system', ...GRID_NUMBERS]);
  for (const key of Object.keys(raw)) if (!known.has(key)) throw new SuiteError(`grid.${key} is not a setting: use model, system, ${GRID_NUMBERS.join(', ')}`);
  const models = gridValues(raw, 'model');
  if (!models) throw new SuiteError('grid.model is required: the models to sweep');
  const axes: [string, unknown[]][] = [['model', models]];
  for (const key of [...GRID_NUMBERS, 'system']) {
    const values = gridValues(raw, key);
    if (values) axes.push([key, values]);
  }
  const size = axes.reduce((product, [, values]) => product * values.length, 1);
  if (size + already > MAX_CONFIGURATIONS) {
    throw new SuiteError(`the suite expands to ${size + already} configurations; at most ${MAX_CONFIGURATIONS} are allowed`);
  }
  let combos: Record<string, unknown>[] = [{}];
  for (const [key, values] of axes) combos = combos.flatMap((combo) => values.map((value) => ({ ...combo, [key]: value })));
  return combos;
}

function parseJudge(raw: unknown): { mode: JudgeSpec['mode']; raw: Record<string, unknown>; rubric: string } | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) throw new SuiteError('judge must be an object with mode, model and rubric');
  if (raw.mode !== 'pairwise' && raw.mode !== 'score') throw new SuiteError('judge.mode must be "pairwise" or "score"');
  if (typeof raw.rubric !== 'string' || raw.rubric.trim() === '') throw new SuiteError('judge.rubric must be a non-empty text');
  const settings: Record<string, unknown> = { model: raw.model, temperature: raw.temperature ?? INSTANCE_RANGES.temperature.min, seed: raw.seed ?? 1 };
  for (const key of ['top_p', 'top_k', 'repeat_penalty', 'num_predict', 'system']) if (raw[key] !== undefined) settings[key] = raw[key];
  return { mode: raw.mode, raw: settings, rubric: raw.rubric };
}

function bounded(value: unknown, name: string, min: number, max: number, fallback: number, integer = true): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new SuiteError(`${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
  }
  return value;
}

/**
 * Validates a suite document and expands its grid. Model names are checked here only for form; that
 * they exist (and may be used) is for the caller, which knows the router and the caller's key.
 */
/** A suite document checked and expanded; what its configurations left unsaid goes into `unsaid`, for resolveInstances. */
export function parseSuite(document: unknown, unsaid: UnsaidByInstance = new Map()): Suite {
  const raw = typeof document === 'string' ? readSuiteText(document) : document;
  if (!isRecord(raw)) throw new SuiteError('a suite must be an object with prompts and model_instances or grid');
  const known = new Set(['name', 'description', 'prompts', 'model_instances', 'grid', 'repeats', 'assert', 'judge', 'threshold', 'concurrency']);
  for (const key of Object.keys(raw)) if (!known.has(key)) throw new SuiteError(`unknown suite field: ${key}`);
  if (raw.name !== undefined && typeof raw.name !== 'string') throw new SuiteError('name must be a text');
  if (!Array.isArray(raw.prompts) || raw.prompts.length === 0) throw new SuiteError('the suite has no prompts: give a non-empty prompts list');
  if (raw.prompts.length > MAX_PROMPTS) throw new SuiteError(`at most ${MAX_PROMPTS} prompts per suite`);
  const prompts = raw.prompts.map(parsePrompt);

  if (raw.model_instances !== undefined && !Array.isArray(raw.model_instances)) throw new SuiteError('model_instances must be a list');
  const listed = (raw.model_instances as unknown[] | undefined) ?? [];
  if (listed.length > MAX_CONFIGURATIONS) throw new SuiteError(`at most ${MAX_CONFIGURATIONS} configurations per suite`);
  const instances = listed.map((entry, i) => {
    if (!isRecord(entry)) throw new SuiteError(`model_instances[${i}] must be an object`);
    return parseInstance(entry, `model_instances[${i}]`, unsaid);
  });
  for (const [i, combo] of expandGrid(raw.grid, instances.length).entries()) instances.push(parseInstance(combo, `grid configuration ${i}`, unsaid));
  if (instances.length === 0) throw new SuiteError('the suite has no configurations: give model_instances or a grid');
  const seen = new Set<string>();
  for (const instance of instances) {
    if (seen.has(instance.id)) throw new SuiteError(`the configuration ${instance.id} appears twice`);
    seen.add(instance.id);
  }

  const repeats = bounded(raw.repeats, 'repeats', 1, MAX_REPEATS, 1);
  const cells = prompts.length * instances.length * repeats;
  if (cells > MAX_CELLS) throw new SuiteError(`the suite has ${cells} cells (prompts × configurations × repeats); at most ${MAX_CELLS} are allowed`);
  const assert = parseAssertions(raw.assert, 'assert');
  for (const [i, prompt] of prompts.entries()) {
    if ([...assert, ...prompt.assert].some((a) => a.type === 'similar' && a.value === undefined) && prompt.reference === undefined) {
      throw new SuiteError(`prompts[${i}] has a similar assertion but no reference answer`);
    }
  }

  const judgeRaw = parseJudge(raw.judge);
  let judge: JudgeSpec | undefined;
  if (judgeRaw) {
    if (judgeRaw.mode === 'pairwise' && instances.length < 2) throw new SuiteError('a pairwise judge needs at least two configurations');
    judge = { mode: judgeRaw.mode, rubric: judgeRaw.rubric, instance: parseInstance(judgeRaw.raw, 'judge', unsaid) };
  }
  let threshold: Suite['threshold'];
  if (raw.threshold !== undefined) {
    if (!isRecord(raw.threshold)) throw new SuiteError('threshold must be an object such as { pass_rate: 0.9 }');
    threshold = { pass_rate: bounded(raw.threshold.pass_rate, 'threshold.pass_rate', 0, 1, 0, false) };
  }
  return {
    name: typeof raw.name === 'string' && raw.name.trim() ? raw.name.trim().slice(0, 200) : 'evaluation',
    prompts,
    instances,
    repeats,
    assert,
    judge,
    threshold,
    concurrency: bounded(raw.concurrency, 'concurrency', 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY),
  };
}

/** Every model a suite names: its configurations', the judge's and the similarity assertions' embedding models. */
export function suiteModels(suite: Suite): string[] {
  const names = new Set(suite.instances.map((i) => i.model));
  if (suite.judge) names.add(suite.judge.instance.model);
  for (const assertion of [...suite.assert, ...suite.prompts.flatMap((p) => p.assert)]) if (assertion.type === 'similar') names.add(assertion.model);
  return [...names];
}
