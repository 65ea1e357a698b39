import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declareRouteAccess, withAccess } from '../../src/access/route-access.js';
import { postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { rawRequest } from '../support/raw-http.js';

/**
 * The access level comes from the route the router matched, not from how the request spelled its
 * path: the spellings that used to get past the token, the allow-list, the rate limit and usage are
 * refused or counted like the plain path. Loading and unloading models is the admin's (or a key's
 * with the `manage` scope).
 */

const ADMIN_TOKEN = 'bypass-admin-token';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const generate = JSON.stringify({ model: 'stories260K', prompt: 'Once', stream: false, options: { num_predict: 3 } });

describe('odd spellings of a path on a locked server', () => {
  let server: RunningServer;
  const send = (method: string, target: string, headers: Record<string, string> = {}, body?: string) =>
    rawRequest(server.url, { method, target, headers, body });

  beforeAll(async () => {
    server = await startServer({ WEB_CHAT_TOKEN: ADMIN_TOKEN });
  });
  afterAll(() => server.close());

  async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const response = await postJson(`${server.url}/api/admin/keys`, body, admin);
    expect(response.status).toBe(201);
    return (await response.json()) as { id: string; key: string };
  }

  it('refuses every spelling that used to get past the token', async () => {
    const cases: [string, string, string?][] = [
      ['POST', '/%61pi/generate', generate],
      ['POST', '/%761/chat/completions', JSON.stringify({ model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], max_tokens: 3 })],
      ['GET', '/a%70i/ps'],
      ['GET', '/%61pi/runs'],
      ['POST', '/%61pi/models/stories260K/unload', '{}'],
      ['GET', 'http://x/api/ps'],
      ['GET', 'HTTP://x/%61pi/tags'],
    ];
    for (const [method, target, body] of cases) {
      const refused = await send(method, target, {}, body);
      expect(refused.status, `${method} ${target}`).toBe(401);
      // The same spelling with the token reaches the route: the refusal was the route's level.
      const allowed = await send(method, target, admin, body);
      expect(allowed.status, `${method} ${target} with the token`).toBe(200);
    }
    const openAi = await send('POST', '/%761/chat/completions', {}, '{}');
    expect(JSON.parse(openAi.body)).toEqual({ error: { message: 'Missing or invalid Authorization header', type: 'authentication_error', code: 'missing_api_key' } });
  });

  it('decides authentication before telling that a path does not exist', async () => {
    const { key } = await createKey({ name: 'prober' });
    for (const target of ['/nope', '/api//ps', '/api/ps/', '/x/../api/ps', '/API/ps', '/api%2Fps', '/v1/nope']) {
      expect((await send('GET', target)).status, target).toBe(401);
      expect((await send('GET', target, bearer('wrong'))).status, target).toBe(401);
      expect((await send('GET', target, bearer(key))).status, target).toBe(404);
      expect((await send('GET', target, admin)).status, target).toBe(404);
    }
    // An unknown /v1 path answers in OpenAI's format, decided by the router, however it is spelled.
    expect(JSON.parse((await send('GET', '/%761/nope', admin)).body)).toEqual({ error: { message: 'Resource not found', type: 'invalid_request_error', code: 'not_found' } });
  });

  it('applies the allow-list under every spelling', async () => {
    const { key } = await createKey({ name: 'elsewhere', models: ['some-other-model'] });
    for (const target of ['/api/generate', '/%61pi/generate', 'http://x/api/generate', '/ap%69/generate']) {
      const response = await send('POST', target, bearer(key), generate);
      expect(response.status, target).toBe(403);
      expect(JSON.parse(response.body), target).toEqual({ error: "This API key is not allowed to use model 'stories260K'" });
    }
    const v1 = await send('POST', '/%761/chat/completions', bearer(key), JSON.stringify({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }] }));
    expect(v1.status).toBe(403);
    expect(JSON.parse(v1.body).error.code).toBe('model_not_allowed');
  });

  it('counts every spelling against the rate limit and in the usage', async () => {
    const { id, key } = await createKey({ name: 'limited', rpm: 3 });
    const targets = ['/%61pi/tags', 'http://x/api/tags', '/a%70i/tags', '/api/tags'];
    const statuses = [];
    for (const target of targets) statuses.push((await send('GET', target, bearer(key))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const usage = async () => {
      const keys = ((await (await fetch(`${server.url}/api/admin/keys`, { headers: admin })).json()) as { keys: { id: string; usage: { requests: number } }[] }).keys;
      return keys.find((k) => k.id === id)?.usage.requests;
    };
    // Every request is in the usage, whatever its spelling: the three answered and the one refused.
    await expect.poll(usage, { timeout: 10_000 }).toBe(4);
  });
});

