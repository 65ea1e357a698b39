import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/providers/embedded/engine.js';
import { GenerationService } from '../../src/gateway/generation.js';
import type { GenerationOptions } from '../../src/domain/chat.js';
import { postJson, SHARED_MODELS, spawnServer, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';

/** The embedded llama.cpp engine: option mapping, concurrency, keep-alive, load/unload, shutdown. */

describe('EmbeddedEngine', () => {
  const engine = new EmbeddedEngine({ modelsDir: SHARED_MODELS, threads: 1, parallel: 4, keepAliveMs: 60_000 });
  afterAll(() => engine.close());

  const complete = (prompt: string, options: GenerationOptions) =>
    GenerationService.collect(engine.complete({ model: TEST_MODEL, prompt, options, signal: new AbortController().signal }));

  it('lists the GGUF files with their metadata', async () => {
    const [model] = await engine.listModels();
    expect(model).toMatchObject({ name: TEST_MODEL, family: 'llama', format: 'gguf', quantization: 'F32', contextSize: 512 });
    expect(model!.modelInfo!['general.architecture']).toBe('llama');
  });

  it('stops at num_predict with done reason length', async () => {
    const result = await complete('Once upon a time', { num_predict: 7, temperature: 0.8 });
    expect(result.stats.completionTokens).toBe(7);
    expect(result.stats.doneReason).toBe('length');
    expect(result.stats.promptTokens).toBeGreaterThan(1);
    expect(result.stats.evalDurationNs).toBeGreaterThan(0);
  });

  it('runs until the end of text or a full context with num_predict -1', async () => {
    const result = await complete('Once upon a time', { num_predict: -1, temperature: 0.8, seed: 5 });
    expect(result.stats.completionTokens).toBeGreaterThan(7);
    expect(result.stats.completionTokens + result.stats.promptTokens).toBeLessThanOrEqual(512);
  });

  it('is greedy at temperature 0 and reproducible with a seed', async () => {
    const greedy = [await complete('Once upon a time', { temperature: 0, num_predict: 30 }), await complete('Once upon a time', { temperature: 0, num_predict: 30 })];
    expect(greedy[0]!.text).toBe(greedy[1]!.text);
    const seeded = [await complete('The dog', { temperature: 1.2, seed: 11, num_predict: 30 }), await complete('The dog', { temperature: 1.2, seed: 11, num_predict: 30 })];
    expect(seeded[0]!.text).toBe(seeded[1]!.text);
  });

  it('honours stop sequences', async () => {
    const free = await complete('Once upon a time', { temperature: 0, num_predict: 60 });
    const word = free.text.trim().split(/\s+/)[3]!;
    const stopped = await complete('Once upon a time', { temperature: 0, num_predict: 60, stop: [word] });
    expect(stopped.text).not.toContain(word);
    expect(stopped.text.length).toBeLessThan(free.text.length);
    expect(stopped.stats.doneReason).toBe('stop');
  });

  it('follows a JSON grammar when asked for format json', async () => {
    const result = await GenerationService.collect(
      engine.complete({ model: TEST_MODEL, prompt: 'Once', options: { num_predict: 40, temperature: 0.5 }, format: 'json', signal: new AbortController().signal }),
    );
    // Cut off by num_predict, but everything produced is the start of a JSON value.
    expect(result.text.trimStart()[0]).toMatch(/[[{"\-0-9tfn]/);
  });

  it('generates for several requests at once on one model (parallel sequences)', async () => {
    // Each request's first and last token times: with one sequence the second request could only
    // start once the first had ended; with parallel sequences their token streams overlap.
    const spans = await Promise.all(
      [1, 2, 3].map(async (seed) => {
        let first = 0;
        let last = 0;
        await GenerationService.collect(
          engine.complete({ model: TEST_MODEL, prompt: 'Once upon a time', options: { seed, num_predict: 150, temperature: 0.8 }, signal: new AbortController().signal }),
          () => {
            last = performance.now();
            first ||= last;
          },
        );
        return { first, last };
      }),
    );
    const lastFirstToken = Math.max(...spans.map((s) => s.first));
    const firstEnd = Math.min(...spans.map((s) => s.last));
    expect(lastFirstToken).toBeLessThan(firstEnd);
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    let tokens = 0;
    const result = await GenerationService.collect(
      engine.complete({ model: TEST_MODEL, prompt: 'Once', options: { num_predict: -1 }, signal: controller.signal }),
      () => {
        if (++tokens === 3) controller.abort();
      },
    );
    expect(result.stats.doneReason).toBe('abort');
    expect(result.stats.completionTokens).toBeLessThan(20);
  });

  it('embeds into unit vectors', async () => {
    const result = await engine.embed({ model: TEST_MODEL, input: ['hello world', 'a cat'], signal: new AbortController().signal });
    expect(result.embeddings).toHaveLength(2);
    for (const vector of result.embeddings) {
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    }
  });

  it('answers a clear 404 for an unknown model', async () => {
    await expect(engine.load('ghost:latest')).rejects.toMatchObject({ status: 404 });
  });
});

describe('load, unload and keep-alive through the API', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ KEEP_ALIVE_SECONDS: '1' });
  });
  afterAll(() => server.close());

  const loaded = async () => (await (await fetch(`${server.url}/api/models/stories260K`)).json()).loaded;

  it('loads and unloads on request (extended Ollama API)', async () => {
    const load = await fetch(`${server.url}/api/models/stories260K/load`, { method: 'POST' });
    expect(await load.json()).toEqual({ status: 'success', message: "Model 'stories260K:latest' loaded" });
    expect(await loaded()).toBe(true);
    const unload = await fetch(`${server.url}/api/models/stories260K/unload`, { method: 'POST' });
    expect(await unload.json()).toEqual({ status: 'success', message: "Model 'stories260K:latest' unloaded" });
    expect(await loaded()).toBe(false);
  });

  it('loads lazily on first use and unloads when idle past the keep-alive', async () => {
    expect(await loaded()).toBe(false);
    await postJson(`${server.url}/api/chat`, { history: [{ role: 'user', content: 'Hi' }], model_instances: [{ model: 'stories260K', num_predict: 3 }] });
    expect(await loaded()).toBe(true);
    await expect.poll(loaded, { timeout: 5_000, interval: 100 }).toBe(false);
  });

  it('answers 404 for unknown models', async () => {
    const response = await fetch(`${server.url}/api/models/ghost/load`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'Model not found: ghost' });
  });
});

describe('graceful shutdown', () => {
  it('ends open streams and exits cleanly on SIGTERM', async () => {
    const server = await spawnServer();
    const response = await postJson(`${server.url}/api/stream_chat`, {
      history: [{ role: 'user', content: 'Tell me a long story' }],
      model_instances: [{ model: 'stories260K', num_predict: 4096 }],
    });
    const reader = response.body!.getReader();
    await reader.read();
    const exit = server.stop('SIGTERM');
    // The stream ends (finished or cancelled) rather than hanging.
    for (;;) {
      const chunk = await reader.read().catch(() => ({ done: true }));
      if (chunk.done) break;
    }
    expect(await exit).toBe(0);
  });
});
