import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Ollama, type ChatResponse, type GenerateResponse } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, SHARED_MODELS, startServer, tempDir, TEST_MODEL, type RunningServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';
import { SCRIPTED_MODEL, ScriptedBackend } from '../support/scripted-backend.js';

/**
 * the native Ollama API, driven by the real `ollama` npm client (and raw HTTP where the
 * wire format itself is under test). The models directory is a temp copy of the shared test model, so
 * copy and delete never touch ../shared.
 */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');
const METRICS = ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'];

let server: RunningServer;
let ollama: Ollama;
let host: FileServer;
const scripted = new ScriptedBackend();

beforeAll(async () => {
  const modelsDir = tempDir('ollama-api-models-');
  fs.copyFileSync(MODEL_FILE, path.join(modelsDir, 'stories260K.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.1' }, [scripted]);
  ollama = new Ollama({ host: server.url });
  host = await serveFile(MODEL_FILE, { chunkSize: 128 * 1024, delayMs: 10 });
});
afterAll(async () => {
  await server?.close();
  await host?.close();
});

/** The raw lines of an NDJSON answer, checked for Ollama's framing: one object a line, no blank lines. */
async function rawLines(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  for (const line of lines) expect(line.trim()).not.toBe('');
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function errorOf(promise: Promise<unknown>): Promise<{ status_code?: number; error?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { status_code?: number; error?: string; message: string };
  }
  throw new Error('expected the call to fail');
}

describe('server and model information', () => {
  it('answers version, HEAD / and the list of models with details', async () => {
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await fetch(server.url, { method: 'HEAD' })).status).toBe(200);
    const { models } = await ollama.list();
    const model = models.find((m) => m.name === TEST_MODEL)!;
    expect(model).toMatchObject({
      model: TEST_MODEL,
      size: fs.statSync(MODEL_FILE).size,
      details: { format: 'gguf', family: 'llama', families: ['llama'], quantization_level: 'F32' },
    });
    expect(model.details.parameter_size).toMatch(/^\d+(\.\d+)?[KMB]$/);
    expect(model.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(Number.isNaN(Date.parse(String(model.modified_at)))).toBe(false);
  });

  it('shows a model with model_info, capabilities, details and a modelfile', async () => {
    const shown = await ollama.show({ model: 'stories260K' });
    expect(shown.model_info).toMatchObject({ 'general.architecture': 'llama', 'llama.context_length': 512 });
    expect(shown.capabilities).toEqual(['completion', 'tools']);
    expect(shown.details.family).toBe('llama');
    expect(shown.modelfile).toContain(`FROM ${TEST_MODEL}`);
    expect(typeof shown.parameters).toBe('string');
    expect(typeof shown.template).toBe('string');
  });

  it('answers an unknown model with Ollama 404s the client raises as ResponseError', async () => {
    for (const call of [
      ollama.show({ model: 'no-such-model' }),
      ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
      ollama.generate({ model: 'no-such-model', prompt: 'hi', stream: true }),
      ollama.embed({ model: 'no-such-model', input: 'hi' }),
    ]) {
      const error = await errorOf(call);
      expect(error.status_code).toBe(404);
      expect(error.error).toBe("model 'no-such-model' not found");
    }
    const raw = await fetch(`${server.url}/api/delete`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'ghost' }) });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toEqual({ error: "model 'ghost' not found" });
  });
});

