import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';

/**
 * description, is_active and default parameters per model; an
 * inactive model is hidden from every list and refused on every surface; defaults fill what a request
 * leaves out; `GET /api/models?details=true` shows it all.
 */

const ADMIN_TOKEN = 'admin-token-for-catalog';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

function put(server: RunningServer, name: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}/api/admin/models/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe.each(STORES)('model catalog on $store', ({ setup }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const ready = await setup();
    cleanup = ready.cleanup;
    server = await startServer({ ...ready.env, WEB_CHAT_TOKEN: ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  const get = async (path: string) => {
    const response = await fetch(`${server.url}${path}`, { headers: admin });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const generate = (body: Record<string, unknown>) => postJson(`${server.url}/api/generate`, { model: 'stories260K', prompt: 'Once upon a time', stream: false, ...body }, admin);

  it('shows description and default parameters in the model details', async () => {
    const response = await put(server, 'stories260K', { description: 'Tiny stories for tests', parameters: { temperature: 0.5, top_k: 20, num_predict: 2 } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      name: 'stories260K:latest',
      description: 'Tiny stories for tests',
      is_active: true,
      parameters: { temperature: 0.5, top_k: 20, num_predict: 2 },
    });
    const listed = (await get('/api/models?details=true')).body.models as Record<string, unknown>[];
    expect(listed.find((m) => m.id === 'stories260K:latest')).toMatchObject({
      description: 'Tiny stories for tests',
      is_active: true,
      parameters: { temperature: 0.5, top_k: 20, num_predict: 2 },
    });
    expect((await get('/api/models/stories260K')).body).toMatchObject({ description: 'Tiny stories for tests', parameters: { num_predict: 2 } });
    // A later change of one field keeps the others.
    expect(await (await put(server, 'stories260K', { description: 'Renamed' })).json()).toMatchObject({ description: 'Renamed', parameters: { num_predict: 2 } });
  });

  it('applies the defaults a request leaves out, and only those', async () => {
    const defaulted = await generate({ options: { seed: 42 } });
    expect(defaulted.status).toBe(200);
    expect(((await defaulted.json()) as { eval_count: number }).eval_count).toBeLessThanOrEqual(2);
    const explicit = await generate({ options: { seed: 42, num_predict: 8 } });
    expect(((await explicit.json()) as { eval_count: number }).eval_count).toBeGreaterThan(2);
  });

  it('hides an inactive model from every list and refuses it on every surface', async () => {
    expect((await put(server, 'stories260K', { is_active: false })).status).toBe(200);

    expect((await get('/api/models')).body.models).not.toContain('stories260K:latest');
    expect((await get('/api/models?details=true')).body.models).toEqual([]);
    expect(((await get('/api/tags')).body.models as { name: string }[]).map((m) => m.name)).not.toContain('stories260K:latest');
    expect(((await get('/v1/models')).body.data as { id: string }[]).map((m) => m.id)).not.toContain('stories260K:latest');

    const arena = await postJson(`${server.url}/api/chat`, { history: [{ role: 'user', content: 'Hi' }], models: ['stories260K'] }, admin);
    expect(arena.status).toBe(403);
    expect(await arena.json()).toEqual({ error: "Model 'stories260K' is not active: an administrator has disabled it" });
    const streamed = await postJson(`${server.url}/api/stream_chat`, { history: [{ role: 'user', content: 'Hi' }], model_instances: [{ model: 'stories260K' }] }, admin);
    expect(streamed.status).toBe(403);
    expect((await generate({})).status).toBe(403);
    const v1 = await postJson(`${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }] }, admin);
    expect(v1.status).toBe(403);
    expect(((await v1.json()) as { error: { code: string } }).error.code).toBe('model_inactive');
    // Every field a model can be named in: Ollama's legacy `name`, embeddings, a battle's pool, loading.
    const refused = [
      postJson(`${server.url}/api/generate`, { name: 'stories260K', prompt: 'Once', stream: false }, admin),
      postJson(`${server.url}/api/chat`, { name: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], stream: false }, admin),
      postJson(`${server.url}/api/embed`, { model: 'stories260K', input: 'a cat' }, admin),
      postJson(`${server.url}/api/embed`, { name: 'stories260K', input: 'a cat' }, admin),
      postJson(`${server.url}/api/embeddings`, { name: 'stories260K', prompt: 'a cat' }, admin),
      postJson(`${server.url}/v1/embeddings`, { model: 'stories260K', input: 'a cat' }, admin),
      postJson(`${server.url}/api/battles`, { history: [{ role: 'user', content: 'Hi' }], pool: ['stories260K', { model: 'stories260K', temperature: 1 }] }, admin),
      postJson(`${server.url}/api/models/stories260K/load`, {}, admin),
    ];
    for (const response of await Promise.all(refused)) {
      expect(response.status, response.url).toBe(403);
      expect(JSON.stringify(await response.json()), response.url).toContain('not active');
    }
    // Unloading frees memory, which an admin may still do.
    expect((await postJson(`${server.url}/api/models/stories260K/unload`, {}, admin)).status).toBe(200);

    // The admin still sees it, marked inactive.
    const everything = (await get('/api/admin/models')).body.models as Record<string, unknown>[];
    expect(everything.find((m) => m.id === 'stories260K:latest')).toMatchObject({ is_active: false, available: true });
    expect((await get('/api/models/stories260K')).body).toMatchObject({ is_active: false });

    expect((await put(server, 'stories260K', { is_active: true })).status).toBe(200);
    expect((await get('/api/models')).body.models).toContain('stories260K:latest');
    expect((await generate({})).status).toBe(200);
  });

  it('fills the settings of legacy Arena requests and battle contestants with the defaults too', async () => {
    expect((await put(server, 'stories260K', { parameters: { num_predict: 3 } })).status).toBe(200);
    const legacy = await postJson(`${server.url}/api/chat`, { history: [{ role: 'user', content: 'Once upon a time' }], models: ['stories260K'] }, admin);
    expect(legacy.status).toBe(200);
    const body = (await legacy.json()) as { model: string; metrics: { tokens: number } };
    expect(body.model).toBe('stories260K');
    expect(body.metrics.tokens).toBeLessThanOrEqual(3);
    // Battle contestants too, from a pool or from every model.
    for (const pool of [['stories260K'], undefined]) {
      const battle = await postJson(`${server.url}/api/battles`, { history: [{ role: 'user', content: 'Once upon a time' }], pool }, admin);
      expect(battle.status).toBe(200);
      const finals = (await battle.text()).trim().split('\n').map((line) => JSON.parse(line) as { done: boolean; metrics?: { tokens: number } }).filter((l) => l.done);
      expect(finals).toHaveLength(2);
      for (const final of finals) expect(final.metrics!.tokens).toBeLessThanOrEqual(3);
    }
    // And evaluation configurations: what a configuration sets stays its own.
    const evaluation = await postJson(
      `${server.url}/api/evals`,
      { prompts: ['Once upon a time'], model_instances: [{ model: 'stories260K' }, { model: 'stories260K', num_predict: 5 }], judge: { model: 'stories260K', mode: 'score', rubric: 'Is it a story?' } },
      admin,
    );
    expect(evaluation.status).toBe(201);
    const { id } = (await evaluation.json()) as { id: string };
    await fetch(`${server.url}/api/evals/${id}/cancel`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{}' });
    const stored = (await (await fetch(`${server.url}/api/evals/${id}`, { headers: admin })).json()) as { instances: { num_predict: number }[] };
    expect(stored.instances.map((i) => i.num_predict)).toEqual([3, 5]);
    expect((await put(server, 'stories260K', { parameters: {} })).status).toBe(200);
  });

  it('rejects bad catalog input with a 400 and changes nothing', async () => {
    const before = (await get('/api/models/stories260K')).body;
    for (const body of [
      [],
      { colour: 'red' },
      { is_active: 'no' },
      { description: 42 },
      { parameters: 'hot' },
      { parameters: { temperature: 3 } },
      { parameters: { top_k: 1.5 } },
      { parameters: { warp: 9 } },
      { parameters: { stop: 'x' } },
    ]) {
      const response = await put(server, 'stories260K', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(typeof ((await response.json()) as { error: unknown }).error).toBe('string');
    }
    expect((await get('/api/models/stories260K')).body).toEqual(before);
  });

  it('keeps entries for models not served yet, and removes entries', async () => {
    expect((await put(server, 'future-model:7b', { description: 'Coming soon', is_active: false })).status).toBe(200);
    const everything = (await get('/api/admin/models')).body.models as Record<string, unknown>[];
    expect(everything.find((m) => m.id === 'future-model:7b')).toMatchObject({ description: 'Coming soon', is_active: false, available: false });

    const removed = await fetch(`${server.url}/api/admin/models/stories260K`, { method: 'DELETE', headers: admin });
    expect(removed.status).toBe(200);
    expect((await get('/api/models/stories260K')).body).toMatchObject({ description: '', is_active: true, parameters: {} });
    expect((await fetch(`${server.url}/api/admin/models/stories260K`, { method: 'DELETE', headers: admin })).status).toBe(404);
  });
});
