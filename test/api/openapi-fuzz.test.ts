import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';

/**
 * A property-based fuzz of the OpenAPI document the server publishes: every route and method in it,
 * with bodies and parameters generated from its schemas (valid ones, and invalid ones: wrong types,
 * missing fields, numbers at and beyond every range, deep nesting, bytes that are not UTF-8, huge
 * strings). No answer may be a 5xx or take longer than its deadline, and the server must be healthy
 * afterwards. The seed is fixed (FUZZ_SEED explores others), so a failure repeats; the cases are
 * sampled, not shrunk, so the run stays bounded in time.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const RUNS = 800;
const DEADLINE_MS = 10_000;
const ADMIN = 'fuzz-admin-token';
const MODEL = 'stories260K';

/** Answers that are right although they are 5xx: a feature the server reports it lacks, an upstream that failed. */
const EXPECTED_5XX: Record<string, number[]> = { 'POST /api/push': [501], 'POST /api/pull': [502] };

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; items?: Schema; enum?: unknown[]; minimum?: number; maximum?: number; required?: string[] };
interface Operation {
  method: string;
  path: string;
  params: { name: string; in: string; schema: Schema }[];
  body?: Schema;
}

interface Case {
  operation: Operation;
  url: string;
  /** A JSON value, or raw bytes sent as they are. */
  body?: unknown;
  raw?: Buffer;
}

const MODEL_FIELDS = new Set(['model', 'name', 'source', 'destination']);
/** Numbers the routes read, beyond those their schemas name: each is sent at and beyond its range too. */
const NUMERIC = ['temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed', 'max_tokens', 'max_completion_tokens', 'dimensions', 'n', 'rpm', 'tpm', 'num_ctx', 'min_p', 'presence_penalty', 'frequency_penalty', 'repeat_last_n', 'limit', 'offset'];
const BOUNDARIES = [-1e308, -(2 ** 53), -4097, -2, -1, -0.5, 0, 0.01, 0.5, 1, 1.5, 2, 2.01, 100, 101, 4096, 4097, 2 ** 31, 2 ** 53, 1e308];
const FIELDS = ['model', 'name', 'messages', 'history', 'models', 'model_instances', 'prompt', 'input', 'options', 'format', 'stream', 'keep_alive', 'tools', 'tool_choice', 'think', 'session_id', 'winner', 'response_format', 'stop', 'images', 'system', 'raw', 'suffix', 'truncate', 'tier', 'expires_at', 'stream_options', 'encoding_format', 'parameters', 'is_active', 'description', 'echo', 'logprobs', 'reasoning_effort', ...NUMERIC];

function deep(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

const HUGE = 'x'.repeat(1_000_000);
const weird = fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -1e308, 'NaN', 'Infinity', '', '\u0000', 'x', HUGE, [], {}, [1, 'a'], { a: 1 }, deep(3000), MODEL, [MODEL], [{}], [{ role: 'user' }], [{ role: 'user', content: 5 }], { num_predict: 'many' }, { type: 'json_schema' }, 2 ** 53 + 1);
const numberAt = fc.oneof(fc.constantFrom(...BOUNDARIES), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom<unknown>('NaN', '1', '-0', null));

/** A value that fits the schema, kept cheap: few tokens to generate, small strings, known names. */
function valid(schema: Schema | undefined, key = ''): fc.Arbitrary<unknown> {
  if (!schema) return fc.jsonValue({ maxDepth: 2 });
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (MODEL_FIELDS.has(key)) return fc.constantFrom(MODEL, `${MODEL}:latest`, 'nope', 'a/b:c');
  if (key === 'role') return fc.constantFrom('system', 'user', 'assistant', 'tool');
  if (key === 'num_predict' || key === 'max_tokens') return fc.integer({ min: -1, max: 4 });
  switch (type) {
    case 'object':
      if (!schema.properties) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
      return fc.record(Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, valid(property, name)])), { requiredKeys: schema.required ?? [] });
    case 'array':
      return fc.array(valid(schema.items, key === 'models' ? 'model' : ''), { minLength: 1, maxLength: 3 });
    case 'string':
      return fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('Once upon a time', 'hi'));
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -10, max: schema.maximum ?? 100 });
    case 'number':
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 2, noNaN: true });
    case 'boolean':
      return fc.boolean();
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A body with some of its fields replaced by values of the wrong type or out of range, or removed. */
function invalid(schema: Schema | undefined): fc.Arbitrary<unknown> {
  const keys = [...new Set([...Object.keys(schema?.properties ?? {}), ...FIELDS])];
  const field = fc.constantFrom(...keys);
  const base = valid(schema ?? { type: 'object', properties: { model: { type: 'string' }, messages: { type: 'array', items: { type: 'object', properties: { role: { type: 'string' }, content: { type: 'string' } } } } } });
  const change = fc.tuple(field, fc.oneof(weird, numberAt, fc.constant(undefined)), fc.constantFrom(...NUMERIC));
  return fc.tuple(base, fc.array(change, { minLength: 1, maxLength: 4 })).map(([body, changes]) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
    const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    for (const [key, value, option] of changes) {
      if (value === undefined) delete copy[key];
      else if (key === 'options') copy.options = { [option]: value };
      else copy[key] = value;
    }
    return copy;
  });
}

const RAW_BODIES = [
  Buffer.from([0x7b, 0x22, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]), // {"model":"<not UTF-8>"}
  Buffer.from('{"model":'),
  Buffer.from('['.repeat(100_000) + ']'.repeat(100_000)),
  Buffer.from(`{"model":"${MODEL}","prompt":"${'y'.repeat(600_000)}","options":{"num_predict":1},"stream":false}`),
  Buffer.from('"just a string"'),
  Buffer.from('null'),
  Buffer.from('{"__proto__":{"admin":true}}'),
];

