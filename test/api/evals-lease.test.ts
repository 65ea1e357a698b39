import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawnServer, startServer, tempDir, type RunningServer, type SpawnedServer } from '../support/server.js';
import { createPgDatabase, testRedis, type TestDatabase } from '../support/stores.js';
import { followEval, getEval, startEval, STORY, type Json } from '../support/evals.js';

/**
 * An evaluation outlives the replica running it: killed (SIGKILL) mid-run, its lease passes and a
 * restarted server on the same SQLite file, or the other replica on PostgreSQL, resumes it with only
 * the cells not stored yet; shut down gracefully, it is handed off at once. Whether a stored cell ran
 * again is read from the resuming server's generation counter.
 */

const PROMPTS = ['Once upon a time', 'The dog', 'A little girl', 'The sun was', 'In the park', 'The cat sat'];
/** 6 prompts × 4 seeds × 2 repeats = 48 cells: long enough to be caught mid-run, short enough to finish. */
const suite = (extra: Record<string, unknown> = {}) => ({
  name: 'lease',
  prompts: PROMPTS,
  model_instances: [1, 2, 3, 4].map((seed) => ({ ...STORY, num_predict: 24, seed })),
  repeats: 2,
  concurrency: 2,
  ...extra,
});
const CELLS = 48;

type StoredCell = { prompt_index: number; instance_id: string; repeat: number; answer: string; created_at: string; judge: string | null };
const key = (c: { prompt_index: number; instance_id: string; repeat: number }) => `${c.prompt_index}/${c.instance_id}/${c.repeat}`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every generation this server ran (each cell and each judgement is one). */
async function generations(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('arena_generations_total{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

function sqliteCells(dataDir: string, id: string): StoredCell[] {
  const db = new Database(path.join(dataDir, 'arena.db'));
  try {
    return db.prepare('SELECT prompt_index, instance_id, repeat, answer, created_at, judge FROM eval_cells WHERE eval_id = ?').all(id) as StoredCell[];
  } finally {
    db.close();
  }
}

async function pgCells(url: string, id: string): Promise<StoredCell[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<StoredCell>('SELECT prompt_index, instance_id, repeat, answer, created_at, judge FROM eval_cells WHERE eval_id = $1', [id])).rows;
  } finally {
    await client.end();
  }
}

async function kill(server: SpawnedServer): Promise<void> {
  expect(await server.stop('SIGKILL')).toBeNull();
}

/** The resumed evaluation: done, every cell of the plan once, the cells stored before untouched. */
function expectComplete(evaluation: Json, before: StoredCell[], after: StoredCell[]): void {
  expect(evaluation.status).toBe('done');
  expect(evaluation.progress).toEqual({ done: evaluation.progress.total, total: evaluation.progress.total });
  expect(evaluation.cells).toHaveLength(CELLS);
  expect(new Set(evaluation.cells.map(key)).size).toBe(CELLS);
  expect(after).toHaveLength(CELLS);
  const now = new Map(after.map((c) => [key(c), c]));
  for (const cell of before) expect(now.get(key(cell))).toMatchObject({ answer: cell.answer, created_at: cell.created_at });
}

describe('an evaluation whose server is killed, on SQLite', () => {
  const servers: SpawnedServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop('SIGKILL')));
  });

  it('is resumed by the server restarted on the same file once its lease passes: every cell once, none stored run again', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, EVAL_LEASE_RENEW_SECONDS: '0.25', EVAL_LEASE_EXPIRY_SECONDS: '1.5' };
    const first = await spawnServer(env);
    servers.push(first);
    const id = await startEval(first.url, suite());
    await waitFor('cells stored', async () => (await getEval(first.url, id)).cells.length >= 3);
    await kill(first);

    const before = sqliteCells(dataDir, id);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.length).toBeLessThan(CELLS);

    const second = await spawnServer(env);
    servers.push(second);
    // The stream of an evaluation nobody runs yet waits for the resume rather than ending.
    const events = await followEval(second.url, id);
    expect(events.at(-1)).toEqual({ type: 'end', status: 'done' });
    const evaluation = await getEval(second.url, id);
    expectComplete(evaluation, before, sqliteCells(dataDir, id));
    // Only the cells missing at the kill ran again (the ones in flight then had not been stored).
    expect(await generations(second.url)).toBe(CELLS - before.length);
  }, 240_000);
});

