import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, type RunningServer } from '../support/server.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';
import { createPgDatabase, type TestDatabase } from '../support/stores.js';

/**
 * Redis away is a degraded state, not a dead server: two replicas (one PostgreSQL, a Redis of the
 * test's own) start while it is down, say so in the log and in both health routes, limit each key on
 * their own meanwhile, and recover by themselves when it comes up; the same when it is lost while
 * they serve.
 */

const ADMIN_TOKEN = 'admin-token-for-redis-outages';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const PREFIX = `outage-${process.pid}:`;

interface Health {
  status: string;
  service?: string;
  models_available?: number;
  degraded?: { component: string; reason: string }[];
}

describe('Redis away and back', () => {
  let redis: OwnRedis;
  let database: TestDatabase;
  let a: RunningServer;
  let b: RunningServer;
  let logOfA = '';

  beforeAll(async () => {
    redis = await ownRedis(); // not started: the replicas start while it is down
    database = await createPgDatabase();
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: PREFIX, WEB_CHAT_TOKEN: ADMIN_TOKEN };
    const log = new PassThrough();
    log.on('data', (chunk) => (logOfA += chunk));
    a = await startServer({ ...env, LOG_LEVEL: 'info' }, [], log); // info: the recovery line
    b = await startServer(env);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.kill();
    await database?.drop();
  });

  const health = async (server: RunningServer, path = '/api/health'): Promise<Health> => {
    const response = await fetch(`${server.url}${path}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Health;
  };

  async function createKey(rpm: number): Promise<string> {
    const response = await postJson(`${a.url}/api/admin/keys`, { name: `rpm-${rpm}`, rpm }, admin);
    expect(response.status).toBe(201);
    return ((await response.json()) as { key: string }).key;
  }

  /** Statuses of `GET /api/models` with the key, one request at a time, on the servers in turn. */
  async function statuses(key: string, servers: RunningServer[]): Promise<number[]> {
    const seen: number[] = [];
    for (const server of servers) {
      const response = await fetch(`${server.url}/api/models`, { headers: bearer(key) });
      await response.arrayBuffer();
      seen.push(response.status);
    }
    return seen;
  }

  /** How many replicas are subscribed to the key-change channel, as Redis itself counts them. */
  async function keySubscribers(): Promise<number> {
    const client = new Redis(redis.url);
    try {
      const [, count] = (await client.pubsub('NUMSUB', `${PREFIX}keys`)) as [string, number];
      return Number(count);
    } finally {
      await client.quit();
    }
  }

  async function expectLocalLimits(): Promise<void> {
    const key = await createKey(2);
    // Each replica counts on its own: two pass on each, the third on each is refused.
    expect(await statuses(key, [a, a, a])).toEqual([200, 200, 429]);
    expect(await statuses(key, [b, b, b])).toEqual([200, 200, 429]);
  }

  async function expectRecovered(): Promise<void> {
    for (const server of [a, b]) {
      await expect.poll(async () => (await health(server)).status, { timeout: 20_000, interval: 100 }).toBe('healthy');
      expect(await health(server)).toEqual({ status: 'healthy', service: 'ollama-arena', models_available: expect.any(Number) });
      expect(await health(server, '/health')).toEqual({ status: 'healthy' });
    }
    // Both replicas listen for shared events again, and one limit holds over both.
    // (Healthy means both connections are up; the subscriptions follow in their own round trip.)
    await expect.poll(keySubscribers, { timeout: 10_000, interval: 50 }).toBe(2);
    const key = await createKey(3);
    expect(await statuses(key, [a, b, a, b, a])).toEqual([200, 200, 200, 429, 429]);
  }

  it('starts without Redis, and says so once in the log and in both health routes', async () => {
    for (const server of [a, b]) {
      const body = await health(server);
      expect(body).toMatchObject({ status: 'degraded', service: 'ollama-arena', models_available: expect.any(Number) });
      expect(body.degraded).toEqual([{ component: 'redis', reason: expect.stringContaining(`Redis at 127.0.0.1:${redis.port} is unreachable`) }]);
      expect(body.degraded![0]!.reason).toContain('rate limits are per replica');
      const short = await health(server, '/health');
      expect(short).toEqual({ status: 'degraded', degraded: body.degraded });
    }
    // ioredis has retried several times by now; the outage is still one line.
    const lines = logOfA.split('\n').filter((line) => line.includes('is unreachable'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, redis: `127.0.0.1:${redis.port}` });
  });

  it('limits each key per replica while Redis is away', async () => {
    await expectLocalLimits();
  });

  it('recovers by itself once Redis is up: healthy, events subscribed, limits shared', async () => {
    await redis.start();
    await expectRecovered();
    expect(logOfA).toContain('Redis is back');
  }, 60_000);

  it('goes degraded when Redis is lost while serving, limits locally, and recovers when it returns', async () => {
    await redis.kill();
    for (const server of [a, b]) {
      await expect.poll(async () => (await health(server)).status, { timeout: 10_000, interval: 50 }).toBe('degraded');
      expect((await health(server)).degraded).toEqual([{ component: 'redis', reason: expect.stringContaining('is unreachable') }]);
    }
    await expectLocalLimits();
    // Restarted empty (no persistence), as a Redis without a disk comes back.
    await redis.start();
    await expectRecovered();
  }, 60_000);
});