describe('chat', () => {
  it('answers a non-streamed chat with Ollama fields and the fields of every API', async () => {
    const answer = (await ollama.chat({
      model: 'stories260K',
      messages: [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: 'Once upon a time' }],
      options: { num_predict: 8, temperature: 0 },
    })) as ChatResponse & Record<string, unknown>;
    expect(answer.model).toBe(TEST_MODEL);
    expect(answer.message.role).toBe('assistant');
    expect(answer.message.content.length).toBeGreaterThan(0);
    expect(answer.done).toBe(true);
    expect(['stop', 'length']).toContain(answer.done_reason);
    for (const key of METRICS) expect(Number.isInteger(answer[key]) && (answer[key] as number) >= 0).toBe(true);
    expect(answer.eval_count).toBeLessThanOrEqual(8);
    expect(answer.prompt_eval_count).toBeGreaterThan(0);
    expect(answer.usage).toEqual({
      prompt_tokens: answer.prompt_eval_count,
      completion_tokens: answer.eval_count,
      total_tokens: answer.prompt_eval_count + answer.eval_count,
    });
    expect(answer).toMatchObject({ object: 'chat.completion', choices: [{ index: 0, message: answer.message, finish_reason: answer.done_reason }] });
    expect(answer.id).toMatch(/^cmpl-/);
    expect(typeof answer.created).toBe('number');
    expect(typeof answer.session_id).toBe('string');
  });

  it('streams NDJSON by default: text on every line, metrics and done_reason only on the last', async () => {
    const response = await postJson(`${server.url}/api/chat`, { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], options: { num_predict: 6 } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = await rawLines(response);
    const final = lines.at(-1)!;
    expect(final).toMatchObject({ model: TEST_MODEL, done: true, done_reason: 'length', message: { role: 'assistant', content: '' } });
    for (const key of METRICS) expect(final).toHaveProperty(key);
    expect(final.eval_count).toBe(6);
    for (const line of lines.slice(0, -1)) {
      expect(line.done).toBe(false);
      expect(line).not.toHaveProperty('done_reason');
      for (const key of METRICS) expect(line).not.toHaveProperty(key);
    }
    expect(lines.length).toBeGreaterThan(1);
  });

  it('streams through the client, the pieces adding up to the answer', async () => {
    const stream = await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'Lily went' }], stream: true, options: { num_predict: 10, seed: 3 } });
    let text = '';
    let last: ChatResponse | undefined;
    for await (const part of stream) {
      text += part.message.content;
      last = part;
    }
    expect(last?.done).toBe(true);
    expect(last?.eval_count).toBeLessThanOrEqual(10);
    expect(text.length).toBeGreaterThan(0);
  });

  it('accepts tools and tool results in the conversation and passes tools to the backend', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const answer = await ollama.chat({
      model: 'stories260K',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: 'sunny', tool_name: 'get_weather' } as never,
      ],
      tools,
      options: { num_predict: 5 },
    });
    expect(answer.done).toBe(true);

    const called = await ollama.chat({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'CALL get_weather' }], tools });
    expect(called.message.tool_calls).toEqual([{ function: { index: 0, name: 'get_weather', arguments: { city: 'Paris' } } }]);
    expect(called.done_reason).toBe('stop');
    const received = scripted.requests.at(-1) as { tools?: unknown[] };
    expect(received.tools).toHaveLength(1);

    const streamed = await rawLines(await postJson(`${server.url}/api/chat`, { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'CALL get_weather' }], tools }));
    const withCalls = streamed.find((line) => (line.message as { tool_calls?: unknown }).tool_calls);
    expect(withCalls).toMatchObject({ done: false, message: { tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] } });
    expect(streamed.at(-1)).toMatchObject({ done: true, done_reason: 'stop' });

    // The extended Ollama API's SSE carries them on its final event.
    const response = await postJson(`${server.url}/api/chat`, { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'CALL get_weather' }], tools }, { accept: 'text/event-stream' });
    const events = (await response.text()).split('\n\n').filter(Boolean).map((frame) => JSON.parse(frame.replace(/^data: /, '')));
    expect(events.at(-1)).toMatchObject({ done: true, tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
  });

  it('refuses think for a model without thinking, with Ollama\'s message', async () => {
    for (const route of ['/api/chat', '/api/generate']) {
      const body = route === '/api/chat' ? { messages: [{ role: 'user', content: 'hi' }] } : { prompt: 'hi' };
      const refused = await postJson(`${server.url}${route}`, { model: 'stories260K', ...body, think: true, stream: false });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ error: `"${TEST_MODEL}" does not support thinking` });
      const wrong = await postJson(`${server.url}${route}`, { model: 'stories260K', ...body, think: 'very', stream: false });
      expect(wrong.status).toBe(400);
      const off = await postJson(`${server.url}${route}`, { model: 'stories260K', ...body, think: false, stream: false, options: { num_predict: 2 } });
      expect(off.status).toBe(200);
    }
  });

  it('leaves the oldest exchanges out when a resent history outgrows the context, as Ollama does', async () => {
    const long = 'Once upon a time there was a little girl named Lily who loved to play in the park. '.repeat(8);
    const messages = [{ role: 'system', content: 'Tell stories.' }];
    for (let i = 0; i < 4; i++) messages.push({ role: 'user', content: `Part ${i}` }, { role: 'assistant', content: long });
    messages.push({ role: 'user', content: 'And then?' });
    const answer = await ollama.chat({ model: 'stories260K', messages, options: { num_predict: 3 } });
    expect(answer.done).toBe(true);
    expect(answer.prompt_eval_count).toBeLessThan(512);
    expect(answer.prompt_eval_count).toBeGreaterThan(100); // the newest exchanges are still there

    // One message longer than the context loses its oldest tokens and is answered, as Ollama does;
    // `truncate: false` asks for the refusal instead.
    const cut = await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: long.repeat(3) }], options: { num_predict: 3 } });
    expect(cut.done).toBe(true);
    expect(cut.prompt_eval_count).toBeLessThan(512);
    expect(cut.prompt_eval_count).toBeGreaterThan(256);
    const refused = await postJson(`${server.url}/api/chat`, { model: 'stories260K', messages: [{ role: 'user', content: long.repeat(3) }], truncate: false, stream: false, options: { num_predict: 3 } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/more than the \d+-token context/);
  });

  it("reads a body as JSON whatever its Content-Type, like Ollama (its docs' curl -d examples send form-urlencoded)", async () => {
    const response = await fetch(`${server.url}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ model: 'stories260K', prompt: 'Once', stream: false, options: { num_predict: 2 } }),
    });
    expect(response.status).toBe(200);
    expect((await response.json()).eval_count).toBe(2);
    // A page of another origin posting a form (no CORS preflight) must not drive the server.
    const crossSite = await fetch(`${server.url}/api/pull`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: JSON.stringify({ model: `${host.url}/x/evil.gguf` }),
    });
    expect(crossSite.status).toBe(403);
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('evil:latest');
  });

  it('rejects images for a text-only model with a clear 400', async () => {
    const error = await errorOf(ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'what is this?', images: ['aGVsbG8='] }] }));
    expect(error.status_code).toBe(400);
    expect(error.error).toMatch(/does not support images/);
  });

  it('sends an error line when the backend fails after the 200 went out', async () => {
    const response = await postJson(`${server.url}/api/chat`, { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'FAIL please' }] });
    expect(response.status).toBe(200);
    const lines = await rawLines(response);
    expect(lines[0]).toMatchObject({ message: { content: 'Partly' }, done: false });
    expect(lines.at(-1)).toEqual({ error: 'upstream connection lost' });
    const stream = await ollama.chat({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'FAIL again' }], stream: true });
    await expect(async () => {
      for await (const part of stream) void part;
    }).rejects.toThrow('upstream connection lost');
  });

  it('stops generating the moment a streaming client goes away', async () => {
    const { stats } = server.services.engine;
    await ollama.generate({ model: 'stories260K', prompt: '' }); // loaded, so that 480 tokens would take a while
    // Leave after the response headers, before reading anything; then after reading the first line.
    for (const leaveOn of ['response', 'data'] as const) {
      const generatedBefore = stats.generated;
      await new Promise<void>((resolve, reject) => {
        const request = http.request(`${server.url}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
          const leave = () => {
            request.destroy();
            resolve();
          };
          if (leaveOn === 'response') leave();
          else response.once('data', leave);
        });
        request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
        request.end(JSON.stringify({ model: 'stories260K', prompt: 'Once upon a time', options: { num_predict: 480 } }));
      });
      await expect.poll(() => stats.running, { timeout: 10_000 }).toBe(0);
      expect(stats.generated - generatedBefore).toBeLessThan(480);
    }
  });

  it('validates the body with 400s naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ messages: [{ role: 'user', content: 'x' }] }, /^model is required$/],
      [{ model: 'stories260K', messages: [{ role: 'wizard', content: 'x' }] }, /role/],
      [{ model: 'stories260K', messages: 'hello' }, /messages must be an array/],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, /stream must be a boolean/],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], keep_alive: 'soon' }, /keep_alive/],
      [{ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], format: 'xml' }, /format/],
    ];
    for (const [body, message] of cases) {
      const response = await postJson(`${server.url}/api/chat`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await response.json()).error).toMatch(message);
    }
  });
});