describe('an evaluation whose replica is killed, on PostgreSQL and Redis', () => {
  let database: TestDatabase;
  const redis = testRedis();
  const servers: SpawnedServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop('SIGKILL')));
    await database?.drop();
    await redis.cleanup();
  });

  it('is claimed and resumed by the other replica, whose followers see it through to done', async () => {
    database = await createPgDatabase();
    // The expiry leaves time to read what the killed replica stored before the other one claims it.
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix, EVAL_LEASE_RENEW_SECONDS: '0.25', EVAL_LEASE_EXPIRY_SECONDS: '4' };
    const [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
    servers.push(a, b);
    const id = await startEval(a.url, suite());
    // Followed on the replica that will resume it: the killed one's events, then its own.
    const followed = followEval(b.url, id);
    await waitFor('cells stored', async () => (await getEval(b.url, id)).cells.length >= 3);
    await kill(a);
    const before = await pgCells(database.url, id);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.length).toBeLessThan(CELLS);

    const events = await followed;
    expect(events.at(-1)).toEqual({ type: 'end', status: 'done' });
    // The resume says so (running again) and its cells arrive live.
    const resumedAt = events.findLastIndex((e) => e.type === 'status' && e.status === 'running');
    const resumedCells = events.slice(resumedAt).filter((e) => e.type === 'cell');
    expect(resumedCells.length).toBe(CELLS - before.length);
    const stored = new Set(before.map(key));
    for (const event of resumedCells) expect(stored.has(key(event.cell))).toBe(false);

    expectComplete(await getEval(b.url, id), before, await pgCells(database.url, id));
    expect(await generations(b.url)).toBe(CELLS - before.length);
  }, 240_000);
});

describe('an evaluation whose server shuts down gracefully', () => {
  const running: RunningServer[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.close()));
  });
  // A long expiry: a resume well within it shows the lease was released, not waited out.
  const env = (dataDir: string) => ({ DATA_DIR: dataDir, EVAL_LEASE_RENEW_SECONDS: '0.25', EVAL_LEASE_EXPIRY_SECONDS: '600' });

  it('is handed off, not cancelled: the restarted server resumes it at once and skips the judgements already stored', async () => {
    const dataDir = tempDir();
    const first = await startServer(env(dataDir));
    running.push(first);
    const judged = suite({ judge: { mode: 'score', model: 'stories260K', rubric: 'Rate the story from 1 to 10.', num_predict: 48, seed: 1 }, concurrency: 1 });
    const id = await startEval(first.url, judged);
    // Stopped while judging: some verdicts stored, not all.
    await waitFor('judgements stored', async () => {
      const { progress } = await getEval(first.url, id);
      return progress.done >= CELLS + 3;
    });
    running.splice(0);
    await first.close();
    const before = sqliteCells(dataDir, id);
    const verdicts = before.filter((c) => c.judge !== null).length;
    expect(before).toHaveLength(CELLS);
    expect(verdicts).toBeGreaterThanOrEqual(3);
    expect(verdicts).toBeLessThan(CELLS);

    const started = Date.now();
    const second = await startServer(env(dataDir));
    running.push(second);
    const events = await followEval(second.url, id);
    expect(events.at(-1)).toEqual({ type: 'end', status: 'done' });
    expect(Date.now() - started).toBeLessThan(120_000);
    const evaluation = await getEval(second.url, id);
    expect(evaluation.progress).toEqual({ done: 2 * CELLS, total: 2 * CELLS });
    expectComplete(evaluation, before, sqliteCells(dataDir, id));
    for (const cell of evaluation.cells) expect(cell.judge).not.toBeNull();
    // No cell ran again and only the missing verdicts were asked for.
    expect(await generations(second.url)).toBe(CELLS - verdicts);
  }, 240_000);

  it('is cancelled on the server that resumed it, which stops running its cells', async () => {
    const dataDir = tempDir();
    const first = await startServer(env(dataDir));
    const id = await startEval(first.url, suite({ concurrency: 1 }));
    await waitFor('cells stored', async () => (await getEval(first.url, id)).cells.length >= 2);
    await first.close();
    const second = await startServer(env(dataDir));
    running.push(second);
    const resumedCells = (await waitFor('the resumed cells', async () => {
      const evaluation = await getEval(second.url, id);
      return evaluation.status === 'running' && (await generations(second.url)) >= 2 ? evaluation : undefined;
    })) as Json;
    expect(resumedCells.cells.length).toBeLessThan(CELLS);
    const response = await fetch(`${second.url}/api/evals/${id}/cancel`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Json).status).toBe('cancelled');
    const events = await followEval(second.url, id);
    expect(events.at(-1)).toEqual({ type: 'end', status: 'cancelled' });
    // The job has stopped: nothing is generating for it any more.
    await waitFor('generations to stop', async () => /^arena_generations_running 0$/m.test(await (await fetch(`${second.url}/metrics`)).text()));
    const evaluation = await getEval(second.url, id);
    expect(evaluation.status).toBe('cancelled');
    expect(evaluation.cells.length).toBeLessThan(CELLS);
  }, 240_000);
});
