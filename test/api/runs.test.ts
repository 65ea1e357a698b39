import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { parseCsv } from '../support/csv.js';

/**
 * Run history end to end: every comparison (streamed or not) is saved with its settings, answers and
 * metrics; runs are listed, shown, re-run and exported. The real server, model and SQLite file.
 */

let server: RunningServer;
const history = [
  { role: 'system', content: 'You tell stories.' },
  { role: 'user', content: 'Tell me a story about a cat, "Tom", who says: hi, there' },
];
const instances = [
  { id: 'calm', model: 'stories260K', temperature: 0.3, num_predict: 6, seed: 11 },
  { model: 'stories260K', temperature: 1.1, top_k: 20, num_predict: 5, seed: 12, system: '=cmd|" a spreadsheet formula' },
];
const SECOND_ID = 'stories260K__1.1_0.9_20_1.1_5_12'; // ids are built from the name as given

type Line = { instance_id?: string; model?: string; token: string; done: boolean; metrics?: Record<string, number>; error?: string };
type Run = {
  id: string;
  kind: string;
  status: string;
  created_at: string;
  finished_at: string | null;
  rerun_of: string | null;
  legacy: boolean;
  history: unknown[];
  instances: Record<string, unknown>[];
  answers: Record<string, { response: string; metrics: Record<string, number> | null; error: string | null }>;
  battle: unknown;
};

const getRun = async (id: string): Promise<Run> => (await fetch(`${server.url}/api/runs/${id}`)).json() as Promise<Run>;

async function streamed(url: string, body?: unknown): Promise<{ runId: string; lines: Line[] }> {
  // A re-run takes no body: it is posted bare, as a browser button would.
  const response = body === undefined ? await fetch(url, { method: 'POST' }) : await postJson(url, body);
  expect(response.status).toBe(200);
  const runId = response.headers.get('x-run-id');
  expect(runId).toBeTruthy();
  const lines: Line[] = [];
  for await (const line of ndjsonLines<Line>(response)) lines.push(line);
  return { runId: runId!, lines };
}

