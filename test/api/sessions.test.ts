import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, spawnServer, startServer, tempDir, TEST_MODEL, type RunningServer } from '../support/server.js';
import { createPgDatabase, STORES } from '../support/stores.js';

/** The extended Ollama API / server-side sessions on `/api/chat`, on SQLite and PostgreSQL. */

const turn = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'stories260K',
  messages: [{ role: 'user', content }],
  stream: false,
  options: { num_predict: 4 },
  ...extra,
});

interface SessionView {
  session_id: string;
  model: string;
  messages: { role: string; content: string }[];
  created_at: string;
  updated_at: string;
  expires_at: string;
}

async function getSession(url: string, id: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/api/sessions/${encodeURIComponent(id)}`, { headers });
}

for (const { store, setup } of STORES) {
  describe(`sessions on ${store}`, () => {
    let server: RunningServer;
    let cleanup: () => Promise<unknown>;

    beforeAll(async () => {
      const prepared = await setup();
      cleanup = prepared.cleanup;
      server = await startServer(prepared.env);
    });
    afterAll(async () => {
      await server?.close();
      await cleanup?.();
    });

    it('creates a session when none is given, then continues it with the stored history', async () => {
      const first = await (await postJson(`${server.url}/api/chat`, turn('Once upon a time'))).json();
      expect(first.session_id).toMatch(/^[0-9a-f-]{36}$/);
      const stored = (await (await getSession(server.url, first.session_id)).json()) as SessionView;
      expect(stored).toMatchObject({ session_id: first.session_id, model: TEST_MODEL });
      expect(stored.messages).toEqual([
        { role: 'user', content: 'Once upon a time' },
        { role: 'assistant', content: first.message.content },
      ]);
      expect(Date.parse(stored.expires_at)).toBeGreaterThan(Date.now());

      const second = await (await postJson(`${server.url}/api/chat`, turn('What happened next?', { session_id: first.session_id }))).json();
      expect(second.session_id).toBe(first.session_id);
      // The model saw the first turn too: the prompt is longer than the new message alone would make it.
      const alone = await (await postJson(`${server.url}/api/chat`, turn('What happened next?'))).json();
      expect(second.prompt_eval_count).toBeGreaterThan(alone.prompt_eval_count);
      const after = (await (await getSession(server.url, first.session_id)).json()) as SessionView;
      expect(after.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
      expect(after.messages[3]!.content).toBe(second.message.content);
      expect(after.updated_at >= stored.updated_at).toBe(true);
    });

    it('returns the session id in the final NDJSON line and in the SSE final event', async () => {
      const response = await postJson(`${server.url}/api/chat`, { ...turn('Lily had a ball'), stream: true });
      const lines = [];
      for await (const line of ndjsonLines(response)) lines.push(line);
      const id = lines.at(-1)!.session_id as string;
      expect(typeof id).toBe('string');
      expect(lines.slice(0, -1).every((line) => !('session_id' in line))).toBe(true);

      const sse = await postJson(`${server.url}/api/chat`, { ...turn('She played'), stream: true, session_id: id }, { accept: 'text/event-stream' });
      const events = (await sse.text()).split('\n\n').filter(Boolean).map((frame) => JSON.parse(frame.replace(/^data: /, '')));
      const final = events.at(-1);
      expect(final).toMatchObject({ done: true, session_id: id });
      expect(final.full_text).toBe(events.slice(0, -1).map((e) => e.token).join(''));
      const stored = (await (await getSession(server.url, id)).json()) as SessionView;
      expect(stored.messages).toHaveLength(4);
      expect(stored.messages[3]!.content).toBe(final.full_text);
    });

    it('works for the ollama client, which only sees extra fields', async () => {
      const ollama = new Ollama({ host: server.url });
      const answer = (await ollama.chat({ ...turn('Tom saw a dog'), stream: false })) as unknown as { session_id: string };
      const next = (await ollama.chat({ ...turn('The dog ran'), stream: false, session_id: answer.session_id } as never)) as unknown as { session_id: string };
      expect(next.session_id).toBe(answer.session_id);
    });

    it('keeps both turns when two arrive at once on one session', async () => {
      const first = await (await postJson(`${server.url}/api/chat`, turn('One'))).json();
      await Promise.all([
        postJson(`${server.url}/api/chat`, turn('Two', { session_id: first.session_id })),
        postJson(`${server.url}/api/chat`, turn('Three', { session_id: first.session_id })),
      ]);
      const stored = (await (await getSession(server.url, first.session_id)).json()) as SessionView;
      expect(stored.messages).toHaveLength(6);
      expect(stored.messages.filter((m) => m.role === 'user').map((m) => m.content).sort()).toEqual(['One', 'Three', 'Two']);
    });

    it('keeps answering when the conversation outgrows the context, leaving the oldest turns out of the prompt', async () => {
      // The test model has a 512-token context; a few 150-token answers overflow it.
      let id: string | undefined;
      let generated = 0;
      const prompts: number[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await postJson(`${server.url}/api/chat`, turn(`Tell me more, part ${i}`, { options: { num_predict: 150, temperature: 0.9 }, ...(id ? { session_id: id } : {}) }));
        expect(response.status).toBe(200);
        const answer = await response.json();
        id = answer.session_id;
        generated += answer.eval_count;
        prompts.push(answer.prompt_eval_count);
        expect(answer.prompt_eval_count + answer.eval_count).toBeLessThanOrEqual(512);
      }
      expect(generated).toBeGreaterThan(512);
      const stored = (await (await getSession(server.url, id!)).json()) as SessionView;
      expect(stored.messages).toHaveLength(10); // every turn is kept, only the prompt was shortened
    });

    it('keeps the newest million characters of a conversation, cut as truncation cuts a prompt', async () => {
      const system = { role: 'system', content: 'You tell stories.' };
      const long = `${'a'.repeat(600_000)}THE END`;
      const body = { ...turn(''), messages: [system, { role: 'user', content: long }] };
      const first = await (await postJson(`${server.url}/api/chat`, body)).json();
      expect(first.done).toBe(true);
      const second = await (await postJson(`${server.url}/api/chat`, turn(long, { session_id: first.session_id }))).json();
      const stored = (await (await getSession(server.url, second.session_id)).json()) as SessionView;
      const sizes = stored.messages.map((m) => m.content.length);
      expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1_000_000);
      expect(stored.messages[0]).toEqual(system);
      expect(stored.messages.at(-2)).toEqual({ role: 'user', content: long });
      // The first user message straddled the bound: its end is what stays.
      const cut = stored.messages.find((m, i) => i > 0 && m.role === 'user' && m.content !== long);
      expect(cut?.content.endsWith('THE END')).toBe(true);
      expect(cut!.content.length).toBeLessThan(long.length);
    });

    it('answers 404 for an unknown session and forgets a deleted one', async () => {
      const unknown = await postJson(`${server.url}/api/chat`, turn('hi', { session_id: 'no-such-session' }));
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toEqual({ error: "session 'no-such-session' not found" });
      expect((await getSession(server.url, 'no-such-session')).status).toBe(404);

      const made = await (await postJson(`${server.url}/api/chat`, turn('Bye'))).json();
      const deleted = await fetch(`${server.url}/api/sessions/${made.session_id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(200);
      expect((await getSession(server.url, made.session_id)).status).toBe(404);
      expect((await fetch(`${server.url}/api/sessions/${made.session_id}`, { method: 'DELETE' })).status).toBe(404);
      expect((await postJson(`${server.url}/api/chat`, turn('again', { session_id: made.session_id }))).status).toBe(404);

      const badType = await postJson(`${server.url}/api/chat`, turn('hi', { session_id: 42 }));
      expect(badType.status).toBe(400);
      expect((await badType.json()).error).toMatch(/session_id must be a non-empty string/);
    });
  });
}

