import net from 'node:net';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, spawnServer, tempDir, type SpawnedServer } from '../support/server.js';
import { STORES } from '../support/stores.js';
import { startMockUpstream } from '../support/mock-upstream.js';

/**
 * Graceful shutdown keeps every promise: on SIGTERM the listener closes, requests in flight finish
 * within SHUTDOWN_GRACE_SECONDS, the rest are cut with a clean end in their own wire format, every
 * request has its usage row (499 when cut), no model is unloaded under a running generation, and the
 * process exits 0. `kill -9` loses only what is in flight: a finished request's row is written within 1 s.
 */

const ADMIN_TOKEN = 'admin-token-for-shutdown';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const SHUTDOWN_MESSAGE = 'the server is shutting down: the generation was stopped before its end';
/** More tokens than the test model's context holds: a generation that stops at the context's end. */
const LONG = 100_000;

type Outcome = 'complete' | 'cut';
type Json = Record<string, unknown>;

interface Sent {
  name: string;
  /** Resolves once the first token has reached the client (streams only). */
  firstToken(): Promise<void>;
  /** How the answer ended; rejects if it ended in any other way than a complete answer or a clean cut. */
  outcome: Promise<Outcome>;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A request's promises; an answer that fails before its first token fails the wait for it too. */
function sent(name: string, first: Promise<void>, outcome: Promise<Outcome>): Sent {
  outcome.catch(() => undefined); // awaited by the test; this only keeps an early failure from counting as unhandled
  const early = () =>
    outcome.then(() => {
      throw new Error(`${name} ended before its first token`);
    });
  return { name, firstToken: () => Promise.race([first, early()]), outcome };
}

/** A request cut before its answer started: a complete error answer in the surface's format. */
async function refusedBeforeStart(response: Response, openAi: boolean): Promise<Outcome> {
  expect(response.status).toBe(503);
  const body = (await response.json()) as Json;
  if (openAi) expect(body.error).toMatchObject({ message: SHUTDOWN_MESSAGE, code: 'server_shutting_down' });
  else expect(body.error).toBe(SHUTDOWN_MESSAGE);
  return 'cut';
}

/** Ollama NDJSON: the last line is `done: true`, with done_reason `shutdown` and an error when cut. */
function ollamaStream(name: string, url: string, body: Json): Sent {
  const first = deferred();
  const outcome = (async (): Promise<Outcome> => {
    const response = await postJson(url, { ...body, stream: true }, admin);
    if (response.status !== 200) return refusedBeforeStart(response, false);
    const lines: Json[] = [];
    for await (const line of ndjsonLines(response)) {
      lines.push(line);
      if (line.done === false) first.resolve();
    }
    const last = lines.at(-1)!;
    expect(lines.slice(0, -1).every((line) => line.done === false), name).toBe(true);
    expect(last.done, name).toBe(true);
    if (last.done_reason === 'shutdown') {
      expect(last.error).toBe(SHUTDOWN_MESSAGE);
      expect(last.eval_count).toBeGreaterThan(0);
      return 'cut';
    }
    expect(['stop', 'length'], name).toContain(last.done_reason);
    expect(last.error).toBeUndefined();
    return 'complete';
  })();
  return sent(name, first.promise, outcome);
}

/** OpenAI SSE: a chunk with the finish_reason (`error` and the error beside it when cut), then [DONE]. */
function openAiStream(name: string, url: string, body: Json): Sent {
  const first = deferred();
  const outcome = (async (): Promise<Outcome> => {
    const response = await postJson(url, { ...body, stream: true, stream_options: { include_usage: true } }, admin);
    if (response.status !== 200) return refusedBeforeStart(response, true);
    const text = await (async () => {
      let all = '';
      const decoder = new TextDecoder();
      const reader = response.body!.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        all += decoder.decode(chunk.value, { stream: true });
        if (/"(content|text)":"[^"]/.test(all)) first.resolve();
      }
      return all;
    })();
    const frames = text.split('\n\n').filter(Boolean).map((frame) => frame.replace(/^data: /, ''));
    expect(frames.at(-1), name).toBe('[DONE]');
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame) as Json);
    const finished = chunks.filter((chunk) => (chunk.choices as Json[])[0]?.finish_reason != null);
    expect(finished, name).toHaveLength(1);
    // With include_usage, the usage chunk follows the finish_reason, as OpenAI sends it.
    expect(chunks.at(-1)!.usage, name).toMatchObject({ completion_tokens: expect.any(Number) });
    const reason = (finished[0]!.choices as Json[])[0]!.finish_reason;
    if (reason === 'error') {
      expect(finished[0]!.error).toMatchObject({ message: SHUTDOWN_MESSAGE, type: 'server_error', code: 'server_shutting_down' });
      return 'cut';
    }
    expect(['stop', 'length'], name).toContain(reason);
    return 'complete';
  })();
  return sent(name, first.promise, outcome);
}

