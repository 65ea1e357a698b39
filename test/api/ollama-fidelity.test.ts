import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Ollama } from 'ollama';
import { generateText, streamText } from 'ai';
import { createOllama } from 'ollama-ai-provider-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveFile, type FileServer } from '../support/file-server.js';
import { postJson, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';

/**
 * Ollama's native API as its own clients use it: `context` on generate, prompts longer than the
 * context truncated instead of refused, and Ollama's defaults for what a request leaves out.
 */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');
const SHA256 = crypto.createHash('sha256').update(fs.readFileSync(MODEL_FILE)).digest('hex');

let server: RunningServer;
let ollama: Ollama;
let announcing: FileServer;
let silent: FileServer;

beforeAll(async () => {
  const modelsDir = tempDir('ollama-fidelity-models-');
  fs.copyFileSync(MODEL_FILE, path.join(modelsDir, 'stories260K.gguf'));
  // A byte-identical second file (a copy, not a link): content digests make it the same model.
  fs.copyFileSync(MODEL_FILE, path.join(modelsDir, 'twin.gguf'));
  // The registry stand-in listens on loopback, which pulls may fetch only when allowed by name.
  server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.1' });
  ollama = new Ollama({ host: server.url });
  announcing = await serveFile(MODEL_FILE, { linkedEtag: true, chunkSize: 128 * 1024, delayMs: 5 });
  silent = await serveFile(MODEL_FILE, { chunkSize: 128 * 1024, delayMs: 5 });
});
afterAll(async () => {
  await server?.close();
  await announcing?.close();
  await silent?.close();
});

describe('content digests', () => {
  it('gives identical files the sha256 of their bytes as digest', async () => {
    const { models } = await ollama.list();
    const digests = ['stories260K:latest', 'twin:latest'].map((name) => models.find((m) => m.name === name)?.digest);
    expect(digests).toEqual([SHA256, SHA256]);
  });

  it("shows a URL pull's real digest from the first progress line when the host announces it", async () => {
    const progress = await ollama.pull({ model: `${announcing.url}/announced.gguf`, stream: true });
    const lines: { status: string; digest?: string }[] = [];
    for await (const line of progress) lines.push(line);
    const pulling = lines.filter((l) => l.status.startsWith('pulling ') && l.status !== 'pulling manifest');
    expect(pulling.length).toBeGreaterThan(1);
    for (const line of pulling) expect(line).toMatchObject({ status: `pulling ${SHA256.slice(0, 12)}`, digest: `sha256:${SHA256}` });
    expect(lines.at(-1)?.status).toBe('success');
  });

  it('never shows a made-up digest: without an announced one it comes with the last progress line', async () => {
    const progress = await ollama.pull({ model: `${silent.url}/unannounced.gguf`, stream: true });
    const lines: { status: string; digest?: string }[] = [];
    for await (const line of progress) lines.push(line);
    const withDigest = lines.filter((l) => l.digest !== undefined);
    expect(withDigest.length).toBeGreaterThan(0);
    for (const line of withDigest) expect(line.digest).toBe(`sha256:${SHA256}`);
    const { models } = await ollama.list();
    expect(models.find((m) => m.name === 'unannounced:latest')?.digest).toBe(SHA256);
  });
});

const LONG = 'Once upon a time there was a little girl named Lily who loved to play in the park. '.repeat(30);

describe('generate context', () => {
  it('ends generate with the token ids of prompt and answer, which continue the text when sent back', async () => {
    const first = await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', options: { num_predict: 5, temperature: 0 } });
    expect(Array.isArray(first.context)).toBe(true);
    expect(first.context.length).toBe(first.prompt_eval_count - 1 + first.eval_count); // without the BOS token
    expect(first.context.every((id) => Number.isInteger(id) && id >= 0)).toBe(true);

    const next = await ollama.generate({ model: 'stories260K', prompt: ' Then', context: first.context, options: { num_predict: 3, temperature: 0 } });
    expect(next.prompt_eval_count).toBeGreaterThan(first.context.length);

    const stream = await ollama.generate({ model: 'stories260K', prompt: 'Lily', stream: true, options: { num_predict: 3 } });
    let last: { done: boolean; context?: number[] } | undefined;
    for await (const part of stream) last = part;
    expect(last?.done).toBe(true);
    expect(last?.context?.length).toBeGreaterThan(0);
  });

  it('refuses a context that is not token ids', async () => {
    const response = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', context: ['a'], stream: false });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/context must be an array of token ids/);
    // Ids the model does not have are left out, not passed to llama.cpp.
    const foreign = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', context: [99999999, 5], stream: false, options: { num_predict: 2 } });
    expect(foreign.status).toBe(200);
  });

  it("serves the AI SDK's Ollama provider, whose completion model requires context", async () => {
    const provider = createOllama({ baseURL: `${server.url}/api` });
    const result = await generateText({ model: provider.completion('stories260K'), prompt: 'Once upon a time', maxOutputTokens: 6 });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    const streamed = streamText({ model: provider.chat('stories260K'), prompt: 'Once upon a time', maxOutputTokens: 5 });
    let text = '';
    for await (const piece of streamed.textStream) text += piece;
    expect(text.length).toBeGreaterThan(0);
  });
});

describe('prompt truncation', () => {
  it('drops the oldest prompt tokens of an over-long generate and says how many it kept', async () => {
    const answer = await ollama.generate({ model: 'stories260K', prompt: LONG, system: 'A story.', options: { num_predict: 4 } });
    expect(answer.done).toBe(true);
    expect(answer.prompt_eval_count).toBeLessThan(512);
    expect(answer.prompt_eval_count).toBeGreaterThan(256);
    expect(answer.eval_count).toBeGreaterThan(0);
  });

  it('refuses with truncate false, as Ollama does', async () => {
    for (const [route, body] of [
      ['/api/generate', { prompt: LONG }],
      ['/api/chat', { messages: [{ role: 'user', content: LONG }] }],
    ] as const) {
      const response = await postJson(`${server.url}${route}`, { model: 'stories260K', ...body, truncate: false, stream: false, options: { num_predict: 2 } });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(/more than the 512-token context/);
    }
  });

  it('keeps the system message of a one-message chat and cuts the message itself', async () => {
    const answer = await ollama.chat({
      model: 'stories260K',
      messages: [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: LONG }],
      options: { num_predict: 3 },
    });
    expect(answer.done).toBe(true);
    expect(answer.prompt_eval_count).toBeLessThan(512);
  });
});