function pathValue(name: string): fc.Arbitrary<string> {
  if (name === 'name' || name === '*') return fc.constantFrom(MODEL, `${MODEL}:latest`, 'nope', '..', '%2e%2e', 'a b', 'x'.repeat(300));
  return fc.oneof(fc.constantFrom('none', '0', '-1', 'x'.repeat(300), '%00'), fc.uuid());
}

function caseFor(operation: Operation): fc.Arbitrary<Case> {
  const pathParams = operation.params.filter((p) => p.in === 'path');
  const query = operation.params.filter((p) => p.in === 'query');
  const url = fc
    .tuple(
      fc.tuple(...pathParams.map((p) => pathValue(p.name))),
      fc.tuple(...query.map((p) => fc.option(fc.oneof(valid(p.schema).map(String), numberAt.map(String), fc.constantFrom('', 'x'.repeat(2000))), { nil: undefined }))),
    )
    .map(([values, queries]) => {
      let url = operation.path;
      pathParams.forEach((p, i) => (url = url.replace(`{${p.name}}`, encodeURIComponent(values[i]!).replaceAll('%2F', '/'))));
      const search = new URLSearchParams();
      query.forEach((p, i) => queries[i] !== undefined && search.set(p.name, queries[i]!));
      return search.size > 0 ? `${url}?${search}` : url;
    });
  if (operation.method === 'GET' || operation.method === 'HEAD') return url.map((u) => ({ operation, url: u }));
  const body = fc.oneof(
    { weight: 4, arbitrary: valid(operation.body).map((value) => ({ body: value })) },
    { weight: 5, arbitrary: invalid(operation.body).map((value) => ({ body: value })) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES).map((raw) => ({ raw })) },
  );
  return fc.tuple(url, body).map(([u, b]) => ({ operation, url: u, ...b }));
}

/** Valid bodies stay cheap: generations are capped at a few tokens unless the case sets its own. */
function capped(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const copy = { ...(body as Record<string, unknown>) };
  copy.options ??= { num_predict: 4 };
  copy.max_tokens ??= 4;
  if (Array.isArray(copy.model_instances)) copy.model_instances = copy.model_instances.map((i) => (typeof i === 'object' && i !== null && !Array.isArray(i) ? { num_predict: 4, ...i } : i));
  return copy;
}

let server: RunningServer;
let modelsDir: string;
const modelLink = () => path.join(modelsDir, 'stories260K.gguf');

beforeAll(async () => {
  // A models dir of its own: DELETE routes among the cases delete models, which must not touch ../shared.
  modelsDir = tempDir('fuzz-models-');
  fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), modelLink());
  // An admin token, so that keys created by the cases do not lock the fuzz out; a registry that is not
  // there, so that pulls fail at once instead of reaching the network.
  server = await startServer({ MODELS_DIR: modelsDir, WEB_CHAT_TOKEN: ADMIN, OLLAMA_REGISTRY: 'http://127.0.0.1:9' });
  // The model's first load (seconds on a loaded machine) is no answer time of any case: done up front.
  const load = await fetch(`${server.url}/api/models/stories260K/load`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
  expect(load.status).toBe(200);
});
afterAll(() => server?.close());

async function send(c: Case): Promise<string | undefined> {
  const { method } = c.operation;
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` };
  let body: Blob | string | undefined;
  if (c.raw) body = new Blob([new Uint8Array(c.raw)]);
  else if (c.body !== undefined) body = JSON.stringify(capped(c.body));
  if (body !== undefined) headers['content-type'] = 'application/json';
  const label = `${method} ${c.url} ${(body ?? '').toString().slice(0, 160)}`;
  try {
    const response = await fetch(`${server.url}${c.url}`, { method, headers, body, signal: AbortSignal.timeout(DEADLINE_MS) });
    // An event feed never ends by design: its status is the answer.
    if (c.operation.path.endsWith('/events')) await response.body?.cancel();
    else await response.arrayBuffer();
    const expected = EXPECTED_5XX[`${method} ${c.operation.path}`] ?? [];
    if (response.status >= 500 && !expected.includes(response.status)) return `${response.status} ${label}`;
  } catch (error) {
    return `${(error as Error).name === 'TimeoutError' ? 'hang' : (error as Error).message} ${label}`;
  }
  return undefined;
}

describe('the OpenAPI document, fuzzed', () => {
  it('never answers a 5xx nor hangs, on any route, and the server is healthy after', async () => {
    const document = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: Record<string, Record<string, { parameters?: Operation['params']; requestBody?: { content: Record<string, { schema: Schema }> } }>> };
    const operations: Operation[] = [];
    for (const [route, methods] of Object.entries(document.paths)) {
      for (const [method, spec] of Object.entries(methods)) {
        operations.push({ method: method.toUpperCase(), path: route, params: spec.parameters ?? [], body: spec.requestBody?.content['application/json']?.schema });
      }
    }
    expect(operations.length).toBeGreaterThan(40);
    const cases = fc.sample(fc.constantFrom(...operations).chain(caseFor), { seed: SEED, numRuns: RUNS });
    // Every operation at least twice, whatever the sample drew.
    for (const operation of operations) cases.push(...fc.sample(caseFor(operation), { seed: SEED, numRuns: 2 }));
    const failures: string[] = [];
    for (const c of cases) {
      if (!fs.existsSync(modelLink())) fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), modelLink());
      const failure = await send(c);
      if (failure) failures.push(failure);
    }
    expect(failures).toEqual([]);
    const health = await fetch(`${server.url}/api/health`, { signal: AbortSignal.timeout(DEADLINE_MS) });
    expect(await health.json()).toMatchObject({ status: 'healthy' });
  }, 240_000);
});
