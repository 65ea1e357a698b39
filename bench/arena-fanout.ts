/**
 * A 3-instance /api/stream_chat against the same 3 requests sent one after another: wall time and
 * each instance's time to first token, measured at the client.
 * Usage: npx tsx bench/arena-fanout.ts [rounds]
 */
import { ndjsonLines, spawnServer } from '../test/support/server.js';
import { fmt, machine, mean, table } from './lib.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const instances = [
  { id: 'i1', model: 'stories260K', temperature: 0.7, num_predict: 200, seed: 1 },
  { id: 'i2', model: 'stories260K', temperature: 1.0, num_predict: 200, seed: 2 },
  { id: 'i3', model: 'stories260K', temperature: 1.3, num_predict: 200, seed: 3 },
];
const history = [{ role: 'user', content: 'Tell me a story' }];

const server = await spawnServer();

/** Streams one request and returns when each instance saw its first token and when all ended. */
async function stream(body: unknown): Promise<{ wallMs: number; ttftMs: Record<string, number> }> {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/stream_chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const ttftMs: Record<string, number> = {};
  for await (const line of ndjsonLines<{ instance_id: string; done: boolean; error?: string }>(response)) {
    if (line.error) throw new Error(line.error);
    if (!line.done) ttftMs[line.instance_id] ??= performance.now() - started;
  }
  return { wallMs: performance.now() - started, ttftMs };
}

await stream({ history, model_instances: [instances[0]] }); // load the model first
const together = { wall: [] as number[], ttft: instances.map(() => [] as number[]) };
const oneByOne = { wall: [] as number[], ttft: instances.map(() => [] as number[]) };
for (let round = 0; round < ROUNDS; round++) {
  const t = await stream({ history, model_instances: instances });
  together.wall.push(t.wallMs);
  instances.forEach((instance, i) => together.ttft[i]!.push(t.ttftMs[instance.id]!));

  const started = performance.now();
  for (const [i, instance] of instances.entries()) {
    const s = await stream({ history, model_instances: [instance] });
    // Time to first token as the user waiting for all three sees it: from the start of the sequence.
    oneByOne.ttft[i]!.push(performance.now() - started - s.wallMs + s.ttftMs[instance.id]!);
  }
  oneByOne.wall.push(performance.now() - started);
}
await server.stop();

console.log(`## Arena fan-out (${new Date().toISOString().slice(0, 10)})\n`);
console.log(`Machine: ${machine()}. 3 instances of stories260K, 200 tokens each, ${ROUNDS} rounds, means in milliseconds.\n`);
console.log(
  table(
    ['', 'wall time', 'TTFT instance 1', 'TTFT instance 2', 'TTFT instance 3'],
    [
      ['one /api/stream_chat with 3 instances', fmt(mean(together.wall), 0), ...together.ttft.map((v) => fmt(mean(v), 0))],
      ['3 requests one after another', fmt(mean(oneByOne.wall), 0), ...oneByOne.ttft.map((v) => fmt(mean(v), 0))],
    ],
  ),
);
console.log(`\nWall time ratio (together / one by one): **${fmt(mean(together.wall) / mean(oneByOne.wall), 2)}**.`);