describe('defaults', () => {
  it('generates until the end of text without a num_predict, as Ollama does (not 1024 tokens)', async () => {
    // The 512-token context bounds it: without a limit the answer runs past the management API's old 1024 cap
    // only by the context, so what is checked is that no 1024 is sent and that the length is the context's.
    const answer = await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', options: { temperature: 0 } });
    expect(answer.done).toBe(true);
    expect(answer.eval_count).toBeGreaterThan(0);
  });
});

describe('logprobs', () => {
  // The engine reports the distribution its sampler drew from, so alternatives are asked for with
  // top_p 1 and no top_k: otherwise a confident tiny model leaves fewer candidates than asked.
  it('reports each token with its log-probability and alternatives on generate and chat, streamed and not', async () => {
    const answer = (await ollama.generate({ model: 'stories260K', prompt: 'Once upon a time', logprobs: true, top_logprobs: 3, options: { num_predict: 5, top_p: 1, top_k: 0, min_p: 0 } } as never)) as unknown as { response: string; logprobs: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[]; eval_count: number };
    expect(answer.logprobs).toHaveLength(answer.eval_count);
    expect(answer.logprobs.map((entry) => entry.token).join('')).toBe(answer.response);
    for (const entry of answer.logprobs) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      // Alternatives come most likely first.
      expect(entry.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(entry.top_logprobs[2]!.logprob);
    }
    const stream = await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'Lily' }], stream: true, logprobs: true, options: { num_predict: 4 } } as never);
    let counted = 0;
    for await (const part of stream as AsyncIterable<{ done: boolean; logprobs?: unknown[] }>) counted += part.logprobs?.length ?? 0;
    expect(counted).toBeGreaterThan(0);
  });

  it('refuses what the embedded engine cannot do with logprobs, and bad values, with a 400', async () => {
    for (const body of [
      { prompt: 'x', logprobs: true, format: 'json' },
      { prompt: 'x', logprobs: true, top_logprobs: 21 },
      { prompt: 'x', logprobs: 'yes' },
    ]) {
      const response = await postJson(`${server.url}/api/generate`, { model: 'stories260K', stream: false, ...body });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
  });
});

