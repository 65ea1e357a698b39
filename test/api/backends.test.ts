import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OllamaBackend } from '../../src/providers/ollama/server.js';
import { OpenAICompatibleBackend } from '../../src/providers/openai/server.js';
import { createBackends } from '../../src/providers/index.js';
import { BackendError, type PullProgress } from '../../src/providers/types.js';
import { loadConfig } from '../../src/config.js';
import { startMockUpstream, THOUGHTS, type MockUpstream } from '../support/mock-upstream.js';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { serveFile, type FileServer } from '../support/file-server.js';
import { serveRegistry, type RegistryServer } from '../support/registry-server.js';
import { freePort, ndjsonLines, postJson, SHARED_MODELS, startServer, tempDir, TEST_MODEL, type RunningServer } from '../support/server.js';

/**
 * The Ollama and OpenAI-compatible backends against a second instance of our own server acting as the
 * upstream (its /api and /v1 surfaces are the real wire formats), each behind a gateway whose own
 * engine serves nothing, so every answer crossed the backend.
 */

const messages = [{ role: 'user', content: 'Tell me a story about a cat' }];
/** Greedy decoding: the same request gives the same text directly and through the gateway. */
const greedy = { temperature: 0, num_predict: 8, seed: 42 };

/** A conversation with a tool call and its result; the prompt it makes shows whether both survived the wire. */
const toolHistory = [
  { role: 'user', content: 'What is the weather in Paris?' },
  { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
  { role: 'tool', content: 'sunny', tool_name: 'get_weather' },
];

/** The same tool-call conversation directly on the upstream and through the gateway: same prompt, same text. */
async function expectSameToolConversation(upstream: RunningServer, gateway: RunningServer, upstreamHeaders: Record<string, string> = {}) {
  const request = { model: TEST_MODEL, messages: toolHistory, stream: false, options: greedy };
  const direct = await json(postJson(`${upstream.url}/api/chat`, request, upstreamHeaders));
  expect(direct.status).toBe(200);
  const through = await json(postJson(`${gateway.url}/api/chat`, request));
  expect(through.status).toBe(200);
  expect(through.body.prompt_eval_count).toBe(direct.body.prompt_eval_count);
  expect(through.body.message).toEqual(direct.body.message);
}

/** An upstream models dir of its own (a symlink to the shared model), so pulls and deletes stay in it. */
function upstreamModelsDir(): string {
  const dir = tempDir('upstream-models-');
  fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(dir, 'stories260K.gguf'));
  return dir;
}

async function streamedChat(url: string, body: Record<string, unknown>) {
  const response = await postJson(`${url}/api/chat`, { stream: true, ...body });
  expect(response.status).toBe(200);
  const lines: Record<string, unknown>[] = [];
  for await (const line of ndjsonLines(response)) lines.push(line);
  const text = lines.map((l) => (l.message as { content?: string } | undefined)?.content ?? '').join('');
  return { lines, text, final: lines.at(-1)! };
}

