import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, SHARED_MODELS, spawnServer, tempDir, type SpawnedServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';
import { createPgDatabase, testRedis, type TestDatabase } from '../support/stores.js';

/**
 * two server processes sharing one PostgreSQL and one Redis behave as one service:
 * keys, revocations, rate limits, usage, catalog changes and pull jobs are the same on both.
 */

const ADMIN_TOKEN = 'admin-token-for-replicas';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('two replicas on PostgreSQL and Redis', () => {
  let a: SpawnedServer;
  let b: SpawnedServer;
  let database: TestDatabase;
  let host: FileServer;
  const redis = testRedis();

  beforeAll(async () => {
    database = await createPgDatabase();
    // Each replica has its own models directory, so that a pull never writes into ../shared/models.
    const env = (modelsDir: string) => ({
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      WEB_CHAT_TOKEN: ADMIN_TOKEN,
      MODELS_DIR: modelsDir,
      // The file host below is on loopback, which pulls refuse unless allowed.
      PULL_ALLOW_HOSTS: '127.0.0.1',
    });
    // Started together: migrations and the shared HMAC secret must cope with the race.
    [a, b] = await Promise.all([spawnServer(env(tempDir())), spawnServer(env(tempDir()))]);
    host = await serveFile(path.join(SHARED_MODELS, 'stories260K.gguf'), { chunkSize: 64 * 1024, delayMs: 30 });
  }, 90_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), host?.close()]);
    await database?.drop();
    await redis.cleanup();
  });

  async function createKey(on: SpawnedServer, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const response = await postJson(`${on.url}/api/admin/keys`, body, admin);
    expect(response.status).toBe(201);
    return (await response.json()) as { id: string; key: string };
  }

  it('accepts a key created on one replica on the other at once', async () => {
    const { key } = await createKey(a, { name: 'everywhere' });
    expect((await fetch(`${b.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
  });

  it('shares the rate limit: exactly 60 of 100 concurrent requests over both', async () => {
    const { key } = await createKey(b, { name: 'shared-limit' });
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => fetch(`${(i % 2 === 0 ? a : b).url}/api/models`, { headers: bearer(key) })),
    );
    expect(responses.filter((r) => r.status === 200).length).toBe(60);
    expect(responses.filter((r) => r.status === 429).length).toBe(40);
    // Both replicas served some of the 60 and refused some of the 40.
    expect(responses.filter((r, i) => i % 2 === 0 && r.status === 200).length).toBeGreaterThan(0);
    expect(responses.filter((r, i) => i % 2 === 1 && r.status === 200).length).toBeGreaterThan(0);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
  });

  it('refuses a revoked key at once on both replicas', async () => {
    const { id, key } = await createKey(a, { name: 'doomed' });
    // Both replicas have verified (and cached) it.
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    expect((await fetch(`${b.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    expect((await fetch(`${a.url}/api/admin/keys/${id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    const onB = await fetch(`${b.url}/v1/models`, { headers: bearer(key) });
    expect(onB.status).toBe(401);
    expect(await onB.json()).toEqual({ error: { message: 'Invalid API key provided', type: 'authentication_error', code: 'invalid_api_key' } });
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(401);
  });

  it('refuses the old secret of a rotated key at once on the other replica', async () => {
    const { id, key } = await createKey(b, { name: 'rotated' });
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    const rotated = (await (await postJson(`${b.url}/api/admin/keys/${id}/rotate`, {}, admin)).json()) as { key: string };
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(401);
    expect((await fetch(`${a.url}/api/models`, { headers: bearer(rotated.key) })).status).toBe(200);
  });

  it('lands the usage of both replicas in one place', async () => {
    const { id, key } = await createKey(a, { name: 'usage', tier: 'premium' });
    for (let i = 0; i < 7; i++) expect((await fetch(`${a.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await fetch(`${b.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    // At once, not after the replicas' next batch: an admin's read has every replica write its buffer first.
    const started = Date.now();
    const usage = (await (await fetch(`${b.url}/api/admin/usage?key_id=${id}`, { headers: admin })).json()) as { totals: { requests: number } };
    expect(usage.totals.requests).toBe(12);
    expect(Date.now() - started).toBeLessThan(1_000); // the acknowledgements came; no waiting out the timeout
    const keys = ((await (await fetch(`${a.url}/api/admin/keys`, { headers: admin })).json()) as { keys: { id: string; usage: { requests: number } }[] }).keys;
    expect(keys.find((k) => k.id === id)!.usage.requests).toBe(12);
  });

  it('applies a catalog change made on one replica on the other', async () => {
    const put = await fetch(`${a.url}/api/admin/models/some-model:1b`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'shared', is_active: false }),
    });
    expect(put.status).toBe(200);
    await expect
      .poll(async () => {
        const response = await postJson(`${b.url}/api/chat`, { history: [{ role: 'user', content: 'Hi' }], models: ['some-model:1b'] }, admin);
        return response.status;
      }, { timeout: 5_000 })
      .toBe(403);
  });

  it('shows a pull job started on one replica on the other', async () => {
    const started = await postJson(`${a.url}/api/pull_model`, { model: `${host.url}/replica-copy.gguf` }, admin);
    expect(started.status).toBe(200);
    const { job_id: jobId } = (await started.json()) as { job_id: string };
    const jobOn = async (server: SpawnedServer) => {
      const { pulls } = (await (await fetch(`${server.url}/api/pulls`, { headers: admin })).json()) as { pulls: { id: string; state: string; model: string }[] };
      return pulls.find((job) => job.id === jobId);
    };
    await expect.poll(() => jobOn(b), { timeout: 5_000 }).toMatchObject({ id: jobId, model: 'replica-copy:latest' });
    // It follows the job to its end.
    await expect.poll(async () => (await jobOn(b))?.state, { timeout: 20_000 }).toBe('success');
    expect((await (await fetch(`${b.url}/api/pulls/${jobId}`, { headers: admin })).json()).state).toBe('success');
  });
});