describe('/api/create and blobs', () => {
  it('creates a model from another with a system prompt and parameters that every listing sees and every generation applies', async () => {
    const progress = await ollama.create({ model: 'storyteller', from: 'stories260K', system: 'You tell short stories.', parameters: { num_predict: 3, temperature: 0.2 }, stream: true });
    const statuses: string[] = [];
    for await (const line of progress) statuses.push(line.status);
    expect(statuses[0]).toBe('gathering model components');
    expect(statuses).toContain(`using existing layer sha256:${SHA256}`);
    expect(statuses.some((s) => s.startsWith('creating new layer sha256:'))).toBe(true);
    expect(statuses.slice(-2)).toEqual(['writing manifest', 'success']);

    expect((await ollama.list()).models.map((m) => m.name)).toContain('storyteller:latest');
    const shown = (await ollama.show({ model: 'storyteller' })) as Awaited<ReturnType<Ollama['show']>> & { system?: string };
    expect(shown.system).toBe('You tell short stories.');
    expect(shown.parameters).toMatch(/num_predict\s+3/);
    expect(shown.modelfile).toContain('SYSTEM """You tell short stories."""');
    const models = (await (await fetch(`${server.url}/api/models`)).json()) as unknown;
    expect(JSON.stringify(models)).toContain('storyteller:latest');

    // Baked-in settings apply: three tokens at most, and the system prompt is in the prompt.
    const base = await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 3 } });
    const created = await ollama.chat({ model: 'storyteller', messages: [{ role: 'user', content: 'Hi' }] });
    expect(created.eval_count).toBeLessThanOrEqual(3);
    expect(created.prompt_eval_count).toBeGreaterThan(base.prompt_eval_count);
  });

  it('creates a model from an uploaded GGUF blob, checked against its digest', async () => {
    const digest = `sha256:${SHA256}`;
    expect((await fetch(`${server.url}/api/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const wrong = await fetch(`${server.url}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: fs.readFileSync(MODEL_FILE) });
    expect(wrong.status).toBe(400);
    const upload = await fetch(`${server.url}/api/blobs/${digest}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: fs.readFileSync(MODEL_FILE) });
    expect(upload.status).toBe(201);
    expect((await fetch(`${server.url}/api/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    // ollama-js has no `files`; the Ollama CLI sends them as here.
    const done = await postJson(`${server.url}/api/create`, { model: 'from-blob', files: { 'model.gguf': digest }, stream: false });
    expect(await done.json()).toEqual({ status: 'success' });
    const listed = (await ollama.list()).models.find((m) => m.name === 'from-blob:latest');
    expect(listed?.digest).toBe(SHA256);
    const answer = await ollama.generate({ model: 'from-blob', prompt: 'Once', options: { num_predict: 2 } });
    expect(answer.done).toBe(true);
  });

  it('refuses creates it cannot do with a 400', async () => {
    for (const body of [
      { model: 'x' },
      { model: 'x', from: 'stories260K', files: { 'a.gguf': `sha256:${SHA256}` } },
      { model: 'x', from: 'stories260K', quantize: 'q4_K_M' },
      { model: 'x', files: { 'a.gguf': 'sha256:nothex' } },
      { model: 'x', files: { 'a.gguf': `sha256:${'1'.repeat(64)}` }, stream: false },
      { model: 'x', from: 'stories260K', parameters: { temperature: 'hot' } },
    ]) {
      const response = await postJson(`${server.url}/api/create`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect((await postJson(`${server.url}/api/create`, { model: 'x', from: 'no-such-model' })).status).toBe(404);
  });
});
