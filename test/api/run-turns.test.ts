import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, tempDir, type RunningServer } from '../support/server.js';
import { migrations } from '../../src/store/migrations/index.js';
import { openStore } from '../../src/store/database.js';
import { RunStore } from '../../src/store/runs.js';
import type { ChatMessage } from '../../src/domain/chat.js';
import { STORES } from '../support/stores.js';
import { parseCsv } from '../support/csv.js';

/**
 * A conversation is one saved run: a follow-up names the run it continues (`run_id`) and is appended
 * to it as a turn. Only the run's owner may continue it; a battle or other instances cannot be. The
 * real server and model over HTTP, on SQLite and PostgreSQL.
 */

const ADMIN = 'admin-token-for-run-turns';
const admin = { authorization: `Bearer ${ADMIN}` };

type Answer = { response: string; metrics: Record<string, number> | null; error: string | null };
type Message = { role: string; content: string };
type Turn = { turn: number; status: string; created_at: string; finished_at: string | null; history: Message[]; histories: Record<string, Message[]> | null; answers: Record<string, Answer> };
type Run = {
  id: string;
  kind: string;
  status: string;
  created_at: string;
  updated_at: string;
  turn_count: number;
  history: Message[];
  histories: Record<string, Message[]> | null;
  answers: Record<string, Answer>;
  turns: Turn[];
};
type Line = { instance_id?: string; token: string; done: boolean; metrics?: Record<string, number>; error?: string };

const instances = [
  { id: 'calm', model: 'stories260K', temperature: 0.3, num_predict: 5, seed: 21 },
  { id: 'wild', model: 'stories260K', temperature: 1.2, num_predict: 4, seed: 22 },
];

