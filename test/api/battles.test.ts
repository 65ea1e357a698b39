import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, SHARED_MODELS, startServer, tempDir, TEST_MODEL, type RunningServer } from '../support/server.js';
import { createPgDatabase, type TestDatabase } from '../support/stores.js';

/**
 * Blind battles and the leaderboard end to end: the real server, the real test model, a real SQLite
 * file. Two models are the one test model under two names (symlinks in a temporary models directory),
 * so that battles between models, not only between configurations, are exercised.
 */

const RIVAL = 'rival:latest';
let server: RunningServer;
let modelsDir: string;
const dataDir = tempDir('arena-battles-');
const history = [{ role: 'user', content: 'Tell me a story' }];

beforeAll(async () => {
  modelsDir = tempDir('arena-battle-models-');
  fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(modelsDir, 'stories260K.gguf'));
  fs.symlinkSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(modelsDir, 'rival.gguf'));
  server = await startServer({ MODELS_DIR: modelsDir, DATA_DIR: dataDir });
});
afterAll(async () => {
  await server?.close();
});

type Line = { instance_id?: string; model?: string; token: string; done: boolean; error?: string; metrics?: Record<string, number> };

async function battle(body: unknown): Promise<{ id: string; runId: string; lines: Line[] }> {
  const response = await postJson(`${server.url}/api/battles`, body);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('application/x-ndjson');
  const id = response.headers.get('x-battle-id');
  const runId = response.headers.get('x-run-id');
  expect(id).toBeTruthy();
  expect(runId).toBeTruthy();
  const lines: Line[] = [];
  for await (const line of ndjsonLines<Line>(response)) lines.push(line);
  return { id: id!, runId: runId!, lines };
}

const vote = (id: string, winner: unknown) => postJson(`${server.url}/api/battles/${id}/vote`, { winner });
const twoModels = [
  { model: 'stories260K', num_predict: 8, seed: 3 },
  { model: 'rival', num_predict: 8, seed: 3 },
];

