import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAICompatibleBackend } from '../../src/providers/openai/server.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { postJson, startServer, type RunningServer } from '../support/server.js';
import { STORES } from '../support/stores.js';
import { runEval, STORY, type Json } from '../support/evals.js';
import { combineOrders, parsePairVerdict, parseScore } from '../../src/arena/evals/judge.js';
import { isBoundedPattern, SafeMatcher } from '../../src/arena/evals/safe-match.js';
import { agreement } from '../../src/arena/evals/agreement.js';

/**
 * LLM judges, played by OpenAI-compatible stand-ins (no judge-sized model runs here) that always give
 * the same reply: one always answering "A" shows that position bias cancels (ties, never wins); one
 * that states no verdict is recorded as abstaining; a score judge's ratings become the rating.
 */

describe.each(STORES)('judges on $store', ({ setup }) => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;
  const judges: MockUpstream[] = [];

  beforeAll(async () => {
    const store = await setup();
    cleanup = store.cleanup;
    judges.push(await startMockUpstream({ models: ['first-judge:latest'], tokens: ['A'] }));
    judges.push(await startMockUpstream({ models: ['vague-judge:latest'], tokens: ['Both stories have ', 'their merits.'] }));
    judges.push(await startMockUpstream({ models: ['score-judge:latest'], tokens: ['Rating: ', '7'] }));
    server = await startServer(store.env, judges.map((j) => new OpenAICompatibleBackend(j.url)));
  });
  afterAll(async () => {
    await server?.close();
    for (const judge of judges) await judge.close();
    await cleanup?.();
  });

  const configurations = [
    { ...STORY, seed: 1 },
    { ...STORY, seed: 2, temperature: 1.2 },
    { ...STORY, seed: 3, temperature: 0.3 },
  ];
  const prompts = ['Once upon a time', 'A dog and a ball'];

  it('a judge that always prefers the first position yields ties, not wins, and feeds the judge leaderboard only', async () => {
    const evaluation = await runEval(server.url, { prompts, model_instances: configurations, judge: { mode: 'pairwise', model: 'first-judge', rubric: 'Which story is better for a five-year-old?' } });
    // 2 prompts × 3 pairs, each judged in both orders.
    expect(evaluation.progress).toEqual({ done: 6 + 6, total: 6 + 6 });
    expect(judges[0]!.hits.get('/v1/chat/completions')).toBe(12);
    for (const row of evaluation.summary) {
      expect(row.judge).toMatchObject({ mode: 'pairwise', wins: 0, losses: 0, ties: 4, judged: 4, abstained: 0 });
      expect(row.judge.rating).toBeCloseTo(1000, 5);
    }
    const judged = (await (await fetch(`${server.url}/api/leaderboard?source=judge&by=config`)).json()) as Json;
    expect(judged).toMatchObject({ source: 'judge', total_battles: 6, agreement: { pairs: 0, rate: null } });
    expect(judged.rows.every((r: Json) => r.wins === 0 && r.losses === 0 && r.ties === 4)).toBe(true);
    const people = (await (await fetch(`${server.url}/api/leaderboard`)).json()) as Json;
    expect(people).toMatchObject({ source: 'human', total_battles: 0, rows: [] });
    expect((await fetch(`${server.url}/api/leaderboard?source=robots`)).status).toBe(400);
  });

  it('records a verdict the reply does not state as abstained, never as a guess', async () => {
    const evaluation = await runEval(server.url, { prompts: prompts.slice(0, 1), model_instances: configurations.slice(0, 2), judge: { mode: 'pairwise', model: 'vague-judge', rubric: 'Which is better?' } });
    expect(evaluation.status).toBe('done');
    for (const row of evaluation.summary) expect(row.judge).toMatchObject({ rating: null, judged: 0, abstained: 1 });
    const judged = (await (await fetch(`${server.url}/api/leaderboard?source=judge&by=config`)).json()) as Json;
    // The abstention added no vote to the six of the test before.
    expect(judged.total_battles).toBe(6);
  });

  it('a score judge rates every answer 1–10', async () => {
    const evaluation = await runEval(server.url, { prompts, model_instances: configurations.slice(0, 2), judge: { mode: 'score', model: 'score-judge', rubric: 'How good is the story?' } });
    expect(evaluation.progress).toEqual({ done: 8, total: 8 });
    for (const row of evaluation.summary) expect(row.judge).toMatchObject({ mode: 'score', rating: 7, rating_low: 7, rating_high: 7, judged: 2, abstained: 0 });
    for (const cell of evaluation.cells) expect(cell.judge).toEqual({ score: 7, reply: 'Rating: 7' });
  });

  it('refuses an unknown judge model before running anything', async () => {
    const response = await postJson(`${server.url}/api/evals`, { prompts, model_instances: configurations, judge: { mode: 'score', model: 'no-judge', rubric: 'r' } });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Json).error).toBe('Model not found: no-judge');
  });
});