describe.each(STORES)('conversations as one run on $store', ({ setup }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  beforeAll(async () => {
    const store = await setup();
    cleanup = store.cleanup;
    server = await startServer({ ...store.env, WEB_CHAT_TOKEN: ADMIN });
    const create = async (name: string) => {
      const response = await postJson(`${server.url}/api/admin/keys`, { name }, admin);
      expect(response.status).toBe(201);
      return { authorization: `Bearer ${((await response.json()) as { key: string }).key}` };
    };
    alice = await create('alice');
    bob = await create('bob');
  });
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
  });

  async function ask(body: unknown, headers: Record<string, string>): Promise<{ runId: string; lines: Line[] }> {
    const response = await postJson(`${server.url}/api/stream_chat`, body, headers);
    expect(response.status).toBe(200);
    const lines: Line[] = [];
    for await (const line of ndjsonLines<Line>(response)) lines.push(line);
    return { runId: response.headers.get('x-run-id')!, lines };
  }
  const answerOf = (lines: Line[], id: string) => lines.filter((l) => l.instance_id === id && !l.done).map((l) => l.token).join('');
  const getRun = async (id: string, headers: Record<string, string>) => (await fetch(`${server.url}/api/runs/${id}`, { headers })).json() as Promise<Run>;

  let runId: string;
  let first: Line[];
  let second: Line[];
  let followUp: Message;
  let histories: Record<string, Message[]>;

  it('appends a follow-up to the run it names, each instance with its own earlier answer', async () => {
    const question = { role: 'user', content: 'Tell me about a cat.' };
    ({ runId, lines: first } = await ask({ history: [question], model_instances: instances }, alice));
    followUp = { role: 'user', content: 'And then what did the cat do?' };
    // Each column's earlier answer is its own: every instance is sent its own conversation.
    histories = Object.fromEntries(instances.map((i) => [i.id, [question, { role: 'assistant', content: answerOf(first, i.id) }, followUp]]));
    const body = {
      run_id: runId,
      history: histories.calm,
      model_instances: instances.map((i) => ({ ...i, history: histories[i.id] })),
    };
    const continued = await ask(body, alice);
    second = continued.lines;
    expect(continued.runId).toBe(runId);
    for (const i of instances) expect(second.filter((l) => l.instance_id === i.id && l.done)).toHaveLength(1);
  });

  it('lists the conversation once, with its turn count and latest time', async () => {
    const list = (await (await fetch(`${server.url}/api/runs?limit=100`, { headers: alice })).json()) as { runs: Run[]; total: number };
    expect(list.total).toBe(1);
    expect(list.runs).toHaveLength(1);
    const [row] = list.runs;
    expect(row).toMatchObject({ id: runId, kind: 'comparison', status: 'done', turn_count: 2, prompt: followUp.content });
    const run = await getRun(runId, alice);
    expect(row!.updated_at).toBe(run.turns[1]!.created_at);
    expect(Date.parse(row!.updated_at)).toBeGreaterThanOrEqual(Date.parse(row!.created_at));
  });

  it('shows every turn in order, and the latest turn in the fields clients read before', async () => {
    const run = await getRun(runId, alice);
    expect(run.turn_count).toBe(2);
    expect(run.turns.map((t) => t.turn)).toEqual([1, 2]);
    const [one, two] = run.turns as [Turn, Turn];
    expect(one.history).toEqual([{ role: 'user', content: 'Tell me about a cat.' }]);
    expect(one.histories).toBeNull();
    expect(two.history).toEqual(histories.calm);
    expect(two.histories).toEqual(histories);
    for (const [turn, lines] of [[one, first], [two, second]] as const) {
      expect(turn.status).toBe('done');
      expect(typeof turn.finished_at).toBe('string');
      for (const i of instances) {
        const answer = turn.answers[i.id]!;
        expect(answer.response).toBe(answerOf(lines, i.id));
        expect(answer.error).toBeNull();
        expect(answer.metrics).toEqual(lines.find((l) => l.instance_id === i.id && l.done)!.metrics);
      }
    }
    expect(run).toMatchObject({ status: 'done', history: two.history, histories: two.histories, answers: two.answers, created_at: one.created_at, updated_at: two.created_at });
  });

  it('exports every turn', async () => {
    const csv = await (await fetch(`${server.url}/api/runs/${runId}/export?format=csv`, { headers: alice })).text();
    const [header, ...rows] = parseCsv(csv);
    expect(header!.at(-1)).toBe('turn');
    // One row per instance and turn, in order.
    expect(rows.map((r) => [r.at(-1), r[header!.indexOf('instance_id')]])).toEqual([['1', 'calm'], ['1', 'wild'], ['2', 'calm'], ['2', 'wild']]);
    expect(rows[2]![header!.indexOf('prompt')]).toBe(followUp.content);
    const markdown = await (await fetch(`${server.url}/api/runs/${runId}/export?format=md`, { headers: alice })).text();
    expect(markdown).toContain('## Turn 1');
    expect(markdown).toContain('## Turn 2');
    expect(markdown).toContain(followUp.content);
  });

  it("answers another key's continuation with a 404, as reading the run does; the admin may continue it", async () => {
    const body = { run_id: runId, history: [{ role: 'user', content: 'Hijack' }], model_instances: instances };
    const response = await postJson(`${server.url}/api/stream_chat`, body, bob);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'Run not found' });
    expect(response.headers.get('x-run-id')).toBeNull();
    const viaChat = await postJson(`${server.url}/api/chat`, { ...body, stream: false }, bob);
    expect(viaChat.status).toBe(404);
    expect((await postJson(`${server.url}/api/stream_chat`, { ...body, run_id: 'no-such-run' }, alice)).status).toBe(404);

    const byAdmin = await postJson(`${server.url}/api/chat`, { ...body, history: [...histories.calm!, { role: 'assistant', content: 'x' }, { role: 'user', content: 'More' }], stream: false }, admin);
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.headers.get('x-run-id')).toBe(runId);
    const results = ((await byAdmin.json()) as { results: Record<string, Answer> }).results;
    const run = await getRun(runId, alice);
    expect(run.turn_count).toBe(3);
    expect(run.turns[2]!.answers.calm!.response).toBe(results.calm!.response);
    // Still alice's: she lists it, bob does not.
    const listed = async (headers: Record<string, string>) => ((await (await fetch(`${server.url}/api/runs`, { headers })).json()) as { runs: Run[] }).runs.map((r) => r.id);
    expect(await listed(alice)).toEqual([runId]);
    expect(await listed(bob)).toEqual([]);
  });

  it('refuses to continue with other instances, or a battle, with a 400 and saves nothing', async () => {
    const before = (await getRun(runId, alice)).turn_count;
    const history = [{ role: 'user', content: 'Different' }];
    const cases: [unknown, RegExp][] = [
      [{ run_id: runId, history, model_instances: [instances[0]] }, /instances differ .*wild is missing/],
      [{ run_id: runId, history, model_instances: [...instances, { id: 'third', model: 'stories260K' }] }, /third is not in the run/],
      [{ run_id: runId, history, model_instances: [{ ...instances[0], temperature: 0.9 }, instances[1]] }, /temperature of calm differs/],
      [{ run_id: runId, history, models: ['stories260K'] }, /continue it the same way/],
      [{ run_id: 42, history, model_instances: instances }, /run_id must be a non-empty string/],
    ];
    for (const [body, message] of cases) {
      const response = await postJson(`${server.url}/api/stream_chat`, body, alice);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
    }
    expect((await getRun(runId, alice)).turn_count).toBe(before);

    const battle = await postJson(`${server.url}/api/battles`, { history, pool: [{ model: 'stories260K', num_predict: 3 }] }, alice);
    const battleRun = battle.headers.get('x-run-id')!;
    await battle.text();
    const onBattle = await postJson(`${server.url}/api/stream_chat`, { run_id: battleRun, history, model_instances: instances }, alice);
    expect(onBattle.status).toBe(400);
    expect(((await onBattle.json()) as { error: string }).error).toMatch(/battle cannot be continued/);
  });

  it('re-runs the latest turn as a new run of one turn', async () => {
    const run = await getRun(runId, alice);
    const response = await fetch(`${server.url}/api/runs/${runId}/rerun`, { method: 'POST', headers: alice });
    expect(response.status).toBe(200);
    const newId = response.headers.get('x-run-id')!;
    await response.text();
    expect(newId).not.toBe(runId);
    const rerun = await getRun(newId, alice);
    expect(rerun).toMatchObject({ turn_count: 1, history: run.history, histories: run.histories });
    expect(rerun.turns).toHaveLength(1);
  });
});

