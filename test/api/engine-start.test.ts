import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlamaStart, loadProcessLlama, START_RETRY_MIN_MS } from '../../src/providers/embedded/llama-start.js';
import { postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';

/**
 * An embedded engine whose llama.cpp cannot start says so: `/api/health` is degraded with the reason,
 * its requests get a 503 with that reason in each surface's format (not a bare 500), and it keeps
 * trying in the background with a back-off, so it recovers without a restart once llama.cpp loads.
 */

describe('the embedded engine when llama.cpp fails to start', () => {
  let server: RunningServer;
  let broken = true;
  let attempts = 0;
  const attemptTimes: number[] = [];
  // node-llama-cpp's own failure when no binary passes its self-test.
  const loadLlama = async () => {
    attempts += 1;
    attemptTimes.push(Date.now());
    if (broken) throw Object.assign(new Error('NoBinaryFoundError'), { name: 'NoBinaryFoundError' });
    return loadProcessLlama();
  };

  beforeAll(async () => {
    server = await startServer({}, [], undefined, { loadLlama });
  });
  afterAll(async () => {
    await server?.close();
  });

  const health = async () => (await (await fetch(`${server.url}/api/health`)).json()) as { status: string; degraded?: { component: string; reason: string }[] };
  const generate = () => postJson(`${server.url}/api/generate`, { model: TEST_MODEL, prompt: 'Once', stream: false, options: { num_predict: 3 } });

  it('answers 12 concurrent first requests with a 503 that says why, after one start attempt', async () => {
    expect((await health()).status).toBe('healthy'); // nothing has tried to start it yet
    const responses = await Promise.all(Array.from({ length: 12 }, generate));
    for (const response of responses) {
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: string };
      expect(body.error).toMatch(/^the embedded engine could not start llama\.cpp: NoBinaryFoundError; next attempt in \d+ s$/);
    }
    // Requests never start an attempt of their own: only the first one does, and the background
    // retries come no sooner than the back-off after it (a loaded machine may take longer than that
    // to answer twelve requests, so later attempts may be the retry's, which is fine).
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attemptTimes.filter((at) => at - attemptTimes[0]! < START_RETRY_MIN_MS - 50)).toHaveLength(1);
  });

  it('reports the engine in /api/health and /health', async () => {
    const degraded = [{ component: 'embedded', reason: 'the embedded engine could not start llama.cpp: NoBinaryFoundError' }];
    expect(await health()).toEqual({ status: 'degraded', service: 'ollama-arena', models_available: expect.any(Number), degraded });
    expect(await (await fetch(`${server.url}/health`)).json()).toEqual({ status: 'degraded', degraded });
  });

  it('gives the reason in the OpenAI and Arena formats too', async () => {
    const openai = await postJson(`${server.url}/v1/chat/completions`, { model: TEST_MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    expect(openai.status).toBe(503);
    expect(await openai.json()).toEqual({
      error: { message: expect.stringContaining('could not start llama.cpp: NoBinaryFoundError'), type: 'server_error', code: null },
    });
    const chat = await postJson(`${server.url}/api/chat`, { model: TEST_MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: false });
    expect(chat.status).toBe(503);
    expect(((await chat.json()) as { error: string }).error).toContain('could not start llama.cpp');
  });

  it('retries with a back-off and recovers by itself: degraded → healthy, 503 → 200', async () => {
    const before = attempts;
    broken = false;
    // The attempts come 1, 2, 4, 8 s apart: a slow machine may reach the fourth before the flag flips.
    await expect.poll(async () => (await health()).status, { timeout: 40_000, interval: 100 }).toBe('healthy');
    expect(attempts).toBeGreaterThan(before);
    const response = await generate();
    expect(response.status).toBe(200);
    expect(((await response.json()) as { done: boolean }).done).toBe(true);
  }, 60_000);
});

describe('LlamaStart back-off', () => {
  it('waits 1 s after the first failure, then twice as long after each next one', async () => {
    let attempts = 0;
    const start = new LlamaStart(async () => {
      attempts += 1;
      throw new Error(`broken binary ${attempts}`);
    });
    try {
      await expect(start.get()).rejects.toThrow(/: broken binary 1; next attempt in 1 s$/);
      // No request starts another attempt: the back-off alone does.
      await expect(start.get()).rejects.toThrow(/broken binary 1/);
      expect(attempts).toBe(1);
      await expect.poll(() => attempts, { timeout: 10_000, interval: 20 }).toBe(2);
      await expect.poll(() => start.unavailable, { timeout: 5_000, interval: 20 }).toContain('broken binary 2');
      await expect(start.get()).rejects.toThrow(/: broken binary 2; next attempt in 2 s$/);
    } finally {
      start.close();
    }
  });
});