describe('reading judges and running regular expressions safely', () => {
  it('reads only stated verdicts and ratings', () => {
    expect(['A', ' **B**.', 'tie', 'Verdict: A', 'I think so.\nVerdict: [B]'].map(parsePairVerdict)).toEqual(['A', 'B', 'tie', 'A', 'B']);
    expect(['A story about a cat', 'Verdict: A. Verdict: B', '', 'Answer A is fine'].map(parsePairVerdict)).toEqual(['abstained', 'abstained', 'abstained', 'abstained']);
    expect(['7', 'Rating: 8', 'I give it 6/10', 'Rating: 11', 'good', 'Rating: 3, Rating: 4'].map(parseScore)).toEqual([7, 8, 6, undefined, undefined, undefined]);
    expect(combineOrders('A', 'B')).toBe('a');
    expect(combineOrders('B', 'A')).toBe('b');
    expect(combineOrders('A', 'A')).toBe('tie');
    expect(combineOrders('A', 'tie')).toBe('tie');
    expect(combineOrders('A', 'abstained')).toBe('abstained');
  });

  it('measures how often judges and people prefer the same side of a pair', () => {
    const human = [
      { a: 'x', b: 'y', winner: 'a' as const },
      { a: 'y', b: 'z', winner: 'a' as const },
      { a: 'x', b: 'w', winner: 'tie' as const },
    ];
    // Same preference on x–y (written the other way round), the opposite on y–z, none in common on x–w.
    const judge = [
      { a: 'y', b: 'x', winner: 'b' as const },
      { a: 'y', b: 'z', winner: 'b' as const },
      { a: 'z', b: 'w', winner: 'a' as const },
    ];
    expect(agreement(human, judge)).toEqual({ pairs: 2, agreed: 1, rate: 0.5 });
    expect(agreement([], judge)).toEqual({ pairs: 0, agreed: 0, rate: null });
  });

  it('runs only patterns of bounded cost in the server thread', () => {
    expect(['\\w', '^Yes', '\\d+ apples', 'cat|dog', '[(]+x', '(?:ab)c*', 'a{2,5}b'].map(isBoundedPattern)).toEqual([true, true, true, true, true, true, true]);
    expect(['^(a+)+$', '(a|a)*b', '\\w*\\w*x', '(a)\\1', '(?=a+)a', 'a{2,}b+', '(ab){3}'].map(isBoundedPattern)).toEqual([false, false, false, false, false, false, false]);
  });

  it('stops a catastrophic regular expression at its time limit and keeps matching afterwards', async () => {
    const matcher = new SafeMatcher(2_000);
    try {
      const started = Date.now();
      const stuck = await matcher.match(`${'a'.repeat(40)}!`, [{ regex: '^(a+)+$', flags: '' }]);
      expect(stuck).toEqual({ error: 'timed out after 2000 ms' });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await matcher.match('{"n": 3}', [{ regex: '\\d', flags: '' }, { schema: { type: 'object', required: ['n'] } }, { schema: { type: 'array' } }])).toEqual([true, true, false]);
    } finally {
      await matcher.close();
    }
  });
});