describe('sessions scoped to API keys', () => {
  const ADMIN = 'session-admin-token';
  const admin = { authorization: `Bearer ${ADMIN}` };
  let server: RunningServer;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    server = await startServer({ WEB_CHAT_TOKEN: ADMIN });
    for (const name of ['alice', 'bob']) {
      const response = await postJson(`${server.url}/api/admin/keys`, { name, tier: 'standard' }, admin);
      expect(response.status).toBe(201);
      keys[name] = ((await response.json()) as { key: string }).key;
    }
  });
  afterAll(() => server?.close());

  it('shows a key its own sessions only; the admin sees every one', async () => {
    const alice = { authorization: `Bearer ${keys.alice}` };
    const bob = { authorization: `Bearer ${keys.bob}` };
    const made = await (await postJson(`${server.url}/api/chat`, turn('Secret story'), alice)).json();
    expect((await getSession(server.url, made.session_id, alice)).status).toBe(200);
    expect((await getSession(server.url, made.session_id, bob)).status).toBe(404);
    expect((await postJson(`${server.url}/api/chat`, turn('mine now', { session_id: made.session_id }), bob)).status).toBe(404);
    expect((await fetch(`${server.url}/api/sessions/${made.session_id}`, { method: 'DELETE', headers: bob })).status).toBe(404);
    expect((await getSession(server.url, made.session_id, admin)).status).toBe(200);
    expect((await getSession(server.url, made.session_id)).status).toBe(401);
    const stored = (await (await getSession(server.url, made.session_id, alice)).json()) as SessionView;
    expect(stored.messages).toHaveLength(2);
  });
});

