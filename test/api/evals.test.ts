import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, startServer, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';
import { followEval, getEval, runEval, startEval, STORY, type Json } from '../support/evals.js';
import { wilson } from '../../src/arena/evals/summary.js';

/**
 * Evaluations against the real server and the real story model, on SQLite and PostgreSQL: exact pass
 * rates from assertions whose outcome is known, live events (NDJSON and SSE), exports, re-runs,
 * cancelling mid-run and the 400s of bad suites.
 */

describe.each(STORES)('evaluations on $store', ({ setup }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const store = await setup();
    cleanup = store.cleanup;
    server = await startServer(store.env);
  });
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
  });

  const suite = {
    name: 'stories',
    prompts: [{ prompt: 'Once upon a time' }, { messages: [{ role: 'user', content: 'Tell me about a {{animal}}' }], vars: { animal: 'cat' }, reference: 'A cat story' }],
    model_instances: [{ ...STORY, temperature: 0.2, seed: 1 }],
    grid: { model: ['stories260K'], temperature: [0.7, 1.2], seed: [1, 2], num_predict: [8] },
    repeats: 2,
    assert: [{ type: 'regex', value: '\\w' }, { type: 'not_contains', value: 'zebra' }],
    threshold: { pass_rate: 0.9 },
    concurrency: 4,
  };

  it('runs every cell, and assertions with known outcomes give exact pass rates and Wilson intervals', async () => {
    const evaluation = await runEval(server.url, suite);
    expect(evaluation.status).toBe('done');
    expect(evaluation.progress).toEqual({ done: 20, total: 20 });
    expect(evaluation.cells).toHaveLength(2 * 5 * 2);
    expect(evaluation.instances.map((i: Json) => i.id)).toEqual([
      'stories260K__0.2_0.9_40_1.1_8_1',
      'stories260K__0.7_0.9_40_1.1_8_1',
      'stories260K__0.7_0.9_40_1.1_8_2',
      'stories260K__1.2_0.9_40_1.1_8_1',
      'stories260K__1.2_0.9_40_1.1_8_2',
    ]);
    const [low, high] = wilson(4, 4);
    for (const row of evaluation.summary) {
      expect(row).toMatchObject({ cells: 4, passed: 4, pass_rate: 1, meets_threshold: true, errors: 0 });
      expect(row.pass_rate_low).toBeCloseTo(low, 4);
      expect(row.pass_rate_high).toBe(1);
      expect(row.latency_mean_s).toBeGreaterThan(0);
      expect(row.tokens_per_sec_mean).toBeGreaterThan(0);
    }
    expect(high).toBe(1);
    expect(evaluation.passed).toBe(true);
    for (const cell of evaluation.cells) {
      expect(cell.answer).toMatch(/\w/);
      expect(cell.metrics.tokens).toBeGreaterThan(0);
      expect(cell.assertions).toEqual([{ type: 'regex', pass: true }, { type: 'not_contains', pass: true }]);
    }
    // A fixed seed makes both repeats of a configuration write the same answer.
    const answers = (p: number, r: number) => evaluation.cells.find((c: Json) => c.prompt_index === p && c.repeat === r && c.instance_id === 'stories260K__0.7_0.9_40_1.1_8_1').answer;
    expect(answers(0, 0)).toBe(answers(0, 1));
    // Variables are filled in before the prompt is sent.
    expect(evaluation.prompts[1].messages[0].content).toBe('Tell me about a cat');
  });

  it('gives a pass rate of 0 and a failing threshold for an assertion no answer meets, and mixed rates per prompt', async () => {
    const evaluation = await runEval(server.url, {
      prompts: [{ prompt: 'Once upon a time', assert: [{ type: 'contains', value: 'zzqqxx' }] }, { prompt: 'Tell me about a dog' }, { prompt: 'The sun' }],
      model_instances: [{ ...STORY, seed: 3 }],
      assert: [{ type: 'max_tokens', value: 8 }, { type: 'is_json' }],
      threshold: { pass_rate: 0.5 },
    });
    const [row] = evaluation.summary;
    // No story is JSON: every cell fails; the contains assertion fails on its one prompt only.
    expect(row).toMatchObject({ cells: 3, passed: 0, pass_rate: 0, pass_rate_low: 0, meets_threshold: false });
    expect(row.pass_rate_high).toBeCloseTo(wilson(0, 3)[1], 4);
    expect(evaluation.passed).toBe(false);
    const first = evaluation.cells.find((c: Json) => c.prompt_index === 0);
    expect(first.assertions).toEqual([{ type: 'max_tokens', pass: true, score: 8 }, { type: 'is_json', pass: false }, { type: 'contains', pass: false }]);
  });

  it('streams progress as NDJSON and as SSE, then ends', async () => {
    const id = await startEval(server.url, { prompts: ['Once upon a time', 'A dog'], model_instances: [STORY, { ...STORY, temperature: 1.1 }] });
    const sse = fetch(`${server.url}/api/evals/${id}/events`, { headers: { accept: 'text/event-stream' } });
    const events = await followEval(server.url, id);
    expect(events[0]).toMatchObject({ type: 'snapshot', progress: { total: 4 } });
    const cells = events.filter((e) => e.type === 'cell');
    // The feed may join after the first cells: the snapshot's count plus the cell events make the whole.
    expect(events[0]!.progress.done + cells.length).toBe(4);
    expect(cells.at(-1)!.progress).toEqual({ done: 4, total: 4 });
    expect(events.at(-1)).toEqual({ type: 'end', status: 'done' });
    const response = await sse;
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const frames = text.split('\n\n').filter(Boolean);
    expect(frames.every((f) => f.startsWith('data: '))).toBe(true);
    expect(JSON.parse(frames.at(-1)!.slice(6))).toEqual({ type: 'end', status: 'done' });
    // A finished evaluation's feed gives its state and ends at once.
    const late = await followEval(server.url, id);
    expect(late).toEqual([{ type: 'snapshot', status: 'done', progress: { done: 4, total: 4 } }, { type: 'end', status: 'done' }]);
  });

  it('gives every feed that joins mid-run its snapshot first, and each cell once', async () => {
    const id = await startEval(server.url, { prompts: ['Once upon a time', 'A dog', 'The sun', 'A cat'], model_instances: [STORY, { ...STORY, temperature: 1.1 }], repeats: 2, concurrency: 4 });
    const total = 16;
    // A feed joins at each cell event of the first one, when a next cell is most likely being stored.
    const joined: Promise<Json[]>[] = [];
    const first = await fetch(`${server.url}/api/evals/${id}/events`);
    for await (const event of ndjsonLines<Json>(first)) {
      if (event.type === 'cell') joined.push(followEval(server.url, id));
      if (event.type === 'end') break;
    }
    expect(joined.length).toBeGreaterThan(0);
    for (const events of await Promise.all(joined)) {
      expect(events[0]).toMatchObject({ type: 'snapshot' });
      const cells = events.filter((e) => e.type === 'cell');
      const keys = new Set(cells.map((e) => `${e.cell.prompt_index}/${e.cell.instance_id}/${e.cell.repeat}`));
      expect(keys.size).toBe(cells.length);
      expect(events[0]!.progress.done + cells.length).toBe(total);
      expect(events.at(-1)).toEqual({ type: 'end', status: 'done' });
    }
  });

  it('exports JSON, CSV and Markdown, lists, and re-runs the failed cells', async () => {
    const id = await startEval(server.url, { name: 'exp', prompts: ['Once upon a time', 'A dog'], model_instances: [STORY], assert: [{ type: 'contains', value: 'zzqq' }] });
    await followEval(server.url, id);
    const json = await fetch(`${server.url}/api/evals/${id}/export?format=json`);
    expect(json.headers.get('content-type')).toContain('application/json');
    expect(((await json.json()) as Json).cells).toHaveLength(2);
    const csv = await fetch(`${server.url}/api/evals/${id}/export?format=csv`);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toMatch(/^eval_id,prompt_index,prompt,instance_id,model,repeat,pass,failed_assertions,answer/);
    expect(rows).toHaveLength(3);
    const md = await (await fetch(`${server.url}/api/evals/${id}/export?format=md`)).text();
    expect(md).toContain('# Evaluation: exp');
    expect(md).toContain('| stories260K__0.7_0.9_40_1.1_8_0 | 0.0% (0/2)');
    expect((await fetch(`${server.url}/api/evals/${id}/export?format=xml`)).status).toBe(400);

    const listed = (await (await fetch(`${server.url}/api/evals?limit=200&offset=0`)).json()) as Json;
    expect(listed.evaluations.map((e: Json) => e.id)).toContain(id);
    expect((await fetch(`${server.url}/api/evals?limit=0`)).status).toBe(400);

    const rerun = await postJson(`${server.url}/api/evals/${id}/rerun`, { failed_only: true });
    expect(rerun.status).toBe(201);
    const again = (await rerun.json()) as Json;
    expect(again.progress.total).toBe(2);
    await followEval(server.url, again.id);
    expect(await getEval(server.url, again.id)).toMatchObject({ rerun_of: id, status: 'done', progress: { done: 2, total: 2 } });
  });

  it('cancels mid-run and keeps a consistent record: finished cells only, progress equal to them', async () => {
    const id = await startEval(server.url, { prompts: Array.from({ length: 12 }, (_, i) => `Story number ${i}`), model_instances: [{ model: 'stories260K', num_predict: 64, seed: 5 }], concurrency: 1 });
    const response = await fetch(`${server.url}/api/evals/${id}/events`);
    const { ndjsonLines } = await import('../support/server.js');
    const seen: Json[] = [];
    for await (const event of ndjsonLines<Json>(response)) {
      seen.push(event);
      if (event.type === 'cell') break;
    }
    const cancelled = await postJson(`${server.url}/api/evals/${id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as Json).status).toBe('cancelled');
    const events = await followEval(server.url, id);
    expect(events.at(-1)).toEqual({ type: 'end', status: 'cancelled' });
    const evaluation = await getEval(server.url, id);
    expect(evaluation.status).toBe('cancelled');
    expect(evaluation.cells.length).toBeLessThan(12);
    expect(evaluation.progress).toEqual({ done: evaluation.cells.length, total: 12 });
    for (const cell of evaluation.cells) expect(cell).toMatchObject({ error: null, metrics: expect.objectContaining({ tokens: expect.any(Number) }) });
    expect((await postJson(`${server.url}/api/evals/${id}/cancel`, {})).status).toBe(409);
  });

  it('refuses bad suites with a clear 400 and creates nothing', async () => {
    const before = ((await (await fetch(`${server.url}/api/evals`)).json()) as Json).total;
    const cases: [unknown, RegExp][] = [
      [{}, /no prompts/],
      [{ prompts: [], model_instances: [STORY] }, /no prompts/],
      [{ prompts: ['x'] }, /no configurations/],
      [{ prompts: ['x'], model_instances: [{ model: 'no-such-model' }] }, /Model not found: no-such-model/],
      [{ prompts: ['x'], grid: { model: ['stories260K'], seed: Array.from({ length: 30 }, (_, i) => i), temperature: [0.5, 1, 1.5] } }, /expands to 90 configurations; at most 64/],
      [{ prompts: ['x'], model_instances: [STORY], assert: [{ type: 'regex', value: '(' }] }, /assert\[0\]/],
      [{ prompts: ['x'], model_instances: [STORY], assert: [{ type: 'javascript', value: 'process.exit()' }] }, /unknown assertion type/],
      [{ prompts: ['x'], model_instances: [STORY], judge: { mode: 'pairwise', model: 'stories260K', rubric: 'r' } }, /at least two configurations/],
      [{ prompts: ['x'], model_instances: [{ ...STORY, temperature: 9 }] }, /temperature must be between/],
      [{ prompts: ['x'], model_instances: [STORY], repeats: 0 }, /repeats must be/],
    ];
    for (const [body, message] of cases) {
      const response = await postJson(`${server.url}/api/evals`, body);
      const answer = (await response.json()) as Json;
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(answer.error).toMatch(message);
    }
    const empty = await fetch(`${server.url}/api/evals`, { method: 'POST' });
    expect(empty.status).toBe(400);
    expect(((await (await fetch(`${server.url}/api/evals`)).json()) as Json).total).toBe(before);
    expect((await fetch(`${server.url}/api/evals/nope`)).status).toBe(404);
  });

  it('accepts the same suite as YAML', async () => {
    const yaml = 'name: yaml suite\nprompts:\n  - Once upon a time\nmodel_instances:\n  - model: stories260K\n    num_predict: 4\n    seed: 1\nassert:\n  - type: regex\n    value: "\\\\w"\n';
    const response = await fetch(`${server.url}/api/evals`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as Json;
    await followEval(server.url, id);
    expect(await getEval(server.url, id)).toMatchObject({ name: 'yaml suite', status: 'done', summary: [{ pass_rate: 1 }] });
  });

  it('documents every evaluation route in the OpenAPI document', async () => {
    const paths = Object.keys(((await (await fetch(`${server.url}/docs/json`)).json()) as Json).paths);
    for (const route of ['/api/evals', '/api/evals/{id}', '/api/evals/{id}/events', '/api/evals/{id}/cancel', '/api/evals/{id}/rerun', '/api/evals/{id}/export']) expect(paths).toContain(route);
  });
});
