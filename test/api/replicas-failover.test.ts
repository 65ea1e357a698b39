import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OllamaBackend } from '../../src/providers/ollama/server.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { ndjsonLines, postJson, spawnServer, startServer, tempDir, TEST_MODEL, type RunningServer, type SpawnedServer } from '../support/server.js';

/**
 * One model served by several Ollama hosts is one model with replicas: least-busy routing, and
 * failover of every request that has not started streaming when a replica dies, fails or stalls.
 * The replicas are real instances of our own server (real model, real Ollama wire format); stand-ins
 * only play hosts that fail or stall, which a real server cannot be made to do on demand.
 */

const user = (content: string) => ({ role: 'user', content });

interface ChatOutcome {
  status: number;
  text: string;
  error?: string;
}

/** One seed-000 chat through the gateway, to its end; errors in the body count as failures. */
async function arenaChat(gateway: RunningServer, prompt: string): Promise<ChatOutcome> {
  const response = await postJson(`${gateway.url}/api/chat`, {
    history: [user(prompt)],
    model_instances: [{ id: 'a', model: 'stories260K', num_predict: 12, seed: 7 }],
  });
  // One instance answers with one result object (the Arena API), its `error` null when all went well.
  const body = (await response.json()) as { response?: string; error?: string | null };
  return { status: response.status, text: body.response ?? '', error: body.error ?? undefined };
}

async function replicaHealth(gateway: RunningServer): Promise<{ id: string; healthy: boolean }[]> {
  const response = await fetch(`${gateway.url}/api/models/${TEST_MODEL}`);
  return ((await response.json()) as { backends: { id: string; healthy: boolean }[] }).backends;
}

describe('two real replicas behind the gateway', () => {
  let first: RunningServer;
  let second: RunningServer;
  let gateway: RunningServer;

  beforeAll(async () => {
    first = await startServer();
    second = await startServer();
    // An empty models dir: the gateway's own engine serves nothing, the two upstreams are the replicas.
    gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OllamaBackend(first.url), new OllamaBackend(second.url)]);
  });
  afterAll(async () => {
    await gateway?.close();
    await first?.close();
    await second?.close();
  });

  it('lists the model once, with both replicas', async () => {
    const backends = await replicaHealth(gateway);
    expect(backends.map((b) => b.id).sort()).toEqual([`ollama:${first.url}`, `ollama:${second.url}`].sort());
    expect(backends.every((b) => b.healthy)).toBe(true);
  });

  it('spreads concurrent requests over both replicas (least busy first)', async () => {
    const before = [first.services.engine.stats.generated, second.services.engine.stats.generated];
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => arenaChat(gateway, `Story ${i}`)));
    expect(outcomes.every((o) => o.status === 200 && !o.error && o.text.length > 0)).toBe(true);
    const generated = [first.services.engine.stats.generated - before[0]!, second.services.engine.stats.generated - before[1]!];
    // Six at once over two idle replicas: each gets some (least busy), neither gets all.
    expect(generated[0]).toBeGreaterThan(0);
    expect(generated[1]).toBeGreaterThan(0);
  });

  it('alternates one-at-a-time requests over idle replicas', async () => {
    const before = [first.services.engine.stats.generated, second.services.engine.stats.generated];
    for (let i = 0; i < 4; i++) expect((await arenaChat(gateway, `Story ${i}`)).status).toBe(200);
    expect(first.services.engine.stats.generated).toBeGreaterThan(before[0]!);
    expect(second.services.engine.stats.generated).toBeGreaterThan(before[1]!);
  });

  it('loses no request that had not started streaming when a replica is stopped mid-test', async () => {
    const total = 40;
    let started = 0;
    const outcomes: Promise<ChatOutcome>[] = [];
    const stopped = (async () => {
      // Stop the first replica while requests are in flight and more keep coming.
      while (started < 12) await new Promise((resolve) => setTimeout(resolve, 5));
      await first.close();
    })();
    // Four at a time, so that some are running on the first replica when it goes.
    const lanes = Array.from({ length: 4 }, async (_, lane) => {
      while (started < total) {
        const n = started++;
        const outcome = arenaChat(gateway, `Tell me story number ${n} from lane ${lane}`);
        outcomes.push(outcome);
        await outcome;
      }
    });
    await Promise.all(lanes);
    await stopped;
    const results = await Promise.all(outcomes);
    expect(results).toHaveLength(total);
    const failed = results.filter((r) => r.status !== 200 || r.error || r.text.length === 0);
    expect(failed).toEqual([]);
    // The stopped replica is known to be down, the other one carries on.
    const health = await replicaHealth(gateway);
    expect(health.find((b) => b.id === `ollama:${first.url}`)?.healthy ?? false).toBe(false);
    const after = await arenaChat(gateway, 'One more story');
    expect(after.status).toBe(200);
    expect(after.text.length).toBeGreaterThan(0);
  });
});

