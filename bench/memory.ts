/**
 * Resident memory of the server after 10 requests against after 1,000 (and points between): a leak
 * per request would show as steady growth. Requests mix /api/chat, /api/stream_chat (some cut off
 * mid-stream by the client) and errors.
 * Usage: npx tsx bench/memory.ts [requests]
 */
import { spawnServer } from '../test/support/server.js';
import { fmt, machine, table } from './lib.js';

const TOTAL = Number(process.argv[2] ?? 1000);
const CONCURRENCY = 4;
const server = await spawnServer(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {});

/** RSS and the V8 heap in use, in MiB, from the server's own Prometheus metrics. */
async function memory(): Promise<[number, number]> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)![1]) / 2 ** 20;
  return [read('process_resident_memory_bytes'), read('nodejs_heap_size_used_bytes')];
}

const history = [{ role: 'user', content: 'Once upon a time' }];
async function request(i: number): Promise<void> {
  const kind = i % 4;
  const post = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (kind === 0) await (await post('/api/chat', { history, model_instances: [{ model: 'stories260K', num_predict: 16, seed: i }] })).text();
  else if (kind === 1) await (await post('/api/stream_chat', { history, model_instances: [{ model: 'stories260K', num_predict: 16, seed: i }, { model: 'stories260K', num_predict: 16, seed: i + 1, id: 'b' }] })).text();
  else if (kind === 2) {
    const controller = new AbortController();
    const response = await post('/api/stream_chat', { history, models: ['stories260K'] }, controller.signal);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => undefined);
  } else await (await post('/api/chat', { history: [], models: ['stories260K'] })).text();
}

const checkpoints = [10, 100, 250, 500, 750, 1000, 1500, 2000].filter((n) => n <= TOTAL);
const samples: [number, number, number][] = [];
let sent = 0;
for (const checkpoint of checkpoints) {
  while (sent < checkpoint) {
    const batch = Math.min(CONCURRENCY, checkpoint - sent);
    await Promise.all(Array.from({ length: batch }, (_, k) => request(sent + k)));
    sent += batch;
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // let aborted generations wind down
  samples.push([checkpoint, ...(await memory())]);
}
await server.stop();

const [, first] = samples[0]!;
const [, last] = samples.at(-1)!;
console.log(`## Memory under load (${new Date().toISOString().slice(0, 10)})\n`);
console.log(`Machine: ${machine()}. Requests mix /api/chat, two-instance /api/stream_chat, streams cut off by the client, and 400s; ${CONCURRENCY} at a time.\n`);
console.log(table(['requests', 'RSS (MiB)', 'V8 heap used (MiB)'], samples.map(([n, rss, heap]) => [n, fmt(rss, 1), fmt(heap, 1)])));
console.log(`\nRSS after ${samples.at(-1)![0]} requests / after 10: **${fmt(last / first, 3)}** (${fmt(last - first, 1)} MiB).`);
