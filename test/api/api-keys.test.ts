import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, tempDir, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';

/** API keys created, listed, used, refused, revoked, rotated, kept across restarts. */

const ADMIN_TOKEN = 'admin-token-for-key-tests';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const tinyChat = { history: [{ role: 'user', content: 'Hi' }], model_instances: [{ model: 'stories260K', num_predict: 3 }], stream: false };

async function createKey(server: RunningServer, body: Record<string, unknown>) {
  const response = await postJson(`${server.url}/api/admin/keys`, body, admin);
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; key: string; prefix: string; rpm: number; [k: string]: unknown };
}

async function listKeys(server: RunningServer) {
  const response = await fetch(`${server.url}/api/admin/keys`, { headers: admin });
  expect(response.status).toBe(200);
  return ((await response.json()) as { keys: Record<string, unknown>[] }).keys;
}

describe('without WEB_CHAT_TOKEN', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  it('refuses to create a key that nobody could govern, and stays open', async () => {
    const response = await postJson(`${server.url}/api/admin/keys`, { name: 'x' });
    expect(response.status).toBe(403);
    expect((await response.json()).error).toMatch(/WEB_CHAT_TOKEN/);
    expect((await fetch(`${server.url}/api/models`)).status).toBe(200);
    expect(((await (await fetch(`${server.url}/api/admin/keys`)).json()) as { keys: unknown[] }).keys).toEqual([]);
  });
});