function textOf(lines: Line[], key: 'instance_id' | 'model', id: string): string {
  return lines.filter((l) => l[key] === id && !l.done).map((l) => l.token).join('');
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

describe('saving comparisons', () => {
  let streamedRun: { runId: string; lines: Line[] };

  beforeAll(async () => {
    streamedRun = await streamed(`${server.url}/api/stream_chat`, { history, model_instances: instances });
  });

  it('saves a streamed comparison with every setting, the answers and their metrics', async () => {
    const run = await getRun(streamedRun.runId);
    expect(run).toMatchObject({ id: streamedRun.runId, kind: 'comparison', status: 'done', rerun_of: null, legacy: false, history, battle: null });
    expect(typeof run.finished_at).toBe('string');
    expect(Date.parse(run.created_at)).toBeLessThanOrEqual(Date.parse(run.finished_at!));
    expect(run.instances).toEqual([
      { id: 'calm', model: TEST_MODEL, temperature: 0.3, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: 6, seed: 11 },
      { id: SECOND_ID, model: TEST_MODEL, temperature: 1.1, top_p: 0.9, top_k: 20, repeat_penalty: 1.1, num_predict: 5, seed: 12, system: instances[1]!.system },
    ]);
    for (const id of ['calm', SECOND_ID]) {
      const answer = run.answers[id]!;
      expect(answer.response).toBe(textOf(streamedRun.lines, 'instance_id', id));
      expect(answer.response.length).toBeGreaterThan(0);
      expect(answer.error).toBeNull();
      const done = streamedRun.lines.find((l) => l.instance_id === id && l.done)!;
      expect(answer.metrics).toEqual(done.metrics);
      expect(answer.metrics!.tokens).toBeGreaterThan(0);
    }
  });

  it('saves a non-streamed /api/chat comparison and names it in X-Run-Id', async () => {
    const response = await postJson(`${server.url}/api/chat`, { history, model_instances: instances, stream: false });
    expect(response.status).toBe(200);
    const runId = response.headers.get('x-run-id')!;
    const body = await response.json();
    const run = await getRun(runId);
    expect(run).toMatchObject({ kind: 'comparison', status: 'done', legacy: false });
    expect(run.instances.map((i) => i.id)).toEqual(['calm', SECOND_ID]);
    expect(run.answers.calm!.response).toBe(body.results.calm.response);
    expect(run.answers[SECOND_ID]!.metrics).toEqual(body.results[SECOND_ID].metrics);
  });

  it('saves what had streamed when the client disconnects', async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/api/stream_chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ history, model_instances: [{ id: 'long', model: 'stories260K', num_predict: 400, seed: 5 }] }),
      signal: controller.signal,
    });
    const runId = response.headers.get('x-run-id')!;
    // The run exists as soon as its id is announced, before any answer is complete.
    const early = await getRun(runId);
    expect(early.status).toBe('running');
    expect(early.instances.map((i) => i.id)).toEqual(['long']);
    let received = '';
    for await (const line of ndjsonLines<Line>(response)) {
      received += line.token;
      if (received.length > 5) break;
    }
    controller.abort();
    let run = await getRun(runId);
    for (let i = 0; i < 100 && run.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      run = await getRun(runId);
    }
    expect(run.status).toBe('partial');
    expect(run.answers.long!.error).toBe('cancelled');
    expect(run.answers.long!.response.startsWith(received)).toBe(true);
    expect(run.answers.long!.response.length).toBeLessThan(2000);
  });

  it('finishes the run when the client leaves before the response is read', async () => {
    const prompt = `Leave at once ${Date.now()}`;
    const body = JSON.stringify({ history: [{ role: 'user', content: prompt }], model_instances: [{ model: 'stories260K', num_predict: 400 }] });
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /api/stream_chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.destroy();
    let run: { status: string; prompt: string } | undefined;
    for (let i = 0; i < 100; i++) {
      run = (await (await fetch(`${server.url}/api/runs?limit=5`)).json()).runs.find((r: { prompt: string }) => r.prompt === prompt);
      if (run && run.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(run?.status).toBe('partial');
  });

  it('does not save a request it refuses', async () => {
    const before = (await (await fetch(`${server.url}/api/runs`)).json()).total;
    const response = await postJson(`${server.url}/api/stream_chat`, { history, model_instances: [{ model: 'nope' }] });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-run-id')).toBeNull();
    expect((await (await fetch(`${server.url}/api/runs`)).json()).total).toBe(before);
  });
});

describe('GET /api/runs', () => {
  it('lists runs newest first with limit and offset', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { runId } = await streamed(`${server.url}/api/stream_chat`, {
        history: [{ role: 'user', content: `Story number ${i}` }],
        model_instances: [{ model: 'stories260K', num_predict: 2 }],
      });
      ids.push(runId);
    }
    const first = await (await fetch(`${server.url}/api/runs?limit=2`)).json();
    expect(first.limit).toBe(2);
    expect(first.offset).toBe(0);
    expect(first.total).toBeGreaterThanOrEqual(3);
    expect(first.runs.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    expect(first.runs[0]).toMatchObject({ kind: 'comparison', status: 'done', prompt: 'Story number 2', models: [TEST_MODEL], instance_count: 1, battle: null, rerun_of: null });
    const second = await (await fetch(`${server.url}/api/runs?limit=2&offset=2`)).json();
    expect(second.runs[0].id).toBe(ids[0]);
    const all = await (await fetch(`${server.url}/api/runs?limit=100`)).json();
    const created = all.runs.map((r: { created_at: string }) => r.created_at);
    expect([...created].sort().reverse()).toEqual(created);
    expect((await (await fetch(`${server.url}/api/runs?kind=battle`)).json()).runs).toEqual([]);
  });

  it('refuses bad paging with a 400 and unknown runs with a 404', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'offset=-1', 'limit=1.5']) {
      const response = await fetch(`${server.url}/api/runs?${query}`);
      expect(response.status, query).toBe(400);
      expect((await response.json()).error).toMatch(/^(limit|offset) must be an integer between/);
    }
    expect((await fetch(`${server.url}/api/runs?kind=other`)).status).toBe(400);
    for (const path of ['/api/runs/nope', '/api/runs/nope/export']) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: 'Run not found' });
    }
    expect((await fetch(`${server.url}/api/runs/nope/rerun`, { method: 'POST' })).status).toBe(404);
  });
});

