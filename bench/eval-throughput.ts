/**
 * An evaluation's cost over its generations: a 50-prompt × 4-configuration suite (200 cells, one
 * regex and one not-contains assertion each) against the same 200 generations sent directly to
 * `/api/chat`, as many at a time as the suite's concurrency, on the same in-process server. Reports
 * the wall-time ratio (goal: within 1.1× of the direct schedule) and the bookkeeping per cell
 * (assertions, the stored row, the event; goal: below 1 ms).
 * Usage: npx tsx bench/eval-throughput.ts [prompts] [num_predict]
 */
import { postJson, startServer } from '../test/support/server.js';
import { readNdjson } from '../src/shared/ndjson.js';
import { bookkeeping } from '../src/arena/evals/runner.js';
import { fmt, machine, percentile, table } from './lib.js';

const PROMPTS = Number(process.argv[2] ?? 50);
const NUM_PREDICT = Number(process.argv[3] ?? 32);
const CONCURRENCY = 4;
const prompts = Array.from({ length: PROMPTS }, (_, i) => `Story ${i}: once upon a time`);
const configurations = [0.5, 0.8, 1.1, 1.4].map((temperature, i) => ({ model: 'stories260K', temperature, seed: i + 1, num_predict: NUM_PREDICT }));

const server = await startServer({ LOG_LEVEL: 'error' });

/** Every (prompt, configuration) generation through /api/chat, CONCURRENCY at a time, in the suite's order. */
async function direct(): Promise<number> {
  const jobs = prompts.flatMap((prompt) => configurations.map((instance) => ({ prompt, instance })));
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jobs.length) {
        const { prompt, instance } = jobs[next++]!;
        const response = await postJson(`${server.url}/api/chat`, { history: [{ role: 'user', content: prompt }], model_instances: [instance], stream: false });
        if (!response.ok) throw new Error(`direct generation failed: ${response.status}`);
        await response.json();
      }
    }),
  );
  return performance.now() - started;
}

async function evaluation(): Promise<number> {
  const started = performance.now();
  const created = await postJson(`${server.url}/api/evals`, {
    name: 'throughput',
    prompts,
    model_instances: configurations,
    assert: [{ type: 'regex', value: '\\w' }, { type: 'not_contains', value: 'zebra' }],
    concurrency: CONCURRENCY,
  });
  const { id } = (await created.json()) as { id: string };
  const events = await fetch(`${server.url}/api/evals/${id}/events`);
  for await (const event of readNdjson<{ type: string; status?: string }>(events.body!)) {
    if (event.type === 'end') {
      if (event.status !== 'done') throw new Error(`evaluation ended ${event.status}`);
      break;
    }
  }
  return performance.now() - started;
}

await direct(); // loads the model and warms every path
const directRuns = [await direct()];
const before = { ...bookkeeping, recent: [...bookkeeping.recent] };
const evalMs = await evaluation();
const cells = bookkeeping.cells - before.cells;
const perCell = (bookkeeping.totalMs - before.totalMs) / cells;
const samples = bookkeeping.recent.slice(-cells);
directRuns.push(await direct());
await server.close();
const best = Math.min(...directRuns);

console.log(`## Evaluation throughput (${new Date().toISOString().slice(0, 10)})\n`);
console.log(`Machine: ${machine()}. ${PROMPTS} prompts × ${configurations.length} configurations of stories260K, ${NUM_PREDICT} tokens each, concurrency ${CONCURRENCY}, one run; milliseconds.\n`);
console.log(
  table(
    ['', 'wall time', 'ratio to best direct'],
    [
      [`evaluation (${cells} cells, 2 assertions each)`, fmt(evalMs, 0), `**${fmt(evalMs / best, 3)}×**`],
      ['same generations sent directly, before the evaluation', fmt(directRuns[0]!, 0), fmt(directRuns[0]! / best, 3)],
      ['same generations sent directly, after the evaluation', fmt(directRuns[1]!, 0), fmt(directRuns[1]! / best, 3)],
    ],
  ),
);
console.log(
  `\nBookkeeping per cell (wall time from the answer to its stored row and event: assertions, the row, the event): median **${fmt(percentile(samples, 50), 3)} ms**, p95 ${fmt(percentile(samples, 95), 3)} ms, mean ${fmt(perCell, 3)} ms, max ${fmt(bookkeeping.maxMs, 3)} ms.`,
);