describe.each(STORES)('API keys on $store', ({ setup }) => {
  let server: RunningServer;
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  const dataDir = tempDir();

  beforeAll(async () => {
    ({ env, cleanup } = await setup());
    server = await startServer({ ...env, WEB_CHAT_TOKEN: ADMIN_TOKEN, DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  it('creates a key, answering its secret once', async () => {
    const created = await createKey(server, { name: 'ci', tier: 'premium', tpm: 5000 });
    expect(created.key).toMatch(/^oa-[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ name: 'ci', tier: 'premium', rpm: 300, tpm: 5000, models: null, expires_at: null, status: 'active' });
    expect(created.key.startsWith(created.prefix)).toBe(true);
    const listed = await listKeys(server);
    const entry = listed.find((k) => k.id === created.id)!;
    expect(entry).toMatchObject({ name: 'ci', prefix: created.prefix, tier: 'premium', rpm: 300, status: 'active', revoked_at: null });
    expect(entry).not.toHaveProperty('key');
    expect(JSON.stringify(listed)).not.toContain(created.key);
  });

  it('rejects bad key definitions with a 400 and creates nothing', async () => {
    const before = (await listKeys(server)).length;
    for (const body of [
      {},
      { name: '' },
      { name: 'x', tier: 'gold' },
      { name: 'x', rpm: 0 },
      { name: 'x', rpm: 1.5 },
      { name: 'x', tpm: 'many' },
      { name: 'x', models: [] },
      { name: 'x', models: [3] },
      { name: 'x', expires_at: 'tomorrow' },
      { name: 'x', expires_at: '2000-01-01T00:00:00Z' },
    ]) {
      const response = await postJson(`${server.url}/api/admin/keys`, body, admin);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(typeof (await response.json()).error).toBe('string');
    }
    expect((await listKeys(server)).length).toBe(before);
  });

  it('opens the model routes, not the admin routes', async () => {
    const { key } = await createKey(server, { name: 'user' });
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    const chat = await postJson(`${server.url}/api/chat`, tinyChat, bearer(key));
    expect(chat.status).toBe(200);
    expect(typeof (await chat.json()).response).toBe('string');
    const adminRoute = await fetch(`${server.url}/api/admin/keys`, { headers: bearer(key) });
    expect(adminRoute.status).toBe(403);
    expect(await adminRoute.json()).toEqual({ error: 'This route needs the admin token' });
    const v1Admin = await fetch(`${server.url}/api/admin/usage`, { headers: bearer(key) });
    expect(v1Admin.status).toBe(403);
  });

  it('refuses unknown keys with 401 in each surface format', async () => {
    const unknown = 'oa-' + 'A'.repeat(43);
    const api = await fetch(`${server.url}/api/models`, { headers: bearer(unknown) });
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ error: 'Invalid API key provided' });
    const v1 = await fetch(`${server.url}/v1/models`, { headers: bearer(unknown) });
    expect(v1.status).toBe(401);
    expect(await v1.json()).toEqual({ error: { message: 'Invalid API key provided', type: 'authentication_error', code: 'invalid_api_key' } });
    // A token that is not shaped like a key is a wrong admin token: the Arena API's message.
    const wrongToken = await fetch(`${server.url}/api/models`, { headers: bearer('not-the-token') });
    expect(await wrongToken.json()).toEqual({ error: 'Invalid authorization token' });
  });

  it('enforces the model allow-list on every way a request names a model', async () => {
    const { key } = await createKey(server, { name: 'narrow', models: ['some-other-model'] });
    const legacy = await postJson(`${server.url}/api/chat`, { history: [{ role: 'user', content: 'Hi' }], models: ['stories260K'] }, bearer(key));
    expect(legacy.status).toBe(403);
    expect((await legacy.json()).error).toMatch(/not allowed to use model 'stories260K'/);
    const instances = await postJson(`${server.url}/api/stream_chat`, tinyChat, bearer(key));
    expect(instances.status).toBe(403);
    const single = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'x' }, bearer(key));
    expect(single.status).toBe(403);
    const v1 = await postJson(`${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [] }, bearer(key));
    expect(v1.status).toBe(403);
    expect((await v1.json()).error).toMatchObject({ type: 'permission_error', code: 'model_not_allowed' });
    const details = await fetch(`${server.url}/api/models/stories260K`, { headers: bearer(key) });
    expect(details.status).toBe(403);
    // Ollama's legacy `name` in place of `model`, and a battle's pool, are checked the same way.
    for (const [route, body] of [
      ['/api/generate', { name: 'stories260K', prompt: 'x', stream: false }],
      ['/api/chat', { name: 'stories260K', messages: [{ role: 'user', content: 'x' }], stream: false }],
      ['/api/embed', { name: 'stories260K', input: 'x' }],
      ['/api/embeddings', { name: 'stories260K', prompt: 'x' }],
      ['/api/show', { name: 'stories260K' }],
      ['/api/battles', { history: [{ role: 'user', content: 'x' }], pool: ['stories260K', { model: 'stories260K', temperature: 1 }] }],
    ] as const) {
      const response = await postJson(`${server.url}${route}`, body, bearer(key));
      expect(response.status, route).toBe(403);
      expect((await response.json()).error, route).toMatch(/not allowed to use model 'stories260K'/);
    }
    // Its list shows only what it may use.
    expect(await (await fetch(`${server.url}/api/models`, { headers: bearer(key) })).json()).toEqual({ models: [] });

    const { key: allowed } = await createKey(server, { name: 'exact', models: ['stories260K'] });
    expect((await postJson(`${server.url}/api/chat`, tinyChat, bearer(allowed))).status).toBe(200);
    expect(await (await fetch(`${server.url}/api/models`, { headers: bearer(allowed) })).json()).toEqual({ models: ['stories260K:latest'] });
  });

  it('revokes a key at once', async () => {
    const { id, key } = await createKey(server, { name: 'doomed' });
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    const revoked = await fetch(`${server.url}/api/admin/keys/${id}`, { method: 'DELETE', headers: admin });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ id, status: 'revoked' });
    const refused = await fetch(`${server.url}/api/models`, { headers: bearer(key) });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'Invalid API key provided' });
    expect((await listKeys(server)).find((k) => k.id === id)).toMatchObject({ status: 'revoked', revoked_at: expect.any(String) });
    expect((await fetch(`${server.url}/api/admin/keys/nope`, { method: 'DELETE', headers: admin })).status).toBe(404);
  });

  it('judges every request on one keep-alive connection by its own token: several clients, a revocation', async () => {
    // A proxy in front of the gateway carries several clients' requests on one connection.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (path: string, token: string) =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const request = http.request(`${server.url}${path}`, { agent, headers: bearer(token) }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode!, reused: request.reusedSocket }));
        });
        request.on('error', reject);
        request.end();
      });
    try {
      const one = await createKey(server, { name: 'conn-one' });
      const two = await createKey(server, { name: 'conn-two' });
      const changed = one.key.slice(0, -1) + (one.key.endsWith('a') ? 'b' : 'a');
      const answers = [
        await ask('/api/models', one.key),
        await ask('/api/models', changed),
        await ask('/api/admin/keys', one.key),
        await ask('/api/admin/keys', ADMIN_TOKEN),
        await ask('/api/models', two.key),
        await ask('/api/models', one.key),
      ];
      expect(answers.map((a) => a.status)).toEqual([200, 401, 403, 200, 200, 200]);
      expect(answers.slice(1).every((a) => a.reused)).toBe(true);
      expect((await fetch(`${server.url}/api/admin/keys/${one.id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
      expect(await ask('/api/models', one.key)).toEqual({ status: 401, reused: true });
      expect(await ask('/api/models', two.key)).toEqual({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('rotates a secret: same key, new secret, old one refused', async () => {
    const created = await createKey(server, { name: 'rotating', rpm: 7 });
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(created.key) })).status).toBe(200);
    const response = await postJson(`${server.url}/api/admin/keys/${created.id}/rotate`, {}, admin);
    expect(response.status).toBe(200);
    const rotated = (await response.json()) as { id: string; key: string; rpm: number };
    expect(rotated.id).toBe(created.id);
    expect(rotated.rpm).toBe(7);
    expect(rotated.key).not.toBe(created.key);
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(created.key) })).status).toBe(401);
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(rotated.key) })).status).toBe(200);
    await fetch(`${server.url}/api/admin/keys/${created.id}`, { method: 'DELETE', headers: admin });
    expect((await postJson(`${server.url}/api/admin/keys/${created.id}/rotate`, {}, admin)).status).toBe(409);
  });

  it('refuses a key once it has expired', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const { id, key } = await createKey(server, { name: 'brief', expires_at: expiresAt });
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    // Refused once its time has come, however late this machine gets to ask.
    await expect.poll(async () => (await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status, { timeout: 10_000, interval: 100 }).toBe(401);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    expect((await listKeys(server)).find((k) => k.id === id)).toMatchObject({ status: 'expired', expires_at: expiresAt });
  });

  it('records when a key was last used', async () => {
    const { id, key } = await createKey(server, { name: 'used' });
    expect((await listKeys(server)).find((k) => k.id === id)!.last_used_at).toBeNull();
    const before = Date.now();
    await fetch(`${server.url}/api/models`, { headers: bearer(key) });
    const lastUsed = (await listKeys(server)).find((k) => k.id === id)!.last_used_at as string;
    expect(Date.parse(lastUsed)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('keeps the hash key out of the database when API_KEY_SECRET is set', async () => {
    const secretDir = tempDir();
    const peppered = await startServer({ ...env, WEB_CHAT_TOKEN: ADMIN_TOKEN, DATA_DIR: secretDir, API_KEY_SECRET: 'pepper-for-tests-0123456789' });
    try {
      const { key } = await createKey(peppered, { name: 'peppered' });
      expect((await fetch(`${peppered.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
      // The same database under another hash key knows no such key.
      const other = await startServer({ ...env, WEB_CHAT_TOKEN: ADMIN_TOKEN, DATA_DIR: secretDir, API_KEY_SECRET: 'another-pepper-9876543210' });
      try {
        expect((await fetch(`${other.url}/api/models`, { headers: bearer(key) })).status).toBe(401);
      } finally {
        await other.close();
      }
    } finally {
      await peppered.close();
    }
  });

  it('keeps keys across a restart, secrets still valid', async () => {
    const { key } = await createKey(server, { name: 'durable' });
    await server.close();
    server = await startServer({ ...env, WEB_CHAT_TOKEN: ADMIN_TOKEN, DATA_DIR: dataDir });
    expect((await fetch(`${server.url}/api/models`, { headers: bearer(key) })).status).toBe(200);
    expect((await listKeys(server)).some((k) => k.name === 'durable')).toBe(true);
  });
});
