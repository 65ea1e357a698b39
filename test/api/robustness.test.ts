import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';

/**
 * Bad input gets a 4xx and changes nothing: random bodies built from the fields every surface reads,
 * with values of every wrong type, sent to every route that takes a body. No answer may be a 5xx, and
 * the server must still serve afterwards. Seeded, so a failure repeats.
 */

const ROUTES: [method: string, route: string][] = [
  ['POST', '/api/chat'], ['POST', '/api/stream_chat'], ['POST', '/api/generate'], ['POST', '/api/embed'],
  ['POST', '/api/embeddings'], ['POST', '/api/show'], ['POST', '/api/pull'], ['POST', '/api/copy'],
  ['POST', '/api/pull_model'], ['POST', '/api/delete_model'], ['DELETE', '/api/delete'], ['POST', '/api/battles'],
  ['POST', '/api/battles/none/vote'], ['GET', '/api/sessions/none'], ['DELETE', '/api/sessions/none'],
  ['POST', '/api/models/stories260K/load'], ['POST', '/api/models/stories260K/unload'], ['POST', '/v1/chat/completions'],
  ['POST', '/v1/completions'], ['POST', '/v1/embeddings'], ['POST', '/api/admin/keys'], ['PUT', '/api/admin/models/stories260K'],
  ['POST', '/api/runs/none/rerun'],
];
const FIELDS = ['model', 'name', 'messages', 'history', 'models', 'model_instances', 'prompt', 'input', 'options', 'format', 'stream',
  'keep_alive', 'tools', 'tool_choice', 'think', 'session_id', 'pool', 'winner', 'temperature', 'max_tokens', 'response_format',
  'stop', 'seed', 'images', 'system', 'raw', 'suffix', 'source', 'destination', 'tier', 'rpm', 'expires_at', 'stream_options', 'n',
  'dimensions', 'truncate', 'parameters', 'is_active', 'description'];
const VALUES: unknown[] = [null, true, 0, -1, 1e300, 'x', '', [], {}, [1], { a: 1 }, 'stories260K', ['stories260K'], [{}],
  [{ role: 'user' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: 'hi', images: [5] }], { type: 'json_schema' },
  99_999_999_999, -0.5, 'a'.repeat(5000), [{ model: 'stories260K', temperature: 'hot' }], { num_predict: 'many' }];

/** mulberry32: a small seeded PRNG, so the same bodies are sent on every run. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server: RunningServer;
beforeAll(async () => {
  // A models dir of its own: deletes and copies among the random requests must not touch ../shared.
  const modelsDir = tempDir('robustness-models-');
  fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(modelsDir, 'stories260K.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir });
});
afterAll(() => server?.close());

describe('random bad input', () => {
  it('never gets a 5xx, and the server still answers afterwards', async () => {
    const random = seeded(20261203);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const failures: string[] = [];
    for (let i = 0; i < 400; i++) {
      const body: Record<string, unknown> = {};
      for (let j = 1 + Math.floor(random() * 5); j > 0; j--) body[pick(FIELDS)] = pick(VALUES);
      // Enough well-formed parts that requests get past the first check and reach deeper ones.
      if (random() < 0.6) body.model = pick(['stories260K', 'nope', 5]);
      if (random() < 0.3) body.messages = [{ role: 'user', content: 'hi' }];
      if (random() < 0.2) body.history = [{ role: 'user', content: 'hi' }];
      body.options ??= { num_predict: 2 };
      body.max_tokens ??= 2;
      const [method, route] = pick(ROUTES);
      const response = await fetch(`${server.url}${route}`, {
        method,
        headers: method === 'GET' ? {} : { 'content-type': 'application/json' },
        body: method === 'GET' ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (response.status >= 500) failures.push(`${response.status} ${method} ${route} ${JSON.stringify(body).slice(0, 200)} => ${text.slice(0, 200)}`);
    }
    expect(failures).toEqual([]);
    expect(await (await fetch(`${server.url}/api/health`)).json()).toMatchObject({ status: 'healthy' });
  });
});