describe('POST /api/battles', () => {
  it('streams two anonymous contestants a and b, interleaved, with the battle id in a header', async () => {
    const { id, runId, lines } = await battle({
      history,
      pool: [
        { model: 'stories260K', temperature: 0.5, num_predict: 40, seed: 1 },
        { model: 'stories260K', temperature: 1.2, num_predict: 40, seed: 2 },
      ],
    });
    expect(new Set(lines.map((l) => l.instance_id))).toEqual(new Set(['a', 'b']));
    // Anonymous: no line names a model.
    for (const line of lines) expect(line).not.toHaveProperty('model');
    expect(JSON.stringify(lines)).not.toContain('stories260K');
    const order = lines.filter((l) => !l.done).map((l) => l.instance_id);
    const switches = order.filter((side, i) => i > 0 && side !== order[i - 1]).length;
    expect(switches).toBeGreaterThan(3);
    for (const side of ['a', 'b']) {
      const done = lines.filter((l) => l.instance_id === side && l.done);
      expect(done).toHaveLength(1);
      expect(done[0]!.metrics!.tokens).toBeGreaterThan(0);
    }

    // Before the vote the battle, and its run, hide who is who.
    const shown = await (await fetch(`${server.url}/api/battles/${id}`)).json();
    expect(shown).toMatchObject({ id, run_id: runId, status: 'awaiting_vote', winner: null, contestants: null });
    const text = (side: string) => lines.filter((l) => l.instance_id === side).map((l) => l.token).join('');
    expect(shown.answers.a.response).toBe(text('a'));
    expect(shown.answers.b.response).toBe(text('b'));
    const run = await (await fetch(`${server.url}/api/runs/${runId}`)).json();
    expect(run.kind).toBe('battle');
    expect(run.instances).toEqual([{ id: 'a', hidden: true }, { id: 'b', hidden: true }]);
    expect(JSON.stringify(run)).not.toContain('stories260K');
    const listed = (await (await fetch(`${server.url}/api/runs?kind=battle`)).json()).runs.find((r: { id: string }) => r.id === runId);
    expect(listed.models).toEqual([]);
    expect((await fetch(`${server.url}/api/runs/${runId}/rerun`, { method: 'POST' })).status).toBe(409);
    const csv = await (await fetch(`${server.url}/api/runs/${runId}/export?format=csv`)).text();
    expect(csv).not.toContain('stories260K');

    // The vote reveals both sides with all their settings.
    const response = await vote(id, 'b');
    expect(response.status).toBe(200);
    const revealed = await response.json();
    expect(revealed).toMatchObject({ id, run_id: runId, winner: 'b' });
    expect(typeof revealed.voted_at).toBe('string');
    const temperatures = [revealed.contestants.a.temperature, revealed.contestants.b.temperature].sort();
    expect(temperatures).toEqual([0.5, 1.2]);
    for (const side of ['a', 'b']) {
      const contestant = revealed.contestants[side];
      expect(contestant).toMatchObject({ model: TEST_MODEL, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: 40 });
      expect(contestant.instance_id).toBe(`stories260K_latest__${contestant.temperature}_0.9_40_1.1_40_${contestant.seed}`);
    }
    const after = await (await fetch(`${server.url}/api/battles/${id}`)).json();
    expect(after).toMatchObject({ status: 'voted', winner: 'b', contestants: revealed.contestants });
    const runAfter = await (await fetch(`${server.url}/api/runs/${runId}`)).json();
    expect(runAfter.battle).toMatchObject({ id, winner: 'b' });
    expect(runAfter.instances.map((i: { model: string }) => i.model)).toEqual([TEST_MODEL, TEST_MODEL]);

    // Exactly one vote per battle.
    const again = await vote(id, 'a');
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: 'This battle has already been voted on' });
  });

  it('accepts exactly one of several concurrent votes', async () => {
    const { id } = await battle({ history, pool: twoModels });
    const responses = await Promise.all(['a', 'b', 'tie', 'both_bad', 'a', 'b'].map((w) => vote(id, w)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409]);
    const winner = (await responses.find((r) => r.status === 200)!.json()).winner;
    expect((await (await fetch(`${server.url}/api/battles/${id}`)).json()).winner).toBe(winner);
  });

  it('draws two configurations of a model when the pool has only that model', async () => {
    const { id, lines } = await battle({ history, pool: [{ model: 'stories260K', num_predict: 6 }] });
    expect(new Set(lines.filter((l) => l.done).map((l) => l.instance_id))).toEqual(new Set(['a', 'b']));
    const { contestants } = await (await vote(id, 'tie')).json();
    expect(contestants.a.model).toBe(TEST_MODEL);
    expect(contestants.b.model).toBe(TEST_MODEL);
    expect(contestants.a.temperature).not.toBe(contestants.b.temperature);
    expect(contestants.a.instance_id).not.toBe(contestants.b.instance_id);
  });

  it('tells contestants apart by their system prompt too', async () => {
    const pool = [
      { model: 'stories260K', num_predict: 6, system: 'Tell happy stories.' },
      { model: 'stories260K', num_predict: 6, system: 'Tell sad stories.' },
    ];
    const { id } = await battle({ history, pool });
    const { contestants } = await (await vote(id, 'a')).json();
    expect(contestants.a.instance_id).not.toBe(contestants.b.instance_id);
    expect(contestants.a.instance_id).toMatch(/__sys_[0-9a-f]{8}$/);
    expect(new Set([contestants.a.system, contestants.b.system])).toEqual(new Set(pool.map((p) => p.system)));
  });

  it('draws from every model when no pool is given, and saves what streamed if the client leaves', async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/api/battles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ history }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const id = response.headers.get('x-battle-id')!;
    const runId = response.headers.get('x-run-id')!;
    for await (const line of ndjsonLines<Line>(response)) {
      expect(['a', 'b']).toContain(line.instance_id);
      break; // leaving the loop cancels the body: the client went away mid-stream
    }
    controller.abort();
    let run;
    for (let i = 0; i < 100; i++) {
      run = await (await fetch(`${server.url}/api/runs/${runId}`)).json();
      if (run.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(run.status).toBe('partial');
    expect(Object.keys(run.answers).sort()).toEqual(['a', 'b']);
    const { contestants } = await (await vote(id, 'both_bad')).json();
    expect(new Set([contestants.a.model, contestants.b.model])).toEqual(new Set([TEST_MODEL, RIVAL]));
    expect(contestants.a).toMatchObject({ temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: -1, seed: 0 });
  });

  it('refuses bad bodies with a 400 and changes nothing', async () => {
    const before = (await (await fetch(`${server.url}/api/runs?limit=1`)).json()).total;
    const cases: [unknown, string][] = [
      [{}, 'No messages provided'],
      [{ history: [] }, 'No messages provided'],
      [{ history, pool: [] }, 'pool must be a non-empty array of model names or model instances'],
      [{ history, pool: 'stories260K' }, 'pool must be a non-empty array of model names or model instances'],
      [{ history, pool: [42] }, 'pool[0] must be a model name or a model instance with a model'],
      [{ history, pool: ['stories260K', 'nope'] }, 'Model not found: nope'],
      [{ history, pool: ['stories260K', 'stories260K:latest'] }, 'Duplicate model instance detected: stories260K_latest__0.7_0.9_40_1.1_-1_0'],
      [{ history, pool: [{ model: 'stories260K', temperature: 5 }] }, 'temperature must be between 0.01 and 2 (got 5, instance 0)'],
    ];
    for (const [body, error] of cases) {
      const response = await postJson(`${server.url}/api/battles`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(await response.json()).toEqual({ error });
    }
    expect((await (await fetch(`${server.url}/api/runs?limit=1`)).json()).total).toBe(before);
  });

  it('answers 400 for a bad winner and 404 for an unknown battle', async () => {
    const { id } = await battle({ history, pool: twoModels });
    for (const body of [{ winner: 'c' }, { winner: 1 }, {}]) {
      const response = await postJson(`${server.url}/api/battles/${id}/vote`, body);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'winner must be one of "a", "b", "tie", "both_bad"' });
    }
    expect((await (await fetch(`${server.url}/api/battles/${id}`)).json()).winner).toBeNull();
    expect((await vote('no-such-battle', 'a')).status).toBe(404);
    const missing = await fetch(`${server.url}/api/battles/no-such-battle`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'Battle not found' });
  });
});

