import { Ajv } from 'ajv';
import type { ArenaMetrics } from '../../domain/arena.js';
import { isRecord } from '../../shared/is-record.js';
import { SuiteError } from './suite-error.js';
import type { Assertion, AssertionResult } from '../../domain/evals.js';

/**
 * Deterministic checks of one answer. None runs code from the suite: regular expressions and JSON
 * schemas, the two that could take unbounded time on a hostile input, run in a worker thread with a
 * time limit (safe-match.ts); similarity asks an embedding model.
 */

const TEXT_TYPES = new Set(['contains', 'not_contains', 'equals']);
const NUMBER_TYPES = new Set(['max_latency', 'max_ttft', 'min_tokens_per_sec', 'max_tokens']);
const ASSERTION_TYPES = [...TEXT_TYPES, 'regex', 'is_json', 'json_schema', ...NUMBER_TYPES, 'similar'];
const MAX_PATTERN = 1_000;

const schemaChecker = new Ajv({ strict: false, allErrors: false });

function parseOne(raw: unknown, where: string): Assertion {
  if (!isRecord(raw) || typeof raw.type !== 'string') throw new SuiteError(`${where} must be an object with a type`);
  const type = raw.type.replace(/-/g, '_');
  if (TEXT_TYPES.has(type)) {
    if (typeof raw.value !== 'string') throw new SuiteError(`${where}: ${type} needs a text value`);
    return { type: type as 'contains', value: raw.value, ignore_case: raw.ignore_case === true };
  }
  if (type === 'regex') {
    if (typeof raw.value !== 'string' || raw.value.length > MAX_PATTERN) throw new SuiteError(`${where}: regex needs a pattern of at most ${MAX_PATTERN} characters`);
    const flags = raw.flags === undefined ? '' : raw.flags;
    if (typeof flags !== 'string' || !/^[imsu]*$/.test(flags)) throw new SuiteError(`${where}: regex flags may be i, m, s and u`);
    try {
      new RegExp(raw.value, flags);
    } catch (error) {
      throw new SuiteError(`${where}: ${(error as Error).message}`);
    }
    return { type, value: raw.value, flags };
  }
  if (type === 'is_json') return { type };
  if (type === 'json_schema') {
    if (!isRecord(raw.value)) throw new SuiteError(`${where}: json_schema needs a schema object as value`);
    try {
      schemaChecker.compile(raw.value);
    } catch (error) {
      throw new SuiteError(`${where}: invalid JSON schema: ${(error as Error).message}`);
    }
    return { type, value: raw.value };
  }
  if (NUMBER_TYPES.has(type)) {
    if (typeof raw.value !== 'number' || !Number.isFinite(raw.value) || raw.value < 0) throw new SuiteError(`${where}: ${type} needs a number of 0 or more`);
    return { type: type as 'max_latency', value: raw.value };
  }
  if (type === 'similar') {
    if (typeof raw.model !== 'string' || raw.model.trim() === '') throw new SuiteError(`${where}: similar needs the embedding model (model)`);
    if (raw.value !== undefined && typeof raw.value !== 'string') throw new SuiteError(`${where}: similar's value is the reference text`);
    const threshold = raw.threshold ?? 0.8;
    if (typeof threshold !== 'number' || threshold < -1 || threshold > 1) throw new SuiteError(`${where}: similar's threshold is a cosine between -1 and 1`);
    return { type, model: raw.model, value: raw.value as string | undefined, threshold };
  }
  throw new SuiteError(`${where}: unknown assertion type '${raw.type}' (known: ${ASSERTION_TYPES.join(', ')})`);
}

export function parseAssertions(raw: unknown, where: string): Assertion[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new SuiteError(`${where} must be a list of assertions`);
  if (raw.length > 50) throw new SuiteError(`${where}: at most 50 assertions`);
  return raw.map((entry, i) => parseOne(entry, `${where}[${i}]`));
}

/** What the checks need from outside: the safe matcher and the embedding model. */
export interface CheckContext {
  /** Runs the regex and schema checks of one answer, each true/false, or an error for all when out of time. */
  match(answer: string, checks: ({ regex: string; flags: string } | { schema: Record<string, unknown> })[]): Promise<boolean[] | { error: string }>;
  /** Cosine similarity of two texts through an embedding model. */
  similarity(model: string, a: string, b: string): Promise<number>;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function textCheck(assertion: Extract<Assertion, { ignore_case: boolean }>, answer: string): boolean {
  const fold = (s: string) => (assertion.ignore_case ? s.toLowerCase() : s);
  if (assertion.type === 'equals') return fold(answer.trim()) === fold(assertion.value.trim());
  const found = fold(answer).includes(fold(assertion.value));
  return assertion.type === 'contains' ? found : !found;
}

function metricCheck(assertion: { type: 'max_latency' | 'max_ttft' | 'min_tokens_per_sec' | 'max_tokens'; value: number }, metrics: ArenaMetrics): AssertionResult {
  const { type, value } = assertion;
  if (type === 'max_latency') return { type, pass: metrics.duration_s <= value, score: metrics.duration_s };
  if (type === 'max_tokens') return { type, pass: metrics.tokens <= value, score: metrics.tokens };
  if (type === 'min_tokens_per_sec') return { type, pass: metrics.tokens_per_sec >= value, score: metrics.tokens_per_sec };
  return metrics.ttft_s === null ? { type, pass: false, error: 'no token came' } : { type, pass: metrics.ttft_s <= value, score: metrics.ttft_s };
}

/** Checks one answer against every assertion, in the order given. */
export async function checkAnswer(assertions: Assertion[], answer: string, metrics: ArenaMetrics, reference: string | undefined, context: CheckContext): Promise<AssertionResult[]> {
  const results: AssertionResult[] = new Array(assertions.length);
  const guarded: { index: number; check: { regex: string; flags: string } | { schema: Record<string, unknown> } }[] = [];
  const similar: Promise<void>[] = [];
  assertions.forEach((assertion, index) => {
    switch (assertion.type) {
      case 'contains':
      case 'not_contains':
      case 'equals':
        results[index] = { type: assertion.type, pass: textCheck(assertion, answer) };
        break;
      case 'is_json':
        results[index] = { type: 'is_json', pass: isJson(answer) };
        break;
      case 'regex':
        guarded.push({ index, check: { regex: assertion.value, flags: assertion.flags } });
        break;
      case 'json_schema':
        if (!isJson(answer)) results[index] = { type: 'json_schema', pass: false, error: 'the answer is not JSON' };
        else guarded.push({ index, check: { schema: assertion.value } });
        break;
      case 'similar':
        similar.push(
          context
            .similarity(assertion.model, answer, assertion.value ?? reference ?? '')
            .then((cosine) => void (results[index] = { type: 'similar', pass: cosine >= assertion.threshold, score: Number(cosine.toFixed(4)) }))
            .catch((error: unknown) => void (results[index] = { type: 'similar', pass: false, error: (error as Error).message })),
        );
        break;
      default:
        results[index] = metricCheck(assertion, metrics);
    }
  });
  if (guarded.length > 0) {
    const outcome = await context.match(answer, guarded.map((g) => g.check));
    guarded.forEach(({ index }, k) => {
      const type = assertions[index]!.type;
      results[index] = Array.isArray(outcome) ? { type, pass: outcome[k]! } : { type, pass: false, error: outcome.error };
    });
  }
  await Promise.all(similar);
  return results;
}

export function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