/** A non-streamed answer: whole (200) or a complete 503 error saying why. */
function whole(name: string, url: string, body: Json, openAi: boolean): Sent {
  const outcome = (async (): Promise<Outcome> => {
    const response = await postJson(url, { ...body, stream: false }, admin);
    if (response.status !== 200) return refusedBeforeStart(response, openAi);
    const answer = (await response.json()) as Json;
    if (openAi) expect(['stop', 'length']).toContain((answer.choices as Json[])[0]!.finish_reason);
    else expect(answer).toMatchObject({ done: true, done_reason: expect.stringMatching(/^(stop|length)$/) });
    return 'complete';
  })();
  return sent(name, Promise.resolve(), outcome);
}

/** Arena NDJSON: every instance ends with one `done: true` line, carrying the error when cut. */
function arenaStream(name: string, url: string, instances: number, numPredict = 4096): Sent {
  const first = deferred();
  const outcome = (async (): Promise<Outcome> => {
    const response = await postJson(url, {
      history: [{ role: 'user', content: 'Tell me a long story' }],
      model_instances: Array.from({ length: instances }, (_, i) => ({ model: 'stories260K', num_predict: numPredict, temperature: 0.5 + i / 10 })),
    }, admin);
    expect(response.status, name).toBe(200);
    const ends = new Map<string, Json>();
    for await (const line of ndjsonLines(response)) {
      if (line.done === false) first.resolve();
      else {
        expect(ends.has(line.instance_id as string), name).toBe(false);
        ends.set(line.instance_id as string, line);
      }
    }
    expect(ends.size, name).toBe(instances);
    let cut = false;
    for (const end of ends.values()) {
      if (end.error === undefined) continue;
      expect(end.error, name).toBe(SHUTDOWN_MESSAGE);
      cut = true;
    }
    return cut ? 'cut' : 'complete';
  })();
  return sent(name, first.promise, outcome);
}

async function generationsRunning(server: SpawnedServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: admin })).text();
  return Number(/^arena_generations_running (\d+)/m.exec(text)?.[1] ?? 0);
}

interface UsageSummary {
  totals: { requests: number };
  by_status: { status: number; requests: number }[];
}

async function usage(server: SpawnedServer): Promise<UsageSummary> {
  const response = await fetch(`${server.url}/api/admin/usage`, { headers: admin });
  expect(response.status).toBe(200);
  return (await response.json()) as UsageSummary;
}

const statusCount = (summary: UsageSummary, status: number) => summary.by_status.find((row) => row.status === status)?.requests ?? 0;

/** Stops what a test left running; a process already gone (killed, or exited) is left alone. */
async function stopAll(servers: SpawnedServer[]): Promise<void> {
  for (const server of servers) {
    if (server.process.exitCode === null && server.process.signalCode === null) await server.stop('SIGKILL');
  }
}

function expectCleanExit(server: SpawnedServer): void {
  expect(server.output()).not.toMatch(/DisposedError|uncaught|unhandled/i);
}

