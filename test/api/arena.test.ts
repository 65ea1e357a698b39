import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';

/**
 * Every request and response example of the Arena API, against the real server and the real
 * test model (their model names replaced by the test model's).
 */

let server: RunningServer;
const user = (content: string) => ({ role: 'user', content });

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

function expectMetrics(metrics: Record<string, unknown>) {
  expect(metrics.tokens).toBeGreaterThan(0);
  expect(metrics.duration_s).toBeGreaterThan(0);
  expect(metrics.tokens_per_sec).toBeGreaterThan(0);
  // The Arena API: every example's tokens_per_sec is tokens / duration_s (8 / 0.42 = 19.05).
  // (duration_s is rounded to the millisecond, so the quotient of the two rounded figures is within 1%.)
  const quotient = (metrics.tokens as number) / (metrics.duration_s as number);
  expect(Math.abs((metrics.tokens_per_sec as number) - quotient)).toBeLessThanOrEqual(quotient * 0.01);
  // The decode rate from the first token on is at least that (it leaves out load and prompt).
  expect(metrics.eval_tokens_per_sec).toBeGreaterThanOrEqual((metrics.tokens_per_sec as number) * 0.95);
  expect(metrics.ttft_s).toBeGreaterThanOrEqual(0);
  expect(metrics.prompt_tokens).toBeGreaterThan(0);
}