describe('GET /api/leaderboard', () => {
  type Row = { contestant: string; model: string; rating: number; ci_low: number; ci_high: number; rank: number; battles: number; wins: number; losses: number; ties: number; win_rate: number; settings: Record<string, unknown> | null };
  const board = async (by = 'model') => (await fetch(`${server.url}/api/leaderboard?by=${by}`)).json() as Promise<{ by: string; total_battles: number; rows: Row[] }>;

  it('changes with each vote, by model and by configuration', async () => {
    const before = await board('model');
    const { id } = await battle({ history, pool: twoModels });
    const { contestants } = await (await vote(id, 'a')).json();
    const after = await board('model');
    expect(after.total_battles).toBe(before.total_battles + 1);
    const row = (name: string) => after.rows.find((r) => r.contestant === name)!;
    const winner = row(contestants.a.model);
    const loser = row(contestants.b.model);
    expect(winner.wins).toBe((before.rows.find((r) => r.contestant === contestants.a.model)?.wins ?? 0) + 1);
    expect(loser.losses).toBe((before.rows.find((r) => r.contestant === contestants.b.model)?.losses ?? 0) + 1);

    // Ties count half for each side: two of them move both tie counts and nobody's wins.
    for (let i = 0; i < 2; i++) {
      const next = await battle({ history, pool: twoModels });
      expect((await vote(next.id, i === 0 ? 'tie' : 'both_bad')).status).toBe(200);
    }
    const final = await board('model');
    expect(final.total_battles).toBe(after.total_battles + 2);
    expect(final.rows.map((r) => r.contestant).sort()).toEqual([RIVAL, TEST_MODEL].sort());
    for (const r of final.rows) {
      expect(r.ci_low).toBeLessThanOrEqual(r.rating);
      expect(r.ci_high).toBeGreaterThanOrEqual(r.rating);
      expect(r.battles).toBe(r.wins + r.losses + r.ties);
      expect(r.win_rate).toBeCloseTo((r.wins + r.ties / 2) / r.battles, 4);
      expect(r.rank).toBeGreaterThanOrEqual(1);
      expect(r.settings).toBeNull();
    }
    const [top, bottom] = final.rows;
    expect(top!.rating).toBeGreaterThanOrEqual(bottom!.rating);
    expect((top!.rating + bottom!.rating) / 2).toBeCloseTo(1000, 1);
    // More wins than losses between exactly two models means the higher rating.
    const ahead = final.rows.find((r) => r.wins > r.losses);
    if (ahead) expect(ahead).toBe(top);
    for (const r of final.rows) expect(r.ties).toBe((after.rows.find((x) => x.contestant === r.contestant)?.ties ?? 0) + 2);

    const byConfig = await board('config');
    expect(byConfig.by).toBe('config');
    const config = byConfig.rows.find((r) => r.contestant === 'rival_latest__0.7_0.9_40_1.1_8_3')!;
    expect(config.model).toBe(RIVAL);
    expect(config.settings).toMatchObject({ model: RIVAL, num_predict: 8, seed: 3, instance_id: config.contestant });
    // Configurations include the two temperature variants of one model battling each other.
    expect(byConfig.rows.length).toBeGreaterThan(2);
    expect(byConfig.total_battles).toBeGreaterThan(final.total_battles);
  });

  it('refuses an unknown grouping', async () => {
    const response = await fetch(`${server.url}/api/leaderboard?by=colour`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'by must be "model" or "config"' });
  });

  it('documents the routes and their response shapes in the OpenAPI document', async () => {
    const spec = await (await fetch(`${server.url}/docs/json`)).json();
    for (const route of ['/api/battles', '/api/battles/{id}/vote', '/api/battles/{id}', '/api/leaderboard', '/api/runs', '/api/runs/{id}', '/api/runs/{id}/rerun', '/api/runs/{id}/export']) {
      expect(spec.paths[route], route).toBeDefined();
    }
    const rows = spec.paths['/api/leaderboard'].get.responses['200'].content['application/json'].schema.properties.rows;
    expect(Object.keys(rows.items.properties)).toEqual(expect.arrayContaining(['contestant', 'rating', 'ci_low', 'ci_high', 'rank', 'battles', 'wins', 'losses', 'ties', 'win_rate']));
  });

  it('keeps votes across a restart with the same data directory', async () => {
    const byModel = await board('model');
    const byConfig = await board('config');
    const { id } = await battle({ history, pool: twoModels });
    const voted = await (await vote(id, 'b')).json();
    const expected = await board('model');
    expect(expected.total_battles).toBe(byModel.total_battles + 1);
    await server.close();
    server = await startServer({ MODELS_DIR: modelsDir, DATA_DIR: dataDir });
    expect(await board('model')).toEqual(expected);
    expect((await board('config')).total_battles).toBe(byConfig.total_battles + 1);
    const battleAfter = await (await fetch(`${server.url}/api/battles/${id}`)).json();
    expect(battleAfter).toMatchObject({ status: 'voted', winner: 'b', contestants: voted.contestants });
    expect((await vote(id, 'a')).status).toBe(409);
  });
});

