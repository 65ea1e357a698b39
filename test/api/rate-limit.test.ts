import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, postJson, startServer, type RunningServer } from '../support/server.js';
import { STORES, testRedis } from '../support/stores.js';

/**
 * per-key limits per minute (tier, own rpm, tpm), the X-RateLimit headers with an
 * absolute reset, 429 with Retry-After in the surface's format, exact under concurrency; in memory and
 * in Redis. Counting uses `GET /api/models`: every route a key can call is limited, and this one is cheap.
 */

const ADMIN_TOKEN = 'admin-token-for-rate-limits';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const CASES = [
  { name: 'sqlite, limits in memory', store: STORES[0], redis: false },
  { name: 'postgres, limits in memory', store: STORES[1], redis: false },
  { name: 'postgres, limits in Redis', store: STORES[1], redis: true },
];

describe.each(CASES)('rate limits ($name)', ({ store, redis }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;
  const shared = testRedis();

  beforeAll(async () => {
    const setup = await store.setup();
    cleanup = setup.cleanup;
    const redisEnv: Record<string, string> = redis ? { REDIS_URL: shared.url, REDIS_PREFIX: shared.prefix } : {};
    server = await startServer({ ...setup.env, ...redisEnv, WEB_CHAT_TOKEN: ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
    await shared.cleanup();
  });

  async function createKey(body: Record<string, unknown>): Promise<string> {
    const response = await postJson(`${server.url}/api/admin/keys`, body, admin);
    expect(response.status).toBe(201);
    return ((await response.json()) as { key: string }).key;
  }

  it('lets exactly 60 of 100 concurrent requests through on a standard key', async () => {
    const key = await createKey({ name: 'standard' });
    const started = Math.floor(Date.now() / 1000);
    const responses = await Promise.all(Array.from({ length: 100 }, () => fetch(`${server.url}/api/models`, { headers: bearer(key) })));
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status === 429);
    expect(ok.length).toBe(60);
    expect(limited.length).toBe(40);

    for (const response of responses) {
      expect(response.headers.get('x-ratelimit-limit')).toBe('60');
      const reset = Number(response.headers.get('x-ratelimit-reset'));
      // Absolute Unix seconds, within the minute that started with this burst.
      expect(reset).toBeGreaterThanOrEqual(started);
      expect(reset).toBeLessThanOrEqual(started + 62);
    }
    const remaining = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 60 }, (_, i) => i));

    const refusal = limited[0]!;
    const retryAfter = Number(refusal.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refusal.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(await refusal.json()).toEqual({ error: 'Rate limit exceeded: 60 requests per minute for this API key' });

    // The OpenAI surface answers in its own error format.
    const v1 = await fetch(`${server.url}/v1/models`, { headers: bearer(key) });
    expect(v1.status).toBe(429);
    expect(await v1.json()).toEqual({
      error: { message: 'Rate limit exceeded: 60 requests per minute for this API key', type: 'rate_limit_error', code: 'rate_limit_exceeded' },
    });
    await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.arrayBuffer()));
  });

  it('gives premium keys 300 and honours a key its own rpm', async () => {
    const premium = await createKey({ name: 'premium', tier: 'premium' });
    const first = await fetch(`${server.url}/api/models`, { headers: bearer(premium) });
    expect(first.headers.get('x-ratelimit-limit')).toBe('300');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('299');

    const own = await createKey({ name: 'own', tier: 'premium', rpm: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await fetch(`${server.url}/api/models`, { headers: bearer(own) })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('refuses once the tokens per minute are spent', async () => {
    const key = await createKey({ name: 'tokens', tpm: 1 });
    const chat = await postJson(
      `${server.url}/api/chat`,
      { history: [{ role: 'user', content: 'Hi' }], model_instances: [{ model: 'stories260K', num_predict: 3 }], stream: false },
      bearer(key),
    );
    expect(chat.status).toBe(200);
    expect(chat.headers.get('x-ratelimit-limit-tokens')).toBe('1');
    const used = (await chat.json()) as { metrics: { tokens: number; prompt_tokens: number } };
    expect(used.metrics.tokens + used.metrics.prompt_tokens).toBeGreaterThan(1);
    // Tokens are charged when the answer ends; the next request of this key finds the budget spent.
    let refused: Response | undefined;
    for (let attempt = 0; attempt < 20 && !refused; attempt++) {
      const response = await fetch(`${server.url}/api/models`, { headers: bearer(key) });
      if (response.status === 429) refused = response;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused).toBeDefined();
    expect(refused!.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await refused!.json()).error).toBe('Rate limit exceeded: 1 tokens per minute for this API key');
  });

  it('does not limit the admin token', async () => {
    const responses = await Promise.all(Array.from({ length: 70 }, () => fetch(`${server.url}/api/models`, { headers: admin })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(responses[0]!.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('while Redis is down', () => {
  let redis: ChildProcess | undefined;
  let server: RunningServer | undefined;
  afterAll(async () => {
    redis?.kill('SIGKILL');
    await server?.close();
  });

  it('keeps limiting on each replica and still revokes', async () => {
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    await expect.poll(() => new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); }).on('error', () => resolve(false));
    }), { timeout: 5_000 }).toBe(true);
    server = await startServer({ REDIS_URL: url, REDIS_PREFIX: 'down:', WEB_CHAT_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'fatal' });
    const created = await postJson(`${server.url}/api/admin/keys`, { name: 'resilient', rpm: 3 }, admin);
    const { id, key } = (await created.json()) as { id: string; key: string };
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(200);

    const exited = new Promise((resolve) => redis!.once('exit', resolve));
    redis.kill('SIGKILL');
    await exited;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status);
    // The replica's own window starts afresh: three pass, the fourth is refused.
    expect(statuses).toEqual([200, 200, 200, 429]);

    expect((await fetch(`${server.url}/api/admin/keys/${id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(401);
  });
});