describe('graceful shutdown (SIGTERM)', () => {
  const servers: SpawnedServer[] = [];
  afterAll(async () => {
    await stopAll(servers);
  });
  async function start(env: Record<string, string>): Promise<SpawnedServer> {
    const server = await spawnServer({ WEB_CHAT_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'info', ...env });
    servers.push(server);
    return server;
  }

  it('refuses new connections and lets requests in flight finish within the grace period', async () => {
    const dataDir = tempDir();
    const server = await start({ DATA_DIR: dataDir, SHUTDOWN_GRACE_SECONDS: '120' });
    const short = { model: 'stories260K', prompt: 'Once upon a time', options: { num_predict: 60 } };
    const sent = [
      ollamaStream('ollama generate', `${server.url}/api/generate`, short),
      openAiStream('openai chat', `${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], max_tokens: 60 }),
      arenaStream('arena', `${server.url}/api/stream_chat`, 1, 60),
    ];
    await Promise.all(sent.map((s) => s.firstToken()));
    const exit = server.stop('SIGTERM');
    // The listener is closed at once: a new connection is refused (or, on a connection the client
    // already had open, answered 503 with Connection: close).
    await expect
      .poll(async () => fetch(`${server.url}/api/version`).then((r) => r.status, () => 'refused'), { timeout: 10_000, interval: 20 })
      .toMatch(/refused|503/);
    expect(await Promise.all(sent.map((s) => s.outcome))).toEqual(['complete', 'complete', 'complete']);
    expect(await exit).toBe(0);
    expectCleanExit(server);

    const again = await start({ DATA_DIR: dataDir });
    const summary = await usage(again);
    expect(summary.totals.requests).toBe(3);
    expect(statusCount(summary, 200)).toBe(3);
  }, 180_000);

  it('cuts what runs past the grace period with a clean end, a usage row each, and exits 0', async () => {
    const dataDir = tempDir();
    // Eight sequences: the first requests generate at once, the rest wait for a sequence when cut.
    const server = await start({ DATA_DIR: dataDir, SHUTDOWN_GRACE_SECONDS: '1', LLAMA_PARALLEL: '8' });
    const generate = `${server.url}/api/generate`;
    const ollamaChat = `${server.url}/api/chat`;
    const openAiChat = `${server.url}/v1/chat/completions`;
    const completions = `${server.url}/v1/completions`;
    const arena = `${server.url}/api/stream_chat`;
    const prompt = { model: 'stories260K', prompt: 'Once upon a time', options: { num_predict: LONG } };
    const chat = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell me a story' }], options: { num_predict: LONG } };
    const openAi = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 4096 };
    // First, one of each kind holding the eight sequences (the Arena one with two instances).
    const running = [
      ollamaStream('ollama generate stream', generate, prompt),
      ollamaStream('ollama chat stream', ollamaChat, chat),
      openAiStream('openai chat stream', openAiChat, openAi),
      openAiStream('openai completions stream', completions, { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 4096 }),
      arenaStream('arena stream', arena, 2),
      whole('ollama generate', generate, prompt, false),
      whole('openai chat', openAiChat, openAi, true),
    ];
    await Promise.all(running.map((s) => s.firstToken()));
    await expect.poll(() => generationsRunning(server), { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(8);
    // Then thirteen more requests (fourteen generations) that wait for a sequence.
    const waiting = [
      ...[1, 2, 3].map((i) => ollamaStream(`ollama generate stream ${i}`, generate, prompt)),
      ...[1, 2, 3].map((i) => openAiStream(`openai chat stream ${i}`, openAiChat, openAi)),
      whole('ollama chat', ollamaChat, chat, false),
      whole('openai completions', completions, { model: 'stories260K', prompt: 'Once', max_tokens: 4096 }, true),
      whole('ollama generate 2', generate, prompt, false),
      arenaStream('arena stream 2', arena, 2),
      arenaStream('arena stream 3', arena, 1),
      ollamaStream('ollama chat stream 2', ollamaChat, chat),
      openAiStream('openai completions stream 2', completions, { model: 'stories260K', prompt: 'Once', max_tokens: 4096 }),
    ];
    const all = [...running, ...waiting];
    expect(all).toHaveLength(20);
    await expect.poll(() => generationsRunning(server), { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(22);
    const exit = server.stop('SIGTERM');
    const outcomes = await Promise.all(all.map((s) => s.outcome));
    expect(await exit).toBe(0);
    expectCleanExit(server);
    // The generations that held a sequence at the cut were long; each ended with its format's cut.
    expect(outcomes.slice(0, running.length)).toEqual(running.map(() => 'cut'));
    const cut = outcomes.filter((o) => o === 'cut').length;

    const again = await start({ DATA_DIR: dataDir });
    const summary = await usage(again);
    expect(summary.totals.requests).toBe(20);
    expect(statusCount(summary, 499)).toBe(cut);
  }, 180_000);

  it('does not wait for a connection a client opened and never sent a request on', async () => {
    const server = await start({ DATA_DIR: tempDir(), SHUTDOWN_GRACE_SECONDS: '1' });
    // HTTP clients open spare connections ahead of need (and after aborting a stream): the close
    // must not wait for them until the server's header timeout (a minute) ends them.
    const spare = net.connect(server.port, '127.0.0.1');
    await once(spare, 'connect');
    const closedByServer = once(spare, 'close');
    expect(await server.stop('SIGTERM')).toBe(0);
    await closedByServer;
    expectCleanExit(server);
  }, 30_000);

  it('cuts OpenAI streams passed through to an OpenAI-compatible server the same way', async () => {
    const slow = await startMockUpstream({ models: ['slow'], tokenDelayMs: 20, tokens: Array.from({ length: 5_000 }, (_, i) => ` w${i}`) });
    try {
      const dataDir = tempDir();
      const server = await start({ DATA_DIR: dataDir, SHUTDOWN_GRACE_SECONDS: '1', OPENAI_BACKENDS: `${slow.url}/v1` });
      await expect.poll(async () => (await fetch(`${server.url}/v1/models/slow`, { headers: admin })).status, { timeout: 30_000 }).toBe(200);
      const streams = [
        openAiStream('passed-through chat stream', `${server.url}/v1/chat/completions`, { model: 'slow', messages: [{ role: 'user', content: 'Once' }] }),
        openAiStream('passed-through completions stream', `${server.url}/v1/completions`, { model: 'slow', prompt: 'Once' }),
      ];
      await Promise.all(streams.map((s) => s.firstToken()));
      const exit = server.stop('SIGTERM');
      expect(await Promise.all(streams.map((s) => s.outcome))).toEqual(['cut', 'cut']);
      expect(await exit).toBe(0);
      expectCleanExit(server);
      const again = await start({ DATA_DIR: dataDir });
      // Both cut streams are recorded as cut (the model lookups before them are rows of their own).
      expect(statusCount(await usage(again), 499)).toBe(2);
    } finally {
      await slow.close();
    }
  }, 120_000);
});

describe.each(STORES)('kill -9 on $store', ({ setup }) => {
  let cleanup: () => Promise<void> = async () => undefined;
  const servers: SpawnedServer[] = [];
  afterAll(async () => {
    await stopAll(servers);
    await cleanup();
  });

  it('loses no usage of a request that ended a second before', async () => {
    const store = await setup();
    cleanup = store.cleanup;
    const env = { ...store.env, DATA_DIR: tempDir(), WEB_CHAT_TOKEN: ADMIN_TOKEN };
    const server = await spawnServer(env);
    servers.push(server);
    const requests = [1, 2, 3].flatMap(() => [
      whole('ollama generate', `${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', options: { num_predict: 3 } }, false),
      openAiStream('openai chat stream', `${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], max_tokens: 3 }),
      arenaStream('arena stream', `${server.url}/api/stream_chat`, 1, 3),
    ]);
    expect(await Promise.all(requests.map((r) => r.outcome))).toEqual(requests.map(() => 'complete'));
    const answered = Date.now();
    // The promised bound: a finished request's row is written within one second.
    await expect.poll(() => Date.now() - answered, { timeout: 5_000, interval: 50 }).toBeGreaterThanOrEqual(1_000);
    expect(await server.stop('SIGKILL')).toBeNull();

    const again = await spawnServer(env);
    servers.push(again);
    const summary = await usage(again);
    expect(summary.totals.requests).toBe(requests.length);
    expect(statusCount(summary, 200)).toBe(requests.length);
  }, 120_000);
});