describe('on PostgreSQL (DATABASE_URL)', () => {
  let database: TestDatabase;
  let pgServer: RunningServer;
  beforeAll(async () => {
    database = await createPgDatabase();
    pgServer = await startServer({ MODELS_DIR: modelsDir, DATABASE_URL: database.url });
  });
  afterAll(async () => {
    await pgServer?.close();
    await database?.drop();
  });

  it('saves battles and runs, takes one of several concurrent votes, and keeps them across a restart', async () => {
    const response = await postJson(`${pgServer.url}/api/battles`, { history, pool: twoModels });
    const id = response.headers.get('x-battle-id')!;
    const runId = response.headers.get('x-run-id')!;
    for await (const line of ndjsonLines<Line>(response)) expect(['a', 'b']).toContain(line.instance_id);
    const votes = await Promise.all(['a', 'b', 'tie', 'a'].map((w) => postJson(`${pgServer.url}/api/battles/${id}/vote`, { winner: w })));
    expect(votes.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
    const { winner, contestants } = await votes.find((r) => r.status === 200)!.json();
    const leaderboard = await (await fetch(`${pgServer.url}/api/leaderboard`)).json();
    expect(leaderboard.total_battles).toBe(1);
    expect(leaderboard.rows.map((r: { contestant: string }) => r.contestant).sort()).toEqual([RIVAL, TEST_MODEL].sort());

    await pgServer.close();
    pgServer = await startServer({ MODELS_DIR: modelsDir, DATABASE_URL: database.url });
    expect(await (await fetch(`${pgServer.url}/api/leaderboard`)).json()).toEqual(leaderboard);
    expect(await (await fetch(`${pgServer.url}/api/battles/${id}`)).json()).toMatchObject({ status: 'voted', winner, contestants });
    const run = await (await fetch(`${pgServer.url}/api/runs/${runId}`)).json();
    expect(run).toMatchObject({ id: runId, kind: 'battle', status: 'done', battle: { id, winner } });
    expect(run.answers.a.response.length).toBeGreaterThan(0);
    expect((await (await fetch(`${pgServer.url}/api/runs`)).json()).runs.map((r: { id: string }) => r.id)).toEqual([runId]);
  });
});