describe.each(STORES)('a run saved before conversations existed, on $store', ({ setup }) => {
  it('reads as a run of one turn, and can be continued', async () => {
    const { env, cleanup } = await setup();
    const dataDir = tempDir();
    try {
      // The schema as it was before turns: every migration up to the one before them.
      const db = new Kysely<Record<string, Record<string, unknown>>>({
        dialect: env.DATABASE_URL
          ? new PostgresDialect({ pool: new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 }) })
          : new SqliteDialect({ database: new Database(path.join(dataDir, 'arena.db')) }),
      });
      const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
      expect((await migrator.migrateTo('007_evaluations')).error).toBeUndefined();
      const history: ChatMessage[] = [{ role: 'user', content: 'An old question' }];
      const answers = { a: { response: 'An old answer', metrics: null, error: null } };
      const instances = [{ id: 'a', model: 'stories260K:latest', temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: 4, seed: 1 }];
      await db
        .insertInto('runs')
        .values({
          id: 'old-run', kind: 'comparison', status: 'done', owner_key_id: null, rerun_of: null, legacy: 0, prompt: 'An old question',
          history: JSON.stringify(history), instances: JSON.stringify(instances), answers: JSON.stringify(answers),
          created_at: '2025-01-02T03:04:05.000Z', finished_at: '2025-01-02T03:04:06.000Z',
        })
        .execute();
      await db.destroy();

      const store = await openStore({ databaseUrl: env.DATABASE_URL, dataDir });
      try {
        const runs = new RunStore(store);
        const run = (await runs.get('old-run'))!;
        expect(run).toMatchObject({ turnCount: 1, updatedAt: '2025-01-02T03:04:05.000Z', status: 'done', history, histories: null, answers });
        expect(run.turns).toEqual([{ turn: 1, status: 'done', history, histories: null, answers, createdAt: '2025-01-02T03:04:05.000Z', finishedAt: '2025-01-02T03:04:06.000Z' }]);
        expect((await runs.list({ limit: 10, offset: 0 })).runs[0]).toMatchObject({ id: 'old-run', turnCount: 1 });

        const next: ChatMessage[] = [...history, { role: 'assistant', content: 'An old answer' }, { role: 'user', content: 'A new question' }];
        expect(await runs.append('old-run', { history: next, histories: null, createdAt: '2026-01-01T00:00:00.000Z' })).toBe(2);
        const newAnswers = { a: { response: 'A new answer', metrics: null, error: null } };
        await runs.finish('old-run', 'done', newAnswers, 2);
        const continued = (await runs.get('old-run'))!;
        expect(continued).toMatchObject({ turnCount: 2, updatedAt: '2026-01-01T00:00:00.000Z', status: 'done', history: next, answers: newAnswers });
        expect(continued.turns.map((t) => [t.turn, t.answers.a!.response])).toEqual([[1, 'An old answer'], [2, 'A new answer']]);
        expect(continued.turns[0]!.createdAt).toBe('2025-01-02T03:04:05.000Z');

        // Two follow-ups at once (two tabs) take the next numbers in turn, neither lost.
        const both = await Promise.all([1, 2].map((n) => runs.append('old-run', { history: next, histories: null, createdAt: `2026-01-0${n + 1}T00:00:00.000Z` })));
        expect(both.sort()).toEqual([3, 4]);
        expect((await runs.get('old-run'))!.turns.map((t) => t.turn)).toEqual([1, 2, 3, 4]);
      } finally {
        await store.close();
      }
    } finally {
      await cleanup();
    }
  });
});