async function json(response: Response | Promise<Response>) {
  const r = await response;
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('OllamaBackend against our own server as the Ollama host', () => {
  let upstream: RunningServer;
  let gateway: RunningServer;
  let backend: OllamaBackend;
  let files: FileServer;
  /** Stand-in registries: the upstream's knows no model; the gateway's has the one pulled below. */
  let emptyRegistry: RegistryServer;
  let gatewayRegistry: RegistryServer;

  beforeAll(async () => {
    emptyRegistry = await serveRegistry(path.join(SHARED_MODELS, 'stories260K.gguf'), { models: {} });
    gatewayRegistry = await serveRegistry(path.join(SHARED_MODELS, 'stories260K.gguf'), { models: { 'library/llama3.2:1b': {} } });
    upstream = await startServer({ MODELS_DIR: upstreamModelsDir(), OLLAMA_REGISTRY: emptyRegistry.url, PULL_ALLOW_HOSTS: '127.0.0.1' });
    backend = new OllamaBackend(upstream.url);
    gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-'), OLLAMA_REGISTRY: gatewayRegistry.url, PULL_ALLOW_HOSTS: '127.0.0.1' }, [backend]);
    files = await serveFile(path.join(SHARED_MODELS, 'stories260K.gguf'), { chunkSize: 128 * 1024, delayMs: 5 });
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    await files?.close();
    await emptyRegistry?.close();
    await gatewayRegistry?.close();
  });

  it('lists the upstream models with their details, served by the Ollama backend', async () => {
    const { body } = await json(fetch(`${gateway.url}/api/tags`));
    const model = (body.models as Record<string, unknown>[]).find((m) => m.name === TEST_MODEL);
    expect(model).toMatchObject({ name: TEST_MODEL, details: { family: 'llama', format: 'gguf' } });
    const details = await json(fetch(`${gateway.url}/api/models/${TEST_MODEL}`));
    expect(details.body.backends).toEqual([{ id: `ollama:${upstream.url}`, kind: 'ollama', healthy: true }]);
    expect(details.body.context_size).toBe(512);
    // What only the host's /api/show knows (GGUF metadata, capabilities) reaches the gateway's /api/show.
    const direct = await json(postJson(`${upstream.url}/api/show`, { model: TEST_MODEL }));
    const through = await json(postJson(`${gateway.url}/api/show`, { model: TEST_MODEL }));
    expect(through.status).toBe(200);
    expect(through.body.model_info).toEqual(direct.body.model_info);
    expect(through.body.capabilities).toEqual(direct.body.capabilities);
  });

  it('streams a chat token by token, with the same text and counts as the upstream gives directly', async () => {
    const direct = await streamedChat(upstream.url, { model: TEST_MODEL, messages, options: greedy });
    const through = await streamedChat(gateway.url, { model: TEST_MODEL, messages, options: greedy });
    expect(through.text).toBe(direct.text);
    expect(through.text.length).toBeGreaterThan(0);
    expect(through.lines.length).toBeGreaterThan(2);
    expect(through.final).toMatchObject({ done: true, done_reason: 'length', eval_count: 8, prompt_eval_count: direct.final.prompt_eval_count });
    expect(through.final.total_duration).toBeGreaterThan(0);
  });

  it('answers a chat in one object when not streamed', async () => {
    const { status, body } = await json(postJson(`${gateway.url}/api/chat`, { model: 'stories260K', messages, stream: false, options: { num_predict: 5 } }));
    expect(status).toBe(200);
    expect(body).toMatchObject({ model: TEST_MODEL, done: true, eval_count: 5, message: { role: 'assistant' } });
    expect((body.message as { content: string }).content.length).toBeGreaterThan(0);
  });

  it('generates from a prompt, passing options and stop sequences through', async () => {
    const request = { model: TEST_MODEL, prompt: 'Once upon a time', stream: false, options: { ...greedy, num_predict: 30, stop: ['.'] } };
    const direct = await json(postJson(`${upstream.url}/api/generate`, request));
    const through = await json(postJson(`${gateway.url}/api/generate`, request));
    expect(through.status).toBe(200);
    expect(through.body.response).toBe(direct.body.response);
    expect(through.body.response).not.toContain('.');
    expect(through.body.eval_count as number).toBeLessThanOrEqual(30);
  });

  it('carries tool calls (object arguments) and tool results in the history', async () => {
    await expectSameToolConversation(upstream, gateway);
  });

  it('embeds through the upstream', async () => {
    const request = { model: TEST_MODEL, input: ['a cat', 'a dog'] };
    const direct = await json(postJson(`${upstream.url}/api/embed`, request));
    const through = await json(postJson(`${gateway.url}/api/embed`, request));
    expect(through.status).toBe(200);
    expect(through.body.embeddings).toEqual(direct.body.embeddings);
    expect((through.body.embeddings as number[][]).length).toBe(2);
  });

  it('stops the upstream generation when the client goes away', async () => {
    const engine = upstream.services.engine;
    const generatedBefore = engine.stats.generated;
    const response = await postJson(`${gateway.url}/api/chat`, { model: TEST_MODEL, messages, options: { num_predict: 400 } });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    await expect.poll(() => engine.stats.running, { timeout: 10_000 }).toBe(0);
    // The upstream stopped within a few tokens of the cut instead of writing its 400-token story.
    expect(engine.stats.generated - generatedBefore).toBeLessThan(50);
  });

  it('loads and unloads on the upstream', async () => {
    expect((await postJson(`${gateway.url}/api/models/${TEST_MODEL}/load`, {})).status).toBe(200);
    expect(upstream.services.engine.loadedModels()).toContain(TEST_MODEL);
    expect((await postJson(`${gateway.url}/api/models/${TEST_MODEL}/unload`, {})).status).toBe(200);
    await expect.poll(() => upstream.services.engine.loadedModels(), { timeout: 5_000 }).not.toContain(TEST_MODEL);
  });

  it('passes keep_alive through: a duration keeps the model that long, 0 unloads it after the answer', async () => {
    const loaded = await json(postJson(`${gateway.url}/api/generate`, { model: TEST_MODEL, keep_alive: '7m', stream: false }));
    expect(loaded.body).toMatchObject({ done: true, done_reason: 'load' });
    const ps = await json(fetch(`${upstream.url}/api/ps`));
    const entry = (ps.body.models as { name: string; expires_at: string }[]).find((m) => m.name === TEST_MODEL)!;
    const minutes = (Date.parse(entry.expires_at) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(6.5);
    expect(minutes).toBeLessThanOrEqual(7);
    const answered = await json(postJson(`${gateway.url}/api/generate`, { model: TEST_MODEL, prompt: 'Once', keep_alive: 0, stream: false, options: { num_predict: 3 } }));
    expect(answered.status).toBe(200);
    await expect.poll(() => upstream.services.engine.loadedModels(), { timeout: 5_000 }).not.toContain(TEST_MODEL);
  });

  it('reports an unknown model as a 404 and an unreachable host as retryable', async () => {
    const signal = new AbortController().signal;
    const unknown = backend.chat({ model: 'nope:latest', messages: [{ role: 'user', content: 'hi' }], options: {}, signal });
    await expect((async () => { for await (const _ of unknown) { /* drain */ } })()).rejects.toMatchObject({ status: 404, retryable: false });
    const port = await freePort(); // nothing listens there any more
    const gone = new OllamaBackend(`http://127.0.0.1:${port}`);
    const error = await gone.listModels().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).toMatchObject({ status: 502, retryable: true });
    expect(await gone.ping()).toBe(false);
  });

  it('sends a registry-name pull to the Ollama host and passes its answer back', async () => {
    // The upstream's registry does not know the name, so its refusal must come back; had the gateway
    // pulled it itself, from its own registry, the pull would have succeeded.
    const direct = await json(postJson(`${upstream.url}/api/pull`, { model: 'llama3.2:1b', stream: false }));
    const response = await postJson(`${gateway.url}/api/pull`, { model: 'llama3.2:1b' });
    expect(response.status).toBe(200);
    const lines: Record<string, unknown>[] = [];
    for await (const line of ndjsonLines(response)) lines.push(line);
    expect(direct.body.error).toBe('pull model manifest: file does not exist');
    expect(lines.at(-1)).toEqual({ error: direct.body.error });
    expect(gatewayRegistry.requests).toEqual([]);
  });

  it('pulls with progress, copies and deletes on the upstream', async () => {
    const progress: PullProgress[] = [];
    const source = `${files.url}/models/pulled-story.gguf`;
    for await (const step of backend.pull(source, undefined, new AbortController().signal)) progress.push(step);
    const sized = progress.filter((p) => p.total && p.completed !== undefined);
    expect(sized.length).toBeGreaterThan(1);
    expect(sized.at(-1)!.completed).toBe(sized.at(-1)!.total);
    await backend.copy!('pulled-story:latest', 'pulled-copy:latest');
    const names = async () => ((await json(fetch(`${gateway.url}/api/tags`))).body.models as { name: string }[]).map((m) => m.name);
    await expect.poll(names, { timeout: 5_000 }).toEqual(expect.arrayContaining(['pulled-story:latest', 'pulled-copy:latest']));
    // Deleting through the gateway deletes on the upstream.
    const deleted = await postJson(`${gateway.url}/api/delete_model`, { model: 'pulled-copy:latest' });
    expect(deleted.status).toBe(200);
    const upstreamNames = ((await json(fetch(`${upstream.url}/api/tags`))).body.models as { name: string }[]).map((m) => m.name);
    expect(upstreamNames).not.toContain('pulled-copy:latest');
    await backend.delete!('pulled-story:latest');
    await expect(backend.delete!('pulled-story:latest')).rejects.toMatchObject({ status: 404 });
  });
});

describe('OpenAICompatibleBackend against our own server as the OpenAI-compatible host', () => {
  const key = 'upstream-secret-key-123';
  let upstream: RunningServer;
  let gateway: RunningServer;
  let log = '';

  beforeAll(async () => {
    // The upstream requires its admin token on /v1: the backend's API key.
    upstream = await startServer({ MODELS_DIR: upstreamModelsDir(), WEB_CHAT_TOKEN: key });
    const logStream = new PassThrough();
    logStream.on('data', (chunk) => (log += chunk));
    gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-'), LOG_LEVEL: 'debug' }, [new OpenAICompatibleBackend(upstream.url, { apiKey: key })], logStream);
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  const auth = { authorization: `Bearer ${key}` };

  it('lists the upstream /v1/models under Ollama-style names', async () => {
    const details = await json(fetch(`${gateway.url}/api/models/${TEST_MODEL}`));
    expect(details.status).toBe(200);
    expect(details.body.backends).toEqual([{ id: `openai:${upstream.url}/v1`, kind: 'openai', healthy: true }]);
  });

  it('streams a chat over SSE with token counts from include_usage', async () => {
    const direct = await json(postJson(`${upstream.url}/v1/chat/completions`, { model: TEST_MODEL, messages, temperature: 0, max_tokens: 8, seed: 42 }, auth));
    const through = await streamedChat(gateway.url, { model: TEST_MODEL, messages, options: greedy });
    const choices = direct.body.choices as { message: { content: string } }[];
    expect(through.text).toBe(choices[0]!.message.content);
    const usage = direct.body.usage as { prompt_tokens: number; completion_tokens: number };
    expect(through.final).toMatchObject({ done: true, done_reason: 'length', eval_count: usage.completion_tokens, prompt_eval_count: usage.prompt_tokens });
  });

  it('carries tool calls (JSON-string arguments, tool_call_id) and tool results in the history', async () => {
    await expectSameToolConversation(upstream, gateway, auth);
  });

  it('completes a prompt and embeds through /v1', async () => {
    const generated = await json(postJson(`${gateway.url}/api/generate`, { model: TEST_MODEL, prompt: 'Once upon a time', stream: false, options: { num_predict: 6 } }));
    expect(generated.status).toBe(200);
    expect((generated.body.response as string).length).toBeGreaterThan(0);
    expect(generated.body.eval_count).toBe(6);
    const embedded = await json(postJson(`${gateway.url}/api/embed`, { model: TEST_MODEL, input: ['a cat', 'a dog'] }));
    const direct = await json(postJson(`${upstream.url}/v1/embeddings`, { model: TEST_MODEL, input: ['a cat', 'a dog'] }, auth));
    expect(embedded.body.embeddings).toEqual((direct.body.data as { embedding: number[] }[]).map((d) => d.embedding));
  });

  it('passes images on to the server, which judges them (a text-only model there refuses them)', async () => {
    const withImage = [{ role: 'user', content: 'what is this?', images: ['aGVsbG8='] }];
    const through = await json(postJson(`${gateway.url}/api/chat`, { model: TEST_MODEL, messages: withImage, stream: false }));
    expect(through.status).toBe(400);
    expect(through.body.error).toMatch(/does not support images/);
  });

  it('treats load and unload as done, since the server manages its own memory', async () => {
    expect((await postJson(`${gateway.url}/api/models/${TEST_MODEL}/load`, {})).status).toBe(200);
    expect((await postJson(`${gateway.url}/api/models/${TEST_MODEL}/unload`, {})).status).toBe(200);
  });

  it('reports a server refusing its key as a gateway fault (not the client\'s 401), and never logs the key', async () => {
    const keyless = new OpenAICompatibleBackend(upstream.url);
    await expect(keyless.listModels()).rejects.toMatchObject({ status: 502, retryable: true });
    await expect(keyless.listModels()).rejects.toThrow(/refused the gateway's credentials \(401\)/);
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(key);
  });
});

describe('backends from the configuration', () => {
  it('maps tagless OpenAI model ids to name:latest and sends the server its own id', async () => {
    const mock = await startMockUpstream({ models: ['gpt-mini', 'org/Model-7B'] });
    try {
      const backend = new OpenAICompatibleBackend(mock.url);
      expect((await backend.listModels()).map((m) => m.name)).toEqual(['gpt-mini:latest', 'org/Model-7B:latest']);
      let text = '';
      for await (const event of backend.chat({ model: 'gpt-mini:latest', messages: [{ role: 'user', content: 'hi' }], options: {}, signal: new AbortController().signal })) {
        if (event.type === 'token') text += event.text;
      }
      expect(text).toBe('Once upon a time, there was a little girl.');
    } finally {
      await mock.close();
    }
  });

  it('logs an unreachable host once per change, and an absent optional host not at all', async () => {
    const logged: { level: string; message: string }[] = [];
    const logger = {
      info: (_: object, message: string) => logged.push({ level: 'info', message }),
      warn: (_: object, message: string) => logged.push({ level: 'warn', message }),
    };
    const url = `http://127.0.0.1:${await freePort()}`;
    const explicit = new OllamaBackend(url, { logger });
    for (let i = 0; i < 3; i++) await explicit.listModels().catch(() => undefined);
    expect(await explicit.ping()).toBe(false);
    expect(logged).toEqual([{ level: 'warn', message: 'Ollama server unreachable' }]);
    logged.length = 0;
    const optional = new OllamaBackend(url, { logger, optional: true, absentRetryMs: 0 });
    for (let i = 0; i < 3; i++) expect(await optional.listModels()).toEqual([]);
    expect(logged).toEqual([]);
    const mock = await startMockUpstream();
    try {
      const found = new OllamaBackend(mock.url, { logger, optional: true });
      await found.listModels();
      await found.listModels();
      expect(logged).toEqual([{ level: 'info', message: 'Ollama server found' }]);
    } finally {
      await mock.close();
    }
  });

  it('uses the default Ollama host only when it answers, quietly and at once when it does not', async () => {
    const config = loadConfig({ DATA_DIR: tempDir() });
    const backends = createBackends(config);
    expect(backends.map((b) => b.id)).toEqual(['ollama:http://127.0.0.1:11434']);
    const started = performance.now();
    // Nothing answers on 11434 here, so it lists nothing instead of failing.
    if (!(await backends[0]!.ping())) expect(await backends[0]!.listModels()).toEqual([]);
    expect(performance.now() - started).toBeLessThan(3_000);
    // The same optional host, when something does answer there, serves its models.
    const mock = await startMockUpstream();
    try {
      expect((await new OllamaBackend(mock.url, { optional: true }).listModels()).map((m) => m.name)).toEqual(['mock:latest']);
    } finally {
      await mock.close();
    }
    expect(createBackends(loadConfig({ OLLAMA_HOSTS: '', DATA_DIR: tempDir() }))).toEqual([]);
    const listed = createBackends(loadConfig({ OLLAMA_HOSTS: 'a:1,b:2', OPENAI_BACKENDS: 'http://c:3/v1|k', DATA_DIR: tempDir() }));
    expect(listed.map((b) => b.id)).toEqual(['ollama:http://a:1', 'ollama:http://b:2', 'openai:http://c:3/v1']);
  });
});

describe('an Arena chat whose only host has gone', () => {
  it('answers the Arena API\'s 500 with the backend\'s failure in details', async () => {
    const upstream = await startServer({ MODELS_DIR: upstreamModelsDir() });
    const gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OllamaBackend(upstream.url)]);
    try {
      expect((await json(fetch(`${gateway.url}/api/models`))).body.models).toEqual([TEST_MODEL]);
      await upstream.close(); // the host goes away; the gateway still knows its model
      const response = await json(postJson(`${gateway.url}/api/chat`, { history: messages, models: [TEST_MODEL] }));
      expect(response.status).toBe(500);
      expect(response.body).toMatchObject({ error: 'An unexpected error occurred', model: TEST_MODEL });
      expect(response.body.details).toMatch(/refused|ECONNREFUSED|unreachable|down/i);
    } finally {
      await gateway.close();
      await upstream.close().catch(() => undefined);
    }
  });
});

describe('a deletion the Ollama host refuses', () => {
  it('answers the Arena API\'s 500 "Failed to delete model" and keeps the model', async () => {
    const mock = await startMockUpstream({ models: ['keeper:latest'] });
    const gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OllamaBackend(mock.url)]);
    try {
      mock.setMode('fail'); // the host lists its models but fails to delete (a disk error on its side)
      const response = await json(postJson(`${gateway.url}/api/delete_model`, { model: 'keeper' }));
      expect(response.status).toBe(500);
      expect(response.body).toMatchObject({ error: 'Failed to delete model', details: expect.any(String) });
      expect(mock.hits.get('/api/delete')).toBe(1);
      expect((await json(fetch(`${gateway.url}/api/models`))).body.models).toEqual(['keeper:latest']);
      mock.setMode('ok');
      expect((await json(postJson(`${gateway.url}/api/delete_model`, { model: 'keeper' }))).body).toEqual({ status: 'deleted', model: 'keeper' });
    } finally {
      await gateway.close();
      await mock.close();
    }
  });
});

