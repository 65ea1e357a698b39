import type { OutputFormat } from '../providers/types.js';
import type { GenerationOptions } from '../domain/chat.js';
import { isRecord } from '../shared/is-record.js';

/**
 * The one place where the sampling settings of every single-model surface become `GenerationOptions`:
 * Ollama's `options` object, the management API's top-level `temperature` / `max_tokens`, the extended Ollama API's
 * `options.max_tokens` / `options.stop`, and OpenAI's request parameters. Types and the documented ranges
 * are checked here so that a bad value is a 400 that names the field, never a 500 further down.
 */

export class OptionsError extends Error {
  readonly statusCode = 400;
}

type Kind = 'number' | 'integer' | 'boolean' | 'string' | 'stop';

interface Rule {
  kind: Kind;
  min?: number;
  max?: number;
}

/**
 * Every option Ollama documents (api/types.go `Options` and `Runner`), with the extended Ollama API's ranges where it
 * gives them (temperature 0-2, top_p 0-1, top_k >= 0, max_tokens >= 1, repeat_penalty >= 0).
 */
const OLLAMA_RULES: Record<string, Rule> = {
  num_keep: { kind: 'integer' },
  seed: { kind: 'integer' },
  num_predict: { kind: 'integer', min: -2 },
  max_tokens: { kind: 'integer', min: 1 },
  top_k: { kind: 'integer', min: 0 },
  top_p: { kind: 'number', min: 0, max: 1 },
  min_p: { kind: 'number', min: 0, max: 1 },
  typical_p: { kind: 'number', min: 0, max: 1 },
  tfs_z: { kind: 'number', min: 0 },
  repeat_last_n: { kind: 'integer', min: -1 },
  temperature: { kind: 'number', min: 0, max: 2 },
  repeat_penalty: { kind: 'number', min: 0 },
  presence_penalty: { kind: 'number' },
  frequency_penalty: { kind: 'number' },
  mirostat: { kind: 'integer', min: 0, max: 2 },
  mirostat_tau: { kind: 'number' },
  mirostat_eta: { kind: 'number' },
  penalize_newline: { kind: 'boolean' },
  stop: { kind: 'stop' },
  numa: { kind: 'boolean' },
  num_ctx: { kind: 'integer', min: 1 },
  num_batch: { kind: 'integer', min: 1 },
  num_gpu: { kind: 'integer' },
  main_gpu: { kind: 'integer', min: 0 },
  low_vram: { kind: 'boolean' },
  f16_kv: { kind: 'boolean' },
  logits_all: { kind: 'boolean' },
  vocab_only: { kind: 'boolean' },
  use_mmap: { kind: 'boolean' },
  use_mlock: { kind: 'boolean' },
  num_thread: { kind: 'integer', min: 0 },
};

/** The options the gateway itself understands; the rest travel in `extra` to backends that do. */
const MAPPED = new Set(['seed', 'num_predict', 'max_tokens', 'top_k', 'top_p', 'min_p', 'repeat_last_n', 'temperature', 'repeat_penalty', 'presence_penalty', 'frequency_penalty', 'stop', 'num_ctx']);

const KIND_NAMES: Record<Kind, string> = {
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean',
  string: 'a string',
  stop: 'a string or an array of strings',
};


/** Checks one value against its rule; `label` is how the message names the field. */
function check(label: string, value: unknown, rule: Rule): number | boolean | string | string[] {
  const fail = (what: string) => new OptionsError(`${label} must be ${what}`);
  switch (rule.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') throw fail(KIND_NAMES.boolean);
      return value;
    case 'string':
      if (typeof value !== 'string') throw fail(KIND_NAMES.string);
      return value;
    case 'stop':
      if (typeof value === 'string') return [value];
      if (!Array.isArray(value) || value.some((s) => typeof s !== 'string')) throw fail(KIND_NAMES.stop);
      return value as string[];
    default: {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw fail(KIND_NAMES[rule.kind]);
      if (rule.kind === 'integer' && !Number.isInteger(value)) throw fail(KIND_NAMES.integer);
      const { min, max } = rule;
      if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
        const range = max === undefined ? `${min} or more` : min === undefined ? `${max} or less` : `between ${min} and ${max}`;
        throw new OptionsError(`${label} must be ${range} (got ${value})`);
      }
      return value;
    }
  }
}

/** The mapped fields of GenerationOptions from already-checked values (seed: negative means random). */
function assign(options: GenerationOptions, key: string, value: unknown): void {
  if (key === 'seed') {
    options.seed = (value as number) < 0 ? undefined : (value as number);
  } else if (key === 'max_tokens') {
    options.num_predict ??= value as number;
  } else {
    (options as Record<string, unknown>)[key] = value;
  }
}