describe('model management', () => {
  let server: RunningServer;
  let plain: { id: string; key: string };
  let manager: { id: string; key: string };

  beforeAll(async () => {
    server = await startServer({ WEB_CHAT_TOKEN: ADMIN_TOKEN });
    const create = async (body: Record<string, unknown>) => (await (await postJson(`${server.url}/api/admin/keys`, body, admin)).json()) as { id: string; key: string };
    plain = await create({ name: 'user' });
    manager = await create({ name: 'operator', scopes: ['manage'] });
  });
  afterAll(() => server.close());

  const loaded = async () => {
    const ps = (await (await fetch(`${server.url}/api/ps`, { headers: admin })).json()) as { models: { name: string; expires_at: string }[] };
    return ps.models.find((m) => m.name === TEST_MODEL);
  };

  it('lets only the admin and keys with the manage scope load and unload', async () => {
    for (const action of ['load', 'unload']) {
      const refused = await postJson(`${server.url}/api/models/stories260K/${action}`, {}, bearer(plain.key));
      expect(refused.status, action).toBe(403);
      expect(await refused.json()).toEqual({ error: 'Loading and unloading models needs the admin token or an API key with the manage scope' });
      expect((await postJson(`${server.url}/api/models/stories260K/${action}`, {}, bearer(manager.key))).status, action).toBe(200);
      expect((await postJson(`${server.url}/api/models/stories260K/${action}`, {}, admin)).status, action).toBe(200);
    }
    // The scope opens model management, not the admin routes.
    expect((await fetch(`${server.url}/api/admin/keys`, { headers: bearer(manager.key) })).status).toBe(403);
  });

  it('refuses a key’s explicit unload (keep_alive 0) and ignores its keep_alive on generations', async () => {
    expect((await postJson(`${server.url}/api/models/stories260K/load`, {}, admin)).status).toBe(200);
    const unload = await postJson(`${server.url}/api/generate`, { model: 'stories260K', keep_alive: 0, stream: false }, bearer(plain.key));
    expect(unload.status).toBe(403);
    const chatUnload = await postJson(`${server.url}/api/chat`, { model: 'stories260K', messages: [], keep_alive: 0, stream: false }, bearer(plain.key));
    expect(chatUnload.status).toBe(403);
    const answered = await postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once', keep_alive: 0, stream: false, options: { num_predict: 3 } }, bearer(plain.key));
    expect(answered.status).toBe(200);
    // Still loaded, for the server's default keep-alive (minutes), not unloaded after that answer.
    const after = await loaded();
    expect(after).toBeDefined();
    expect(Date.parse(after!.expires_at) - Date.now()).toBeGreaterThan(60_000);
    // A key with the scope may unload that way, as Ollama clients do.
    const managed = await postJson(`${server.url}/api/generate`, { model: 'stories260K', keep_alive: 0, stream: false }, bearer(manager.key));
    expect(await managed.json()).toMatchObject({ done: true, done_reason: 'unload' });
    await expect.poll(loaded).toBeUndefined();
  });

  it('gives and takes the scope through the admin API, effective at once', async () => {
    const patch = (id: string, body: unknown) =>
      fetch(`${server.url}/api/admin/keys/${id}`, { method: 'PATCH', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const given = await patch(plain.id, { scopes: ['manage'] });
    expect(given.status).toBe(200);
    expect(await given.json()).toMatchObject({ id: plain.id, scopes: ['manage'], status: 'active' });
    expect((await postJson(`${server.url}/api/models/stories260K/unload`, {}, bearer(plain.key))).status).toBe(200);
    expect((await patch(plain.id, { scopes: [] })).status).toBe(200);
    expect((await postJson(`${server.url}/api/models/stories260K/unload`, {}, bearer(plain.key))).status).toBe(403);

    const listed = ((await (await fetch(`${server.url}/api/admin/keys`, { headers: admin })).json()) as { keys: { id: string; scopes: string[] }[] }).keys;
    expect(listed.find((k) => k.id === manager.id)?.scopes).toEqual(['manage']);
    expect(listed.find((k) => k.id === plain.id)?.scopes).toEqual([]);

    for (const body of [{ scopes: ['root'] }, { scopes: 'manage' }, {}, { scopes: ['manage'], name: 'x' }]) {
      expect((await patch(plain.id, body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await postJson(`${server.url}/api/admin/keys`, { name: 'bad', scopes: ['everything'] }, admin)).status).toBe(400);
    expect((await patch('no-such-key', { scopes: [] })).status).toBe(404);
    expect((await fetch(`${server.url}/api/admin/keys/${plain.id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    expect((await patch(plain.id, { scopes: ['manage'] })).status).toBe(409);
  });
});

describe('route declarations', () => {
  it('stops the start of a server with a route that declares no access level', async () => {
    const app = Fastify();
    declareRouteAccess(app);
    app.get('/declared', { config: { access: 'public' } }, async () => 'ok');
    const start = async () => {
      await app.register(async (plugin) => {
        plugin.post('/undeclared', async () => 'ok');
      });
      await app.ready();
    };
    await expect(start()).rejects.toThrow('Route POST /undeclared declares no access level');
  });

  it('gives the routes of a plugin registered through withAccess that level, HEAD twins included', async () => {
    const app = Fastify();
    const routes = declareRouteAccess(app);
    await app.register(withAccess('public', async (plugin) => void plugin.get('/from-a-plugin', async () => 'ok')));
    await app.ready();
    expect(routes).toEqual([
      { method: 'GET', url: '/from-a-plugin', access: 'public' },
      { method: 'HEAD', url: '/from-a-plugin', access: 'public' },
    ]);
    await app.close();
  });
});