describe('re-run and export', () => {
  let original: { runId: string; lines: Line[] };
  beforeAll(async () => {
    original = await streamed(`${server.url}/api/stream_chat`, { history, model_instances: instances });
  });

  it('re-runs with the same settings as a new run, streamed like stream_chat', async () => {
    const rerun = await streamed(`${server.url}/api/runs/${original.runId}/rerun`);
    expect(rerun.runId).not.toBe(original.runId);
    for (const id of ['calm', SECOND_ID]) {
      expect(rerun.lines.filter((l) => l.instance_id === id && l.done)).toHaveLength(1);
      expect(rerun.lines.every((l) => l.model === TEST_MODEL)).toBe(true);
    }
    const [before, after] = [await getRun(original.runId), await getRun(rerun.runId)];
    expect(after).toMatchObject({ kind: 'comparison', status: 'done', rerun_of: original.runId, history: before.history, instances: before.instances });
    // A fixed seed with the same settings gives the same answer.
    expect(after.answers.calm!.response).toBe(before.answers.calm!.response);
  });

  it('re-runs a legacy comparison keyed by model name', async () => {
    const legacy = await streamed(`${server.url}/api/stream_chat`, { history, models: ['stories260K'] });
    // Legacy lines carry the name as the client wrote it, the re-run's too.
    expect(legacy.lines.every((l) => l.model === 'stories260K' && l.instance_id === undefined)).toBe(true);
    const rerun = await streamed(`${server.url}/api/runs/${legacy.runId}/rerun`);
    expect(rerun.lines.every((l) => l.model === 'stories260K' && l.instance_id === undefined)).toBe(true);
    expect((await getRun(rerun.runId)).legacy).toBe(true);
  });

  it('exports JSON', async () => {
    const response = await fetch(`${server.url}/api/runs/${original.runId}/export?format=json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="run-${original.runId}.json"`);
    expect(await response.json()).toEqual(await getRun(original.runId));
    // JSON is the default format.
    expect((await fetch(`${server.url}/api/runs/${original.runId}/export`)).headers.get('content-type')).toContain('application/json');
  });

  it('exports CSV, one row per instance, quoted and safe for spreadsheets', async () => {
    const response = await fetch(`${server.url}/api/runs/${original.runId}/export?format=csv`);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="run-${original.runId}.csv"`);
    const rows = parseCsv(await response.text());
    const [header, ...data] = rows;
    expect(header).toEqual(['run_id', 'created_at', 'kind', 'status', 'instance_id', 'model', 'temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed', 'system', 'prompt', 'response', 'tokens', 'duration_s', 'tokens_per_sec', 'ttft_s', 'error', 'winner', 'turn']);
    expect(data).toHaveLength(2);
    const run = await getRun(original.runId);
    const record = (row: string[]) => Object.fromEntries(header!.map((name, i) => [name, row[i]]));
    const calm = record(data[0]!);
    expect(calm).toMatchObject({ run_id: original.runId, instance_id: 'calm', model: TEST_MODEL, temperature: '0.3', num_predict: '6', seed: '11', prompt: history[1]!.content, tokens: String(run.answers.calm!.metrics!.tokens), error: '', winner: '', turn: '1' });
    expect(calm.response).toBe(run.answers.calm!.response.replace(/^([=+\-@])/, "'$1"));
    const second = record(data[1]!);
    expect(second).toMatchObject({ instance_id: SECOND_ID, top_k: '20', system: `'${instances[1]!.system}` });
  });

  it('exports Markdown', async () => {
    const response = await fetch(`${server.url}/api/runs/${original.runId}/export?format=md`);
    expect(response.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="run-${original.runId}.md"`);
    const markdown = await response.text();
    const run = await getRun(original.runId);
    expect(markdown).toContain(`# Comparison ${original.runId}`);
    expect(markdown).toContain('| calm | stories260K:latest | 0.3 | 0.9 | 40 | 1.1 | 6 | 11 |');
    expect(markdown).toContain(`### ${SECOND_ID}`);
    expect(markdown).toContain(run.answers.calm!.response);
    expect(markdown).toContain(history[1]!.content);
  });

  it('refuses an unknown export format', async () => {
    const response = await fetch(`${server.url}/api/runs/${original.runId}/export?format=pdf`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'format must be json, csv or md' });
  });
});