describe('generate', () => {
  it('answers non-streamed with response, text and the superset; raw, system and format are honoured', async () => {
    const answer = (await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', system: 'A story.', options: { num_predict: 8 } })) as GenerateResponse & Record<string, unknown>;
    expect((answer.response ?? '').length).toBeGreaterThan(0);
    expect(answer.text).toBe(answer.response);
    expect(answer).toMatchObject({ done: true, object: 'text.completion', choices: [{ index: 0, text: answer.response }] });
    expect(answer.usage).toMatchObject({ completion_tokens: answer.eval_count });

    const raw = await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', raw: true, options: { num_predict: 4 } });
    expect(raw.eval_count).toBeLessThanOrEqual(4);

    const schema = { type: 'object', properties: { mood: { type: 'string', enum: ['happy', 'sad'] } }, required: ['mood'] };
    const structured = await ollama.generate({ model: 'stories260K', prompt: 'Lily felt', format: schema, options: { num_predict: 40 } });
    expect(['happy', 'sad']).toContain(JSON.parse(structured.response ?? '').mood);
  });

  it('streams through the client with the metrics on the final part only', async () => {
    const stream = await ollama.generate({ model: 'stories260K', prompt: 'The cat', stream: true, options: { num_predict: 5 } });
    const parts: GenerateResponse[] = [];
    for await (const part of stream) parts.push(part);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'length', eval_count: 5 });
    expect(parts.slice(0, -1).every((part) => part.done === false && part.eval_count === undefined)).toBe(true);
  });

  it('takes the management API top-level temperature and max_tokens, and the extended Ollama API options.max_tokens and options.stop', async () => {
    const top = await (await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', stream: false, temperature: 0.2, max_tokens: 3 })).json();
    expect(top.eval_count).toBe(3);
    const seed4 = await (await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', stream: false, options: { max_tokens: 4, stop: ['zzz'] } })).json();
    expect(seed4.eval_count).toBe(4);
    // num_predict wins over max_tokens in options; options win over the top level.
    const both = await (await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', stream: false, max_tokens: 9, options: { max_tokens: 7, num_predict: 2 } })).json();
    expect(both.eval_count).toBe(2);
    const stopped = await (await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once upon a time', stream: false, options: { num_predict: 30, stop: ['little'], temperature: 0 } })).json();
    expect(stopped.response).not.toContain('little');
    expect(stopped.done_reason).toBe('stop');
  });

  it('accepts every documented option, ignores unknown ones and rejects wrong types and ranges', async () => {
    const options = {
      num_keep: 1, seed: 42, num_predict: 3, top_k: 20, top_p: 0.9, min_p: 0.05, typical_p: 0.7, repeat_last_n: 33, temperature: 0.8,
      repeat_penalty: 1.2, presence_penalty: 1.5, frequency_penalty: 1.0, mirostat: 1, mirostat_tau: 0.8, mirostat_eta: 0.6,
      penalize_newline: true, stop: ['\n\n'], numa: false, num_ctx: 512, num_batch: 2, num_gpu: 0, main_gpu: 0, low_vram: false,
      use_mmap: true, use_mlock: false, num_thread: 1, tfs_z: 1, unknown_knob: 'ignored',
    };
    const ok = await ollama.generate({ model: 'stories260K', prompt: 'Once', options: options as never });
    expect(ok.eval_count).toBe(3);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ temperature: 'hot' }, /option "temperature" must be a number/],
      [{ num_predict: 2.5 }, /option "num_predict" must be an integer/],
      [{ stop: 7 }, /option "stop" must be a string or an array of strings/],
      [{ use_mmap: 'yes' }, /option "use_mmap" must be a boolean/],
      [{ temperature: 3 }, /between 0 and 2/],
      [{ top_p: 1.5 }, /between 0 and 1/],
      [{ max_tokens: 0 }, /1 or more/],
    ];
    for (const [opts, message] of bad) {
      const error = await errorOf(ollama.generate({ model: 'stories260K', prompt: 'Once', options: opts as never }));
      expect(error.status_code, JSON.stringify(opts)).toBe(400);
      expect(error.error).toMatch(message);
    }
    const top = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', temperature: 'warm' });
    expect(top.status).toBe(400);
  });

  it('loads with an empty prompt, honours keep_alive durations, and unloads with keep_alive 0', async () => {
    const loaded = await ollama.generate({ model: 'stories260K', prompt: '', keep_alive: '1h30m' });
    expect(loaded).toMatchObject({ model: TEST_MODEL, done: true, done_reason: 'load', response: '' });
    const running = (await ollama.ps()).models.find((m) => m.name === TEST_MODEL)!;
    const expiresIn = new Date(running.expires_at).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(85 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(90 * 60_000);
    expect(running.details.family).toBe('llama');
    // Ollama's /api/ps fields: those of /api/tags less modified_at, plus expires_at and size_vram.
    expect(Object.keys(running).sort()).toEqual(['context_length', 'details', 'digest', 'expires_at', 'model', 'name', 'size', 'size_vram']);

    const streamed = await rawLines(await postJson(`${server.url}/api/generate`, { model: 'stories260K', keep_alive: 0 }));
    expect(streamed).toEqual([expect.objectContaining({ done: true, done_reason: 'unload' })]);
    expect((await ollama.ps()).models.map((m) => m.name)).not.toContain(TEST_MODEL);

    // A chat with no messages loads too; keep_alive -1 keeps the model "forever": Ollama's expiry is
    // now plus Go's largest duration (~292 years), which `ollama ps` shows as "Forever".
    const chatLoad = await ollama.chat({ model: 'stories260K', messages: [], keep_alive: -1 });
    expect(chatLoad.done_reason).toBe('load');
    const kept = (await ollama.ps()).models.find((m) => m.name === TEST_MODEL)!;
    expect(new Date(kept.expires_at).getFullYear()).toBeGreaterThan(new Date().getFullYear() + 290);

    // A request without keep_alive goes back to the default (5 minutes), as in Ollama: nothing carries over.
    await ollama.generate({ model: 'stories260K', prompt: 'Once', options: { num_predict: 2 } });
    const again = (await ollama.ps()).models.find((m) => m.name === TEST_MODEL)!;
    const defaultIn = new Date(again.expires_at).getTime() - Date.now();
    expect(defaultIn).toBeGreaterThan(4 * 60_000);
    expect(defaultIn).toBeLessThanOrEqual(5 * 60_000);

    // Longer than a Node timer can wait (~24.8 days): the model stays loaded, not unloaded at once.
    await ollama.generate({ model: 'stories260K', prompt: '', keep_alive: '720h' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const month = (await ollama.ps()).models.find((m) => m.name === TEST_MODEL);
    expect(month, 'still loaded').toBeDefined();
    expect(new Date(month!.expires_at).getTime() - Date.now()).toBeGreaterThan(29 * 24 * 3600_000);
    await ollama.generate({ model: 'stories260K', prompt: '', keep_alive: '5m' });
  });

  it('answers the extended Ollama API SSE when the client accepts text/event-stream', async () => {
    const response = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', options: { num_predict: 4 } }, { accept: 'text/event-stream' });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = (await response.text()).split('\n\n').filter(Boolean).map((frame) => JSON.parse(frame.replace(/^data: /, '')));
    const tokens = events.slice(0, -1);
    expect(tokens.every((e) => typeof e.token === 'string' && e.done === false)).toBe(true);
    expect(events.at(-1)).toMatchObject({ done: true, full_text: tokens.map((e) => e.token).join('') });
  });
});

describe('embeddings', () => {
  it('embeds a string or an array as unit vectors', async () => {
    const one = await ollama.embed({ model: 'stories260K', input: 'a happy dog' });
    expect(one.embeddings).toHaveLength(1);
    const many = await ollama.embed({ model: 'stories260K', input: ['a happy dog', 'a sad cat'] });
    expect(many.embeddings).toHaveLength(2);
    for (const vector of [...one.embeddings, ...many.embeddings]) {
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    }
    expect(many.embeddings[0]).toEqual(one.embeddings[0]);
    expect(many.prompt_eval_count).toBeGreaterThan(0);
    const cut = await (await postJson(`${server.url}/api/embed`, { model: 'stories260K', input: 'dog', dimensions: 8 })).json();
    expect(cut.embeddings[0]).toHaveLength(8);
    expect(Math.hypot(...cut.embeddings[0])).toBeCloseTo(1, 5);
  });

  it('answers /api/embeddings for prompt (Ollama) and input (extended Ollama API)', async () => {
    const byPrompt = await ollama.embeddings({ model: 'stories260K', prompt: 'a happy dog' });
    const byInput = await (await postJson(`${server.url}/api/embeddings`, { model: 'stories260K', input: 'a happy dog' })).json();
    expect(byInput.model).toBe(TEST_MODEL);
    expect(byInput.embedding).toEqual(byPrompt.embedding);
    expect(byPrompt.embedding.length).toBeGreaterThan(8);
    const bad = await postJson(`${server.url}/api/embed`, { model: 'stories260K', input: [1, 2] });
    expect(bad.status).toBe(400);
  });
});

describe('model management', () => {
  it('pulls a model from a URL with streamed progress ending in success, then lists it', async () => {
    const source = `${host.url}/files/pulled-story.gguf`;
    const stream = await ollama.pull({ model: source, stream: true });
    const parts = [];
    for await (const part of stream) parts.push(part);
    expect(parts.at(-1)).toEqual({ status: 'success' });
    const progress = parts.filter((p) => p.total !== undefined && p.completed !== undefined);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)!.completed).toBe(fs.statSync(MODEL_FILE).size);
    const completed = progress.map((p) => p.completed);
    expect([...completed].sort((a, b) => a - b)).toEqual(completed);
    expect(parts.map((p) => p.status)).toContain('verifying sha256 digest');
    expect((await ollama.list()).models.map((m) => m.name)).toContain('pulled-story:latest');
  });

  it('pulls without streaming (name accepted as well as model) and reports failures', async () => {
    const response = await postJson(`${server.url}/api/pull`, { name: `${host.url}/x/quiet-story.gguf`, stream: false });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'success' });
    expect((await ollama.list()).models.map((m) => m.name)).toContain('quiet-story:latest');

    const missing = await postJson(`${server.url}/api/pull`, { model: `${host.url}/missing.txt`, stream: false });
    expect(missing.status).toBe(502);
    expect((await missing.json()).error).toMatch(/download failed/);
    const streamed = await rawLines(await postJson(`${server.url}/api/pull`, { model: `${host.url}/missing.txt` }));
    expect(streamed.at(-1)!.error).toMatch(/download failed/);
    const refused = await postJson(`${server.url}/api/pull`, { model: 'ftp://nowhere/x.gguf' });
    expect(refused.status).toBe(400);
  });

  it('copies a model and deletes the copy', async () => {
    await ollama.copy({ source: 'stories260K', destination: 'story-copy:v2' });
    expect((await ollama.list()).models.map((m) => m.name)).toContain('story-copy:v2');
    const answer = await ollama.generate({ model: 'story-copy:v2', prompt: 'Once', options: { num_predict: 2 } });
    expect(answer.eval_count).toBe(2);
    await ollama.delete({ model: 'story-copy:v2' });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('story-copy:v2');
    expect((await ollama.list()).models.map((m) => m.name)).toContain(TEST_MODEL);
    const error = await errorOf(ollama.delete({ model: 'story-copy:v2' }));
    expect(error.status_code).toBe(404);
    const copyMissing = await errorOf(ollama.copy({ source: 'nothing-here', destination: 'y' }));
    expect(copyMissing.status_code).toBe(404);
    const badName = await postJson(`${server.url}/api/copy`, { source: 'stories260K', destination: '../escape' });
    expect(badName.status).toBe(400);
  });

  it('refuses a push with the reason, after the usual 404', async () => {
    const push = await postJson(`${server.url}/api/push`, { model: 'stories260K' });
    expect(push.status).toBe(501);
    expect((await push.json()).error).toMatch(/pushing 'stories260K:latest' to a registry is not supported/);
    expect((await errorOf(ollama.push({ model: 'nothing-here' }))).status_code).toBe(404);
  });
});