/**
 * Ollama's `options` plus the management API's top-level `temperature` and `max_tokens`. Inside `options`,
 * `num_predict` wins over the extended Ollama API's `max_tokens`; `options` wins over the top level. Unknown keys are
 * ignored, as Ollama ignores them; a known key with the wrong type or out of range is a 400.
 */
export function parseOllamaOptions(options: unknown, topLevel: { temperature?: unknown; max_tokens?: unknown } = {}): GenerationOptions {
  if (options !== undefined && options !== null && !isRecord(options)) throw new OptionsError('options must be an object');
  const result: GenerationOptions = {};
  const extra: Record<string, unknown> = {};
  const entries = Object.entries(options ?? {}).filter(([, value]) => value !== null && value !== undefined);
  // num_predict first, so that it wins over max_tokens whatever the key order.
  entries.sort(([a], [b]) => Number(b === 'num_predict') - Number(a === 'num_predict'));
  for (const [key, value] of entries) {
    const rule = OLLAMA_RULES[key];
    if (!rule) continue;
    const checked = check(`option "${key}"`, value, rule);
    if (MAPPED.has(key)) assign(result, key, checked);
    else extra[key] = checked;
  }
  for (const key of ['temperature', 'max_tokens'] as const) {
    const value = topLevel[key];
    if (value === undefined || value === null) continue;
    const checked = check(key, value, OLLAMA_RULES[key]!);
    if (key === 'temperature') result.temperature ??= checked as number;
    else result.num_predict ??= checked as number;
  }
  if (Object.keys(extra).length > 0) result.extra = extra;
  return result;
}

/** The most choices (`n`) one chat or text completion may ask for: each is a generation of its own. */
const MAX_CHOICES = 8;

const OPENAI_RULES: Record<string, Rule> = {
  temperature: { kind: 'number', min: 0, max: 2 },
  top_p: { kind: 'number', min: 0, max: 1 },
  max_tokens: { kind: 'integer', min: 1 },
  max_completion_tokens: { kind: 'integer', min: 1 },
  seed: { kind: 'integer' },
  stop: { kind: 'stop' },
  presence_penalty: { kind: 'number', min: -2, max: 2 },
  frequency_penalty: { kind: 'number', min: -2, max: 2 },
  n: { kind: 'integer', min: 1, max: MAX_CHOICES },
  // Not OpenAI's, but vLLM and llama.cpp server accept them on the same endpoints; so do we.
  top_k: { kind: 'integer', min: 0 },
  min_p: { kind: 'number', min: 0, max: 1 },
  repeat_penalty: { kind: 'number', min: 0 },
};

const OPENAI_RULE_LIST = Object.entries(OPENAI_RULES);

/**
 * Checks the OpenAI request parameters the gateway limits (ranges, at most 8 choices and 4 stop
 * sequences), throwing an OptionsError; returns the checked values by name.
 */
export function checkOpenAiOptions(body: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, rule] of OPENAI_RULE_LIST) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    values[key] = check(key, value, rule);
  }
  const stop = values.stop as string[] | undefined;
  if (stop && stop.length > 4) throw new OptionsError('stop accepts at most 4 sequences');
  return values;
}

/** OpenAI request parameters (`/v1/chat/completions`, `/v1/completions`) as GenerationOptions. */
export function parseOpenAiOptions(body: Record<string, unknown>): GenerationOptions {
  const values = checkOpenAiOptions(body);
  const result: GenerationOptions = {};
  const maxTokens = (values.max_completion_tokens ?? values.max_tokens) as number | undefined;
  if (maxTokens !== undefined) result.num_predict = maxTokens;
  for (const key of ['temperature', 'top_p', 'seed', 'stop', 'presence_penalty', 'frequency_penalty', 'top_k', 'min_p', 'repeat_penalty']) {
    if (values[key] !== undefined) assign(result, key, values[key]);
  }
  return result;
}

/** OpenAI's `n`: how many choices to generate (checked by parseOpenAiOptions). */
export function choiceCount(body: Record<string, unknown>): number {
  return typeof body.n === 'number' ? body.n : 1;
}

/** Ollama's `format`: "json", a JSON schema object, or nothing ("" counts as nothing, as in Ollama). */
export function parseOllamaFormat(value: unknown): OutputFormat | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === 'json') return 'json';
  if (isRecord(value)) return value;
  throw new OptionsError('format must be "json" or a JSON schema object');
}

/** OpenAI's `response_format`: text, json_object, or json_schema with its `schema`. */
export function parseOpenAiResponseFormat(value: unknown): OutputFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value) || typeof value.type !== 'string') throw new OptionsError('response_format must be an object with a type');
  switch (value.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return 'json';
    case 'json_schema': {
      const spec = value.json_schema;
      if (!isRecord(spec) || !isRecord(spec.schema)) throw new OptionsError('response_format.json_schema.schema must be a JSON schema object');
      return spec.schema;
    }
    default:
      throw new OptionsError(`response_format.type must be text, json_object or json_schema (got '${value.type}')`);
  }
}