describe('with API keys', () => {
  const ADMIN = 'admin-secret-token';
  let keyed: RunningServer;
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  async function createKey(body: Record<string, unknown>): Promise<string> {
    const response = await postJson(`${keyed.url}/api/admin/keys`, body, as(ADMIN));
    expect(response.status).toBe(201);
    return (await response.json()).key;
  }

  beforeAll(async () => {
    keyed = await startServer({ WEB_CHAT_TOKEN: ADMIN });
  });
  afterAll(async () => {
    await keyed.close();
  });

  it('shows a key only its own runs and battles; the admin sees all', async () => {
    const [alice, bob] = [await createKey({ name: 'alice' }), await createKey({ name: 'bob' })];
    const response = await postJson(`${keyed.url}/api/stream_chat`, { history, model_instances: [{ model: 'stories260K', num_predict: 3 }] }, as(alice));
    const runId = response.headers.get('x-run-id')!;
    await response.text();
    const battle = await postJson(`${keyed.url}/api/battles`, { history, pool: [{ model: 'stories260K', num_predict: 3 }] }, as(alice));
    const battleId = battle.headers.get('x-battle-id')!;
    await battle.text();

    const list = async (token: string) => (await (await fetch(`${keyed.url}/api/runs`, { headers: as(token) })).json()).runs.map((r: { id: string }) => r.id);
    expect(await list(alice)).toContain(runId);
    expect(await list(bob)).toEqual([]);
    expect(await list(ADMIN)).toContain(runId);
    for (const path of [`/api/runs/${runId}`, `/api/runs/${runId}/export?format=md`, `/api/battles/${battleId}`]) {
      expect((await fetch(`${keyed.url}${path}`, { headers: as(bob) })).status, path).toBe(404);
      expect((await fetch(`${keyed.url}${path}`, { headers: as(alice) })).status, path).toBe(200);
    }
    expect((await fetch(`${keyed.url}/api/runs/${runId}/rerun`, { method: 'POST', headers: as(bob) })).status).toBe(404);
    expect((await postJson(`${keyed.url}/api/battles/${battleId}/vote`, { winner: 'a' }, as(bob))).status).toBe(404);
    expect((await postJson(`${keyed.url}/api/battles/${battleId}/vote`, { winner: 'a' }, as(alice))).status).toBe(200);
  });

  it("keeps battles within a key's model allow-list", async () => {
    const limited = await createKey({ name: 'limited', models: ['some-other-model'] });
    const byPool = await postJson(`${keyed.url}/api/battles`, { history, pool: ['stories260K'] }, as(limited));
    expect(byPool.status).toBe(403);
    // Refused before the pool is resolved, under the name the client wrote, as on every other route.
    expect(await byPool.json()).toEqual({ error: "This API key is not allowed to use model 'stories260K'" });
    const byDefault = await postJson(`${keyed.url}/api/battles`, { history }, as(limited));
    expect(byDefault.status).toBe(400);
    expect(await byDefault.json()).toEqual({ error: 'No models available for a battle' });
  });
});
