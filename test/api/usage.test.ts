import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, tempDir, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';

/**
 * every request on a model route is recorded (key, model, surface, tokens, duration,
 * status); `GET /api/admin/usage` totals by key, model and day; counts equal requests sent, under
 * load and across a shutdown.
 */

const ADMIN_TOKEN = 'admin-token-for-usage';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const history = [{ role: 'user', content: 'Hi' }];

interface Totals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}
interface Usage {
  totals: Totals;
  by_key: (Totals & { key_id: string | null; name: string | null })[];
  by_model: (Totals & { model: string | null })[];
  by_surface: (Totals & { surface: string })[];
  by_day: (Totals & { day: string })[];
  series_by_model: (Totals & { period: string; model: string | null })[];
  series_by_key: (Totals & { period: string; key_id: string | null })[];
}

describe.each(STORES)('usage on $store', ({ setup }) => {
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

  async function createKey(name: string, tier = 'premium'): Promise<{ id: string; key: string }> {
    const response = await postJson(`${server.url}/api/admin/keys`, { name, tier }, admin);
    expect(response.status).toBe(201);
    return (await response.json()) as { id: string; key: string };
  }

  async function usage(query = ''): Promise<Usage> {
    const response = await fetch(`${server.url}/api/admin/usage${query}`, { headers: admin });
    expect(response.status).toBe(200);
    return (await response.json()) as Usage;
  }

  it('records every request with its tokens, by key, model, surface and day', async () => {
    const writer = await createKey('writer');
    const reader = await createKey('reader');
    let prompt = 0;
    let completion = 0;

    for (let i = 0; i < 3; i++) {
      const response = await postJson(`${server.url}/api/chat`, { history, model_instances: [{ model: 'stories260K', num_predict: 3 }], stream: false }, bearer(writer.key));
      expect(response.status).toBe(200);
      const { metrics } = (await response.json()) as { metrics: { tokens: number; prompt_tokens: number } };
      prompt += metrics.prompt_tokens;
      completion += metrics.tokens;
    }
    const stream = await postJson(
      `${server.url}/api/stream_chat`,
      { history, model_instances: [{ model: 'stories260K', num_predict: 2 }, { model: 'stories260K', num_predict: 2, temperature: 0.3 }] },
      bearer(writer.key),
    );
    for await (const line of ndjsonLines<{ done: boolean; metrics?: { tokens: number; prompt_tokens: number } }>(stream)) {
      if (line.done && line.metrics) {
        prompt += line.metrics.prompt_tokens;
        completion += line.metrics.tokens;
      }
    }
    for (let i = 0; i < 5; i++) expect((await fetch(`${server.url}/api/models`, { headers: bearer(reader.key) })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await fetch(`${server.url}/api/models`, { headers: admin })).status).toBe(200);

    const all = await usage();
    expect(all.totals).toEqual({ requests: 11, prompt_tokens: prompt, completion_tokens: completion });
    expect(completion).toBeGreaterThan(0);
    expect(all.by_key).toEqual(
      expect.arrayContaining([
        { key_id: writer.id, name: 'writer', prefix: expect.any(String), requests: 4, prompt_tokens: prompt, completion_tokens: completion },
        { key_id: reader.id, name: 'reader', prefix: expect.any(String), requests: 5, prompt_tokens: 0, completion_tokens: 0 },
        { key_id: null, name: null, prefix: null, requests: 2, prompt_tokens: 0, completion_tokens: 0 },
      ]),
    );
    expect(all.by_model).toEqual(
      expect.arrayContaining([
        { model: 'stories260K:latest', requests: 4, prompt_tokens: prompt, completion_tokens: completion },
        { model: null, requests: 7, prompt_tokens: 0, completion_tokens: 0 },
      ]),
    );
    expect(all.by_surface).toEqual([{ surface: 'arena', requests: 11, prompt_tokens: prompt, completion_tokens: completion }]);
    const today = new Date().toISOString().slice(0, 10);
    expect(all.by_day).toEqual([{ day: today, requests: 11, prompt_tokens: prompt, completion_tokens: completion }]);
    expect(all.series_by_key.find((s) => s.key_id === writer.id)).toMatchObject({ period: today, requests: 4 });

    const hourly = await usage('?interval=hour');
    expect(hourly.series_by_model.every((s) => s.period.startsWith(`${today}T`) && s.period.length === 13)).toBe(true);

    // Filters.
    expect((await usage(`?key_id=${reader.id}`)).totals.requests).toBe(5);
    expect((await usage('?model=stories260K')).totals).toEqual({ requests: 4, prompt_tokens: prompt, completion_tokens: completion });
    expect((await usage(`?from=${today}&to=${today}`)).totals.requests).toBe(11);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((await usage(`?from=${tomorrow}`)).totals).toEqual({ requests: 0, prompt_tokens: 0, completion_tokens: 0 });
    expect((await usage('?to=2000-01-01')).totals.requests).toBe(0);
    const bad = await fetch(`${server.url}/api/admin/usage?from=someday`, { headers: admin });
    expect(bad.status).toBe(400);

    // Per-key totals in the key list.
    const keys = ((await (await fetch(`${server.url}/api/admin/keys`, { headers: admin })).json()) as { keys: { id: string; usage: Totals }[] }).keys;
    expect(keys.find((k) => k.id === writer.id)!.usage).toEqual({ requests: 4, prompt_tokens: prompt, completion_tokens: completion });
    expect(keys.find((k) => k.id === reader.id)!.usage).toEqual({ requests: 5, prompt_tokens: 0, completion_tokens: 0 });
  });

  it('records requests that failed too, under the model they named', async () => {
    const { id, key } = await createKey('refused', 'standard');
    await postJson(`${server.url}/api/chat`, { history, models: ['no-such-model'] }, bearer(key));
    const rows = await usage(`?key_id=${id}`);
    expect(rows.totals.requests).toBe(1);
    expect(rows.by_model).toEqual([{ model: 'no-such-model:latest', requests: 1, prompt_tokens: 0, completion_tokens: 0 }]);
  });

  it('records a stream the client drops, with its prompt and the tokens it had streamed', async () => {
    const { id, key } = await createKey('quitter');
    const response = await postJson(`${server.url}/api/chat`, { model: 'stories260K', messages: history, options: { num_predict: 400 } }, bearer(key));
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let seen = '';
    while (seen.split('\n').length < 4) seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel(); // gone mid-answer, as a closed tab or a Stop button leaves
    await expect.poll(async () => (await usage(`?key_id=${id}`)).totals.requests, { timeout: 5000 }).toBe(1);
    const { totals } = await usage(`?key_id=${id}`);
    expect(totals.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(totals.completion_tokens).toBeLessThan(400);
    // The engine told the prompt's size before generating, so it is charged too.
    expect(totals.prompt_tokens).toBeGreaterThan(0);
  });

  it('counts refused requests with their status: 401, 403 and 429', async () => {
    const count = (u: Usage & { by_status?: { status: number; requests: number }[] }, status: number) => u.by_status?.find((row) => row.status === status)?.requests ?? 0;
    const before = (await usage()) as Usage & { by_status?: { status: number; requests: number }[] };
    expect((await fetch(`${server.url}/api/tags`, { headers: bearer('sk-not-a-key') })).status).toBe(401);
    const limited = await postJson(`${server.url}/api/admin/keys`, { name: 'limited', tier: 'premium', rpm: 1, models: ['other-model'] }, admin);
    const { id, key } = (await limited.json()) as { id: string; key: string };
    expect((await postJson(`${server.url}/api/chat`, { model: 'stories260K', history }, bearer(key))).status).toBe(403);
    expect((await fetch(`${server.url}/api/tags`, { headers: bearer(key) })).status).toBe(429);
    await expect.poll(async () => count((await usage()) as never, 401) - count(before, 401), { timeout: 5000 }).toBe(1);
    const after = (await usage()) as Usage & { by_status?: { status: number; requests: number }[] };
    expect(count(after, 403) - count(before, 403)).toBe(1);
    expect(count(after, 429) - count(before, 429)).toBe(1);
    // The key's own records: both of its refusals, under its id.
    expect((await usage(`?key_id=${id}`)).totals.requests).toBe(2);
  });

  it('loses no record under load', async () => {
    const { id, key } = await createKey('load');
    const responses = await Promise.all(Array.from({ length: 250 }, () => fetch(`${server.url}/api/models`, { headers: bearer(key) })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect((await usage(`?key_id=${id}`)).totals.requests).toBe(250);
  });

  it('writes what is buffered when the server shuts down', async () => {
    const { id, key } = await createKey('shutdown');
    const responses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${server.url}/api/models`, { headers: bearer(key) })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await server.close(); // at once: well inside the ledger's flush interval
    server = await startServer({ ...env, WEB_CHAT_TOKEN: ADMIN_TOKEN, DATA_DIR: dataDir });
    expect((await usage(`?key_id=${id}`)).totals.requests).toBe(40);
  });
});