describe('health and models', () => {
  it('GET /api/health reports the models available', async () => {
    const response = await fetch(`${server.url}/api/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'healthy', service: 'ollama-arena', models_available: 1 });
  });

  it('GET /api/models lists model names', async () => {
    const body = await (await fetch(`${server.url}/api/models`)).json();
    expect(body).toEqual({ models: [TEST_MODEL] });
  });
});

describe('POST /api/chat with history', () => {
  it('answers a single legacy model with the single-model shape', async () => {
    const response = await postJson(`${server.url}/api/chat`, {
      history: [{ role: 'system', content: 'You are a helpful assistant.' }, user('What is 2+2?')],
      models: ['stories260K'],
      stream: false,
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    // The name as the client wrote it: the Arena API's clients match answers to their list by it.
    expect(body.model).toBe('stories260K');
    expect(typeof body.response).toBe('string');
    expect(body.response.length).toBeGreaterThan(0);
    expectMetrics(body.metrics);
  });

  it('keys several legacy models by name', async () => {
    // The same model under two spellings is two entries of the legacy list.
    const response = await postJson(`${server.url}/api/chat`, {
      history: [user('Hello!')],
      models: ['stories260K', 'stories260K:latest'],
    });
    const body = await response.json();
    expect(Object.keys(body.results).sort()).toEqual(['stories260K', 'stories260K:latest']);
    for (const [name, result] of Object.entries<Record<string, unknown>>(body.results)) {
      expect(result.error).toBeNull();
      expect(result.model).toBe(name);
      expectMetrics(result.metrics as Record<string, unknown>);
    }
  });

  it('keys v3 model_instances by instance id, generated as docs/api-contract.md says when absent', async () => {
    const response = await postJson(`${server.url}/api/chat`, {
      history: [user('Once upon a time')],
      model_instances: [
        { model: 'stories260K', temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: 20, seed: 0 },
        { id: 'mine', model: 'stories260K', temperature: 0.5, top_p: 0.8, top_k: 30, repeat_penalty: 1.2, num_predict: 10, seed: 42 },
      ],
      stream: false,
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(Object.keys(body.results).sort()).toEqual(['mine', 'stories260K__0.7_0.9_40_1.1_20_0']);
    expect(body.results.mine.metrics.tokens).toBeLessThanOrEqual(10);
    expect(body.results['stories260K__0.7_0.9_40_1.1_20_0'].metrics.tokens).toBeLessThanOrEqual(20);
  });

  it('answers one v3 instance with instance_id in the single shape', async () => {
    const body = await (
      await postJson(`${server.url}/api/chat`, {
        history: [user('Hi')],
        model_instances: [{ id: 'stories_a', model: 'stories260K', num_predict: 5 }],
      })
    ).json();
    expect(body.instance_id).toBe('stories_a');
    expect(body.model).toBe(TEST_MODEL);
    expect(body.metrics.tokens).toBeLessThanOrEqual(5);
  });

  it('is reproducible with a fixed seed', async () => {
    const ask = async () =>
      (
        await (
          await postJson(`${server.url}/api/chat`, {
            history: [user('Once upon a time')],
            model_instances: [{ model: 'stories260K', temperature: 1.0, seed: 7, num_predict: 30 }],
          })
        ).json()
      ).response;
    expect(await ask()).toBe(await ask());
  });

  it.each([
    [{ history: [], models: ['stories260K'] }, 'No messages provided'],
    [{ models: ['stories260K'] }, 'No messages provided'],
    [{}, 'No messages provided'],
    [{ history: 'hello', models: ['stories260K'] }, 'No messages provided'],
    [{ history: [user('x')], models: ['nope:1b'] }, 'Model not found: nope:1b'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', temperature: 5 }] }, 'temperature must be between 0.01 and 2'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', top_p: 1.5 }] }, 'top_p must be between 0 and 1'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', top_k: 101 }] }, 'top_k must be between 0 and 100'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', repeat_penalty: 0.5 }] }, 'repeat_penalty must be between 1 and 2'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', num_predict: 5000 }] }, 'num_predict must be between -1 and 4096'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', seed: -1 }] }, 'seed must be 0 or more'],
    [{ history: [user('x')], model_instances: [{ model: 'stories260K', top_k: 'many' }] }, 'top_k must be an integer'],
    [{ history: [user('x')], models: [] }, 'models must be a non-empty array'],
    [{ history: [{ role: 'wizard', content: 'x' }], models: ['stories260K'] }, "role must be system, user or assistant"],
  ])('rejects %j with a clear 400', async (body, message) => {
    const response = await postJson(`${server.url}/api/chat`, body);
    expect(response.status).toBe(400);
    expect((await response.json()).error).toContain(message);
  });

  it('rejects a duplicate instance with the seed message', async () => {
    const instance = { model: 'stories260K', temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: -1, seed: 0 };
    const response = await postJson(`${server.url}/api/chat`, { history: [user('x')], model_instances: [instance, instance] });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'Duplicate model instance detected: stories260K__0.7_0.9_40_1.1_-1_0' });
  });

  it('rejects malformed JSON with a 400, not a 500', async () => {
    const response = await fetch(`${server.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"history": [' });
    expect(response.status).toBe(400);
    expect(typeof (await response.json()).error).toBe('string');
  });
});

describe('POST /api/stream_chat', () => {
  it('streams two instances as interleaved NDJSON, each ending with its metrics', async () => {
    const response = await postJson(`${server.url}/api/stream_chat`, {
      history: [user('Tell me a story')],
      model_instances: [
        { id: 'warm', model: 'stories260K', temperature: 0.7, num_predict: 60, seed: 1 },
        { id: 'hot', model: 'stories260K', temperature: 1.5, num_predict: 60, seed: 2 },
      ],
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const lines: Record<string, unknown>[] = [];
    for await (const line of ndjsonLines(response)) lines.push(line);
    const order = lines.filter((l) => !l.done).map((l) => l.instance_id);
    // Interleaved: the instance changes many times along the stream, not once in the middle.
    const switches = order.filter((id, i) => i > 0 && id !== order[i - 1]).length;
    expect(switches).toBeGreaterThan(5);
    for (const id of ['warm', 'hot']) {
      const done = lines.filter((l) => l.instance_id === id && l.done);
      expect(done).toHaveLength(1);
      expect(done[0]!.token).toBe('');
      expectMetrics(done[0]!.metrics as Record<string, unknown>);
      expect(lines.filter((l) => l.instance_id === id && !l.done).length).toBeGreaterThan(0);
      // The done line comes after every token of its instance.
      expect(lines.findLastIndex((l) => l.instance_id === id && !l.done)).toBeLessThan(lines.indexOf(done[0]!));
    }
  });

  it('streams the legacy format with model names', async () => {
    const response = await postJson(`${server.url}/api/stream_chat`, {
      history: [user('Count to 5')],
      models: ['stories260K'],
    });
    const lines: Record<string, unknown>[] = [];
    for await (const line of ndjsonLines(response)) lines.push(line);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.every((l) => l.model === 'stories260K' && typeof l.token === 'string' && typeof l.done === 'boolean')).toBe(true);
    expect(lines.at(-1)).toMatchObject({ model: 'stories260K', token: '', done: true });
  });

  it('tells two legacy spellings of one model apart in the stream by the names written', async () => {
    const response = await postJson(`${server.url}/api/stream_chat`, {
      history: [user('Once upon a time')],
      models: ['stories260K', 'stories260K:latest'],
    });
    const lines: Record<string, unknown>[] = [];
    for await (const line of ndjsonLines(response)) lines.push(line);
    const finals = lines.filter((l) => l.done === true).map((l) => l.model).sort();
    expect(finals).toEqual(['stories260K', 'stories260K:latest']);
  });

  it('treats seed 0 as random: the same request twice answers differently', async () => {
    const ask = async () => {
      const response = await postJson(`${server.url}/api/chat`, {
        history: [user('Once upon a time')],
        model_instances: [{ model: 'stories260K', temperature: 1.5, top_k: 100, top_p: 1, num_predict: 40, seed: 0 }],
      });
      return ((await response.json()) as { response: string }).response;
    };
    // Sent at once, in the same second: a per-second fallback seed would make them alike.
    const answers = await Promise.all([ask(), ask(), ask()]);
    expect(new Set(answers).size).toBeGreaterThan(1);
    // A fixed seed repeats itself.
    const fixed = async () =>
      ((await (await postJson(`${server.url}/api/chat`, {
        history: [user('Once upon a time')],
        model_instances: [{ model: 'stories260K', temperature: 1.5, top_k: 100, top_p: 1, num_predict: 40, seed: 99 }],
      })).json()) as { response: string }).response;
    expect(await fixed()).toBe(await fixed());
  });

  it('gives a body-less or empty JSON POST the seeds\' messages', async () => {
    for (const [route, message] of [
      ['/api/chat', 'No messages provided'],
      ['/api/stream_chat', 'No messages provided'],
      ['/api/pull_model', 'Model name is required'],
      ['/api/delete_model', 'Model name is required'],
    ]) {
      const empty = await fetch(`${server.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      expect(empty.status, route).toBe(400);
      expect(await empty.json(), route).toEqual({ error: message });
      const none = await fetch(`${server.url}${route}`, { method: 'POST' });
      expect(none.status, route).toBe(400);
      expect(await none.json(), route).toEqual({ error: message });
    }
    for (const model of [42, null, ['x']]) {
      for (const route of ['/api/pull_model', '/api/delete_model']) {
        const response = await postJson(`${server.url}${route}`, { model });
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'Model name is required' });
      }
    }
  });

  it('stops every generation when the client disconnects', async () => {
    const engine = server.services.engine;
    const abortedBefore = engine.stats.aborted;
    const response = await postJson(`${server.url}/api/stream_chat`, {
      history: [user('Tell me a long story')],
      model_instances: [
        { id: 'one', model: 'stories260K', num_predict: 4096 },
        { id: 'two', model: 'stories260K', num_predict: 4096, seed: 3 },
      ],
    });
    const reader = response.body!.getReader();
    await reader.read(); // the first tokens are flowing
    await reader.cancel();
    // Both generations stop well before they could have finished their 512-token context.
    await expect.poll(() => engine.stats.running, { timeout: 10_000 }).toBe(0);
    expect(engine.stats.aborted - abortedBefore).toBe(2);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/arena_generations_total\{model="stories260K:latest",outcome="abort"\} [1-9]/);
  });

  it('validates like /api/chat', async () => {
    const response = await postJson(`${server.url}/api/stream_chat`, { history: [], models: ['stories260K'] });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'No messages provided' });
  });
});

describe('errors and operability', () => {
  it('answers unknown routes with a 404 error object', async () => {
    const response = await fetch(`${server.url}/api/nothing-here`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'Resource not found' });
  });

  it('returns a request id on every answer', async () => {
    const response = await fetch(`${server.url}/api/health`);
    expect(response.headers.get('x-request-id')).toMatch(/.+/);
  });

  it('exposes Prometheus metrics with tokens, time to first token and tokens/s per model', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/arena_tokens_generated_total\{model="stories260K:latest"\} \d+/);
    expect(text).toContain('arena_time_to_first_token_seconds_bucket');
    expect(text).toContain('arena_tokens_per_second_bucket');
    expect(text).toMatch(/arena_http_requests_total\{method="POST",route="\/api\/chat",status="200"\}/);
    expect(text).toMatch(/arena_http_errors_total\{route="\/api\/chat",status="400"\}/);
  });

  it('serves an OpenAPI document generated from the route schemas, and a docs page', async () => {
    const spec = await (await fetch(`${server.url}/docs/json`)).json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/api/health', '/api/chat', '/api/stream_chat', '/api/pull_model']));
    const page = await fetch(`${server.url}/docs/`);
    expect(page.status).toBe(200);
  });
});

describe('catalog defaults in the Arena', () => {
  it('fill the settings an instance omits, after the client and before the Arena API', async () => {
    const put = await fetch(`${server.url}/api/admin/models/stories260K`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ parameters: { temperature: 0.2, max_tokens: 3 } }),
    });
    expect(put.status).toBe(200);
    try {
      const body = await (
        await postJson(`${server.url}/api/chat`, {
          history: [user('Once upon a time')],
          model_instances: [{ model: 'stories260K' }, { model: 'stories260K', temperature: 0.9, num_predict: 5 }],
        })
      ).json();
      expect(Object.keys(body.results).sort()).toEqual(['stories260K__0.2_0.9_40_1.1_3_0', 'stories260K__0.9_0.9_40_1.1_5_0']);
      expect(body.results['stories260K__0.2_0.9_40_1.1_3_0'].metrics.tokens).toBeLessThanOrEqual(3);
    } finally {
      await fetch(`${server.url}/api/admin/models/stories260K`, { method: 'DELETE' });
    }
  });
});
