import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/providers/embedded/engine.js';
import { ndjsonLines, postJson, spawnServer, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';

/**
 * An Arena request with more instances of one model than the model's context has sequences: the
 * ones beyond get a context made for them, so that every instance starts at once rather than waiting
 * for another to end; up to LLAMA_MAX_PARALLEL sequences, past which they wait as before.
 */

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Event = { kind: 'first token' | 'done'; instance: string };

function arenaBody(count: number, numPredict = 200) {
  const model_instances = Array.from({ length: count }, (_, i) => ({ id: `i${i + 1}`, model: 'stories260K', temperature: 0.7, seed: i + 1, num_predict: numPredict }));
  return { history: [{ role: 'user', content: 'Tell me a story' }], model_instances };
}

/** Streams an Arena of `count` instances of the test model: each instance's first token and end, in order. */
async function arena(count: number): Promise<Event[]> {
  const response = await postJson(`${server!.url}/api/stream_chat`, arenaBody(count));
  expect(response.status).toBe(200);
  const events: Event[] = [];
  const started = new Set<string>();
  for await (const line of ndjsonLines<{ instance_id: string; done: boolean; error?: string }>(response)) {
    expect(line.error).toBeUndefined();
    if (line.done) events.push({ kind: 'done', instance: line.instance_id });
    else if (!started.has(line.instance_id)) {
      started.add(line.instance_id);
      events.push({ kind: 'first token', instance: line.instance_id });
    }
  }
  return events;
}

/** How many instances had their first token before any instance ended. */
function startedTogether(events: Event[]): number {
  const firstEnd = events.findIndex((e) => e.kind === 'done');
  return events.slice(0, firstEnd).filter((e) => e.kind === 'first token').length;
}

function engine(): EmbeddedEngine {
  return server!.services.router.backend('embedded') as EmbeddedEngine;
}

function contexts(): number {
  return engine().pool.get(TEST_MODEL)?.sequences.contexts.length ?? 0;
}

describe('an Arena with more instances than the model has sequences', () => {
  it('starts every instance before any ends, and frees the extra context after', async () => {
    server = await startServer({ LLAMA_PARALLEL: '2' });
    const events = await arena(6);
    expect(startedTogether(events)).toBe(6);
    expect(events.filter((e) => e.kind === 'done')).toHaveLength(6);
    // The context made for the four beyond the model's two goes once they end; the model's own stays.
    await expect.poll(contexts, { timeout: 10_000, interval: 20 }).toBe(1);
  });

  it('grows no further than LLAMA_MAX_PARALLEL: the rest wait for a sequence', async () => {
    server = await startServer({ LLAMA_PARALLEL: '2', LLAMA_MAX_PARALLEL: '4' });
    const events = await arena(6);
    expect(startedTogether(events)).toBe(4);
    expect(events.filter((e) => e.kind === 'done')).toHaveLength(6);
  });

  it('leaves no context behind when the client goes while one is being made', async () => {
    server = await startServer({ LLAMA_PARALLEL: '2' });
    await arena(1); // loaded, so that the six below ask for sequences at once
    // Gone as soon as the answer's headers come: the generations have just asked for their sequences.
    const controller = new AbortController();
    await fetch(`${server.url}/api/stream_chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(arenaBody(6, -1)),
      signal: controller.signal,
    });
    controller.abort();
    // Once every generation has let go and the context made for them (if it was made) is settled.
    const settled = () => engine().pool.busy() === 0 && !engine().pool.get(TEST_MODEL)!.sequences.growing;
    await expect.poll(settled, { timeout: 10_000, interval: 20 }).toBe(true);
    expect(contexts()).toBe(1);
    // The server keeps the abandoned connection open, and its close would wait for it: that is the
    // shutdown's concern, not the pool's, so the connection goes here.
    server.app.server.closeAllConnections();
  });

  it('stops cleanly on SIGTERM while an extra context streams', async () => {
    const spawned = await spawnServer({ LLAMA_PARALLEL: '2', SHUTDOWN_GRACE_SECONDS: '1' });
    try {
      const response = await postJson(`${spawned.url}/api/stream_chat`, arenaBody(6, -1));
      const started = new Set<string>();
      let ends = 0;
      let exit: Promise<number | null> | undefined;
      for await (const line of ndjsonLines<{ instance_id: string; done: boolean }>(response)) {
        if (line.done) ends++;
        else started.add(line.instance_id);
        // Every instance streams, four of them in the context made for them: stop the server now.
        if (started.size === 6) exit ??= spawned.stop('SIGTERM');
      }
      expect(ends).toBe(6); // each with its last line, cut or complete
      expect(await exit).toBe(0);
      // llama.cpp's memory was never freed under a running decode.
      expect(spawned.output()).not.toMatch(/DisposedError|uncaught|unhandled/i);
    } finally {
      await spawned.stop('SIGKILL');
    }
  }, 60_000);
});