describe('a reasoning model behind the Ollama and OpenAI-compatible backends', () => {
  // A thinking model (qwen3, deepseek-r1) cannot run here; the mock plays one in Ollama's wire format.
  let mock: MockUpstream;
  let viaOllama: RunningServer;
  let viaOpenAi: RunningServer;
  const thoughts = THOUGHTS.join('');
  const ask = [{ role: 'user', content: 'Tell me a story' }];

  beforeAll(async () => {
    mock = await startMockUpstream({ models: ['thinker:latest'], thinkers: ['thinker:latest'] });
    viaOllama = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OllamaBackend(mock.url)]);
    viaOpenAi = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OpenAICompatibleBackend(mock.url)]);
  });
  afterAll(async () => {
    await viaOllama?.close();
    await viaOpenAi?.close();
    await mock?.close();
  });

  it('passes think on and gives the thoughts apart from the answer, streamed and not', async () => {
    const ollama = new Ollama({ host: viaOllama.url });
    const answer = await ollama.chat({ model: 'thinker', messages: ask, think: true });
    expect(answer.message.thinking).toBe(thoughts);
    expect(answer.message.content).toBe('Once upon a time, there was a little girl.');
    const parts = { thinking: '', content: '' };
    for await (const part of await ollama.chat({ model: 'thinker', messages: ask, think: 'high', stream: true })) {
      parts.thinking += part.message.thinking ?? '';
      parts.content += part.message.content;
    }
    expect(parts).toEqual({ thinking: thoughts, content: 'Once upon a time, there was a little girl.' });
    const generated = await ollama.generate({ model: 'thinker', prompt: 'Tell me a story', think: true });
    expect(generated.thinking).toBe(thoughts);
    // The extended Ollama API's SSE carries them as events of their own, out of full_text.
    const sse = await postJson(`${viaOllama.url}/api/chat`, { model: 'thinker', messages: ask, think: true }, { accept: 'text/event-stream' });
    const events = (await sse.text()).split('\n\n').filter(Boolean).map((frame) => JSON.parse(frame.replace(/^data: /, '')) as Record<string, unknown>);
    expect(events.filter((e) => e.thinking !== undefined).map((e) => e.thinking).join('')).toBe(thoughts);
    expect(events.at(-1)).toMatchObject({ done: true, full_text: 'Once upon a time, there was a little girl.' });
    // Without think the model is asked nothing of the kind.
    expect((await ollama.chat({ model: 'thinker', messages: ask })).message.thinking).toBeUndefined();
  });

  it('answers OpenAI clients with reasoning, from reasoning_effort', async () => {
    const openai = new OpenAI({ baseURL: `${viaOllama.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const completion = await openai.chat.completions.create({ model: 'thinker', messages: [{ role: 'user', content: 'Tell me a story' }], reasoning_effort: 'low' });
    expect((completion.choices[0]!.message as { reasoning?: string }).reasoning).toBe(thoughts);
    const bad = await postJson(`${viaOllama.url}/v1/chat/completions`, { model: 'thinker', messages: ask, reasoning_effort: 'extreme' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/reasoning_effort must be/);
    // An OpenAI-compatible upstream's `reasoning` deltas become thoughts too, on either surface.
    const through = new Ollama({ host: viaOpenAi.url });
    const answer = await through.chat({ model: 'thinker', messages: ask, think: 'low' });
    expect(answer.message).toMatchObject({ thinking: thoughts, content: 'Once upon a time, there was a little girl.' });
  });
});