describe('a replica process killed (SIGKILL) mid-test', () => {
  let first: SpawnedServer;
  let second: SpawnedServer;
  let gateway: RunningServer;

  beforeAll(async () => {
    [first, second] = await Promise.all([spawnServer(), spawnServer()]);
    gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [new OllamaBackend(first.url), new OllamaBackend(second.url)]);
  });
  afterAll(async () => {
    await gateway?.close();
    // The killed one has exited already (a signal, not an exit code, ended it).
    if (first && first.process.exitCode === null && first.process.signalCode === null) await first.stop('SIGKILL');
    await second?.stop();
  });

  /** A streamed comparison through the gateway: how many tokens arrived, and the error if it failed. */
  async function streamed(prompt: string): Promise<{ tokens: number; error?: string }> {
    const response = await postJson(`${gateway.url}/api/stream_chat`, {
      history: [user(prompt)],
      model_instances: [{ id: 'a', model: 'stories260K', num_predict: 40 }],
    });
    if (response.status !== 200) return { tokens: 0, error: `status ${response.status}` };
    let tokens = 0;
    for await (const line of ndjsonLines(response)) {
      if (line.error) return { tokens, error: String(line.error) };
      if (!line.done) tokens++;
    }
    return { tokens };
  }

  it('loses only requests that had already started streaming on the killed replica', async () => {
    const total = 40;
    let started = 0;
    const outcomes: Promise<{ tokens: number; error?: string }>[] = [];
    const killed = (async () => {
      while (started < 12) await new Promise((resolve) => setTimeout(resolve, 5));
      await first.stop('SIGKILL');
    })();
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        while (started < total) {
          const outcome = streamed(`Story ${started++} from lane ${lane}`);
          outcomes.push(outcome);
          await outcome;
        }
      }),
    );
    await killed;
    const results = await Promise.all(outcomes);
    expect(results).toHaveLength(total);
    const failed = results.filter((r) => r.error);
    // At most the four in flight on the killed replica can fail, and only if tokens had gone out.
    expect(failed.length).toBeLessThanOrEqual(4);
    expect(failed.filter((r) => r.tokens === 0)).toEqual([]);
    expect(results.filter((r) => !r.error).every((r) => r.tokens > 0)).toBe(true);
    expect(first.process.signalCode).toBe('SIGKILL');
    const health = await replicaHealth(gateway);
    expect(health.find((b) => b.id === `ollama:${first.url}`)?.healthy ?? false).toBe(false);
  });
});

describe('replicas that fail or stall', () => {
  let real: RunningServer;
  let failing: MockUpstream;
  let stalling: MockUpstream;
  let gateway: RunningServer;

  beforeAll(async () => {
    real = await startServer();
    failing = await startMockUpstream({ models: [TEST_MODEL], mode: 'fail' });
    stalling = await startMockUpstream({ models: [TEST_MODEL], mode: 'stall' });
    // The broken replicas come first: a fresh gateway's first request tries replicas in this order.
    gateway = await startServer({ MODELS_DIR: tempDir('gateway-models-') }, [
      new OllamaBackend(failing.url),
      new OllamaBackend(stalling.url, { responseTimeoutMs: 500 }),
      new OllamaBackend(real.url),
    ]);
  });
  afterAll(async () => {
    await gateway?.close();
    await real?.close();
    await failing?.close();
    await stalling?.close();
  });

  it('retries a request on the next replica when one answers 500 and another never answers', async () => {
    const response = await postJson(`${gateway.url}/api/stream_chat`, {
      history: [user('Once upon a time')],
      models: ['stories260K'],
    });
    expect(response.status).toBe(200);
    const lines: Record<string, unknown>[] = [];
    for await (const line of ndjsonLines(response)) lines.push(line);
    expect(lines.at(-1)).toMatchObject({ done: true, model: 'stories260K' }); // legacy lines carry the name as written
    expect(lines.at(-1)!.error).toBeUndefined();
    expect(lines.filter((l) => !l.done).map((l) => l.token).join('').length).toBeGreaterThan(0);
    // Both broken replicas were tried first, and both are now marked down.
    expect(failing.hits.get('/api/chat')).toBe(1);
    expect(stalling.hits.get('/api/chat')).toBe(1);
    const health = await replicaHealth(gateway);
    expect(health.filter((b) => b.healthy).map((b) => b.id)).toEqual([`ollama:${real.url}`]);
  });

  it('sends later requests straight to the healthy replica', async () => {
    const failingBefore = failing.hits.get('/api/chat') ?? 0;
    const stallingBefore = stalling.hits.get('/api/chat') ?? 0;
    const outcomes = await Promise.all([arenaChat(gateway, 'A'), arenaChat(gateway, 'B')]);
    expect(outcomes.every((o) => o.status === 200 && !o.error)).toBe(true);
    expect(failing.hits.get('/api/chat') ?? 0).toBe(failingBefore);
    expect(stalling.hits.get('/api/chat') ?? 0).toBe(stallingBefore);
  });

  it('takes a replica back once its health check passes', async () => {
    failing.setMode('ok');
    // The router probes down replicas every 5 s with GET /api/version.
    await expect
      .poll(async () => (await replicaHealth(gateway)).find((b) => b.id === `ollama:${failing.url}`)?.healthy, { timeout: 15_000, interval: 250 })
      .toBe(true);
  });
});