describe('sessions across two replicas sharing PostgreSQL', () => {
  it('continues on one replica, at once, a session the other just answered', async () => {
    const db = await createPgDatabase();
    const [a, b] = [await startServer({ DATABASE_URL: db.url }), await startServer({ DATABASE_URL: db.url })];
    try {
      let id: string | undefined;
      for (const [i, server] of [a, b, a, b].entries()) {
        const answer = await (await postJson(`${server.url}/api/chat`, turn(`Turn ${i}`, id ? { session_id: id } : {}))).json();
        id ??= answer.session_id;
        expect(answer.session_id).toBe(id);
      }
      const stored = (await (await getSession(a.url, id!)).json()) as SessionView;
      expect(stored.messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['Turn 0', 'Turn 1', 'Turn 2', 'Turn 3']);
      expect((await fetch(`${b.url}/api/sessions/${id}`, { method: 'DELETE' })).status).toBe(200);
      expect((await getSession(a.url, id!)).status).toBe(404);
    } finally {
      await a.close();
      await b.close();
      await db.drop();
    }
  });
});

describe('session lifetime', () => {
  it('expires a session after the idle time', async () => {
    const server = await startServer({ SESSION_TTL_SECONDS: '1' });
    try {
      const made = await (await postJson(`${server.url}/api/chat`, turn('Quick'))).json();
      expect((await getSession(server.url, made.session_id)).status).toBe(200);
      await expect.poll(async () => (await getSession(server.url, made.session_id)).status, { timeout: 10_000, interval: 100 }).toBe(404);
      expect((await postJson(`${server.url}/api/chat`, turn('late', { session_id: made.session_id }))).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('survives a server restart', async () => {
    const dataDir = tempDir('sessions-restart-');
    const first = await spawnServer({ DATA_DIR: dataDir });
    let id: string;
    try {
      const made = await (await postJson(`${first.url}/api/chat`, turn('Before the restart'))).json();
      id = made.session_id;
    } finally {
      await first.stop();
    }
    const second = await spawnServer({ DATA_DIR: dataDir });
    try {
      const stored = (await (await getSession(second.url, id)).json()) as SessionView;
      expect(stored.messages[0]).toEqual({ role: 'user', content: 'Before the restart' });
      const next = await (await postJson(`${second.url}/api/chat`, turn('After', { session_id: id }))).json();
      expect(next.session_id).toBe(id);
      expect(((await (await getSession(second.url, id)).json()) as SessionView).messages).toHaveLength(4);
    } finally {
      await second.stop();
    }
  }, 90_000);
});
