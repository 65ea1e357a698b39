import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';
import { followEval, getEval, startEval, STORY, type Json } from '../support/evals.js';

/**
 * Evaluations and API keys: a key runs suites only on the models it is allowed (every model a suite
 * names, wherever it names it), sees only its own evaluations, and every generation counts in its
 * usage under the surface `evals`.
 */

const ADMIN = 'admin-token-for-evals';
const admin = { authorization: `Bearer ${ADMIN}` };

describe.each(STORES)('evaluations and API keys on $store', ({ setup }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;
  let alice: Record<string, string>;
  let aliceId: string;
  let bob: Record<string, string>;

  beforeAll(async () => {
    const store = await setup();
    cleanup = store.cleanup;
    server = await startServer({ ...store.env, WEB_CHAT_TOKEN: ADMIN });
    const create = async (body: Json) => {
      const response = await postJson(`${server.url}/api/admin/keys`, body, admin);
      expect(response.status).toBe(201);
      return (await response.json()) as { id: string; key: string };
    };
    const a = await create({ name: 'alice', tier: 'premium', models: ['stories260K'] });
    const b = await create({ name: 'bob', tier: 'premium' });
    alice = { authorization: `Bearer ${a.key}` };
    aliceId = a.id;
    bob = { authorization: `Bearer ${b.key}` };
  });
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
  });

  const prompts = ['Once upon a time', 'A dog'];

  it('refuses a suite naming a model the key may not use, wherever the suite names it', async () => {
    const suites: Json[] = [
      { prompts, model_instances: [STORY, { model: 'other-model' }] },
      { prompts, grid: { model: ['stories260K', 'other-model'] } },
      { prompts, model_instances: [STORY, { ...STORY, seed: 2 }], judge: { mode: 'pairwise', model: 'judge-model', rubric: 'r' } },
      { prompts, model_instances: [STORY], assert: [{ type: 'similar', model: 'embedder', threshold: 0.5, value: 'x' }] },
    ];
    for (const suite of suites) {
      const response = await postJson(`${server.url}/api/evals`, suite, alice);
      expect(response.status, JSON.stringify(suite)).toBe(403);
      expect(((await response.json()) as Json).error).toMatch(/This API key is not allowed to use model '(other-model|judge-model|embedder)'/);
    }
    expect((await postJson(`${server.url}/api/evals`, { prompts, model_instances: [STORY] })).status).toBe(401);
  });

  it('shows a key its own evaluations only, the admin all, and counts every generation in its usage', async () => {
    const id = await startEval(server.url, { prompts, model_instances: [STORY, { ...STORY, seed: 2 }] }, alice);
    await followEval(server.url, id, alice);
    const evaluation = await getEval(server.url, id, alice);
    expect(evaluation.status).toBe('done');

    expect((await fetch(`${server.url}/api/evals/${id}`, { headers: bob })).status).toBe(404);
    expect((await fetch(`${server.url}/api/evals/${id}/events`, { headers: bob })).status).toBe(404);
    expect((await fetch(`${server.url}/api/evals/${id}/export?format=csv`, { headers: bob })).status).toBe(404);
    expect((await postJson(`${server.url}/api/evals/${id}/cancel`, {}, bob)).status).toBe(404);
    expect((await postJson(`${server.url}/api/evals/${id}/rerun`, {}, bob)).status).toBe(404);
    const listOf = async (headers: Record<string, string>) => ((await (await fetch(`${server.url}/api/evals`, { headers })).json()) as Json).evaluations.map((e: Json) => e.id);
    expect(await listOf(bob)).not.toContain(id);
    expect(await listOf(alice)).toContain(id);
    expect(await listOf(admin)).toContain(id);
    expect((await fetch(`${server.url}/api/evals/${id}`, { headers: admin })).status).toBe(200);

    await server.services.usageLedger.flush();
    const rows = await server.services.store.db.selectFrom('usage_records').selectAll().where('key_id', '=', aliceId).where('surface', '=', 'evals').execute();
    const completion = rows.reduce((sum, row) => sum + Number(row.completion_tokens), 0);
    const expected = evaluation.cells.reduce((sum: number, cell: Json) => sum + cell.metrics.tokens, 0);
    expect(completion).toBe(expected);
    // One record per generation, plus the request that started the evaluation.
    expect(rows.filter((row) => Number(row.completion_tokens) > 0)).toHaveLength(4);
  });
});
