/**
 * Arenas of N = 1, 2, 4 and 8 instances of one model in one /api/stream_chat: each instance's time to
 * first token at the client, how far the last starts after the first (the spread), and the server's
 * memory while they stream and after; against the same N requests sent one after another.
 * The server runs with the environment's LLAMA_PARALLEL and LLAMA_MAX_PARALLEL (defaults 4 and 8):
 * LLAMA_MAX_PARALLEL=4 measures a pool that never grows; BENCH_SIZES=4,8 measures those N only.
 * Usage: npx tsx bench/arena-fanout.ts [rounds]
 */
import fs from 'node:fs';
import path from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { ndjsonLines, SHARED_MODELS, spawnServer } from '../test/support/server.js';
import { fmt, machine, mean, table } from './lib.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const SIZES = (process.env.BENCH_SIZES ?? '1,2,4,8').split(',').map(Number);
const TOKENS = 200;
const history = [{ role: 'user', content: 'Tell me a story' }];
const instance = (i: number) => ({ id: `i${i + 1}`, model: 'stories260K', temperature: 0.7 + 0.1 * i, num_predict: TOKENS, seed: i + 1 });

const server = await spawnServer();
/** The 1-minute load average at each round's start: how busy the machine was besides. */
const loads: number[] = [];

/** The server's resident memory in MiB, as the kernel counts it. */
function rssMiB(): number {
  const status = fs.readFileSync(`/proc/${server.process.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

interface Streamed {
  wallMs: number;
  /** Each instance's time to first token, in instance order. */
  ttftMs: number[];
  /** Memory once every instance streams. */
  rss: number;
}

/** Streams one request and returns when each instance saw its first token and when all ended. */
async function stream(instances: ReturnType<typeof instance>[]): Promise<Streamed> {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/stream_chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ history, model_instances: instances }),
  });
  const first = new Map<string, number>();
  let rss = NaN;
  for await (const line of ndjsonLines<{ instance_id: string; done: boolean; error?: string }>(response)) {
    if (line.error) throw new Error(line.error);
    if (line.done || first.has(line.instance_id)) continue;
    first.set(line.instance_id, performance.now() - started);
    if (first.size === instances.length) rss = rssMiB();
  }
  return { wallMs: performance.now() - started, ttftMs: instances.map((i) => first.get(i.id)!), rss };
}

interface Row {
  n: number;
  wall: number[];
  ttft: number[][];
  first: number[];
  last: number[];
  rss: number[];
  rssAfter: number;
}

await stream([instance(0)]); // load the model first
const rssLoaded = rssMiB();
const together: Row[] = [];
const oneByOne: { n: number; wall: number[]; last: number[] }[] = [];
for (const n of SIZES) {
  const instances = Array.from({ length: n }, (_, i) => instance(i));
  const row: Row = { n, wall: [], ttft: instances.map(() => []), first: [], last: [], rss: [], rssAfter: 0 };
  const alone = { n, wall: [] as number[], last: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    loads.push(Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    const t = await stream(instances);
    row.wall.push(t.wallMs);
    t.ttftMs.forEach((ms, i) => row.ttft[i]!.push(ms));
    row.first.push(Math.min(...t.ttftMs));
    row.last.push(Math.max(...t.ttftMs));
    row.rss.push(t.rss);

    if (n > 1) {
      const started = performance.now();
      let last = 0;
      for (const one of instances) {
        const s = await stream([one]);
        // The last instance's first token as the user waiting for all N sees it: from the start.
        last = performance.now() - started - s.wallMs + s.ttftMs[0]!;
      }
      alone.wall.push(performance.now() - started);
      alone.last.push(last);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // extra contexts are disposed as their last answer ends
  row.rssAfter = rssMiB();
  together.push(row);
  if (n > 1) oneByOne.push(alone);
}
const parallel = process.env.LLAMA_PARALLEL ?? '4';
const maxParallel = process.env.LLAMA_MAX_PARALLEL ?? '8';
await server.stop();

/**
 * What llama.cpp allocates for a context of k sequences of this model (its KV cache and compute
 * buffers), as node-llama-cpp reports it: what an extra context costs beside the model's own.
 */
async function contextMiB(sequences: number[]): Promise<{ perSequence: number; sizes: number[] }> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path.join(SHARED_MODELS, 'stories260K.gguf') });
  const perSequence = Math.min(model.trainContextSize, 4096); // the pool's context per sequence
  const sizes: number[] = [];
  for (const k of sequences) {
    const context = await model.createContext({ sequences: k, contextSize: perSequence * k });
    sizes.push(context.memoryUsage.ram / 2 ** 20);
    await context.dispose();
  }
  await model.dispose();
  return { perSequence, sizes };
}
const contextSizes = [1, 2, 4];
const contextMemory = await contextMiB(contextSizes);

const ms = (values: number[]) => fmt(mean(values), 0);
console.log(`## Arena fan-out (${new Date().toISOString().slice(0, 10)})\n`);
console.log(
  `Machine: ${machine()}. LLAMA_PARALLEL=${parallel}, LLAMA_MAX_PARALLEL=${maxParallel}. N instances of stories260K, ` +
    `${TOKENS} tokens each, ${ROUNDS} rounds, means in milliseconds (worst spread: the largest of a round). ` +
    `1-minute load average at the rounds' starts: ${fmt(Math.min(...loads))} to ${fmt(Math.max(...loads))}.\n`,
);
console.log(`Server RSS with the model loaded and idle: ${fmt(rssLoaded, 1)} MiB.\n`);
console.log(
  table(
    ['N', 'wall time', 'first TTFT', 'last TTFT', 'spread', 'worst spread', 'TTFT per instance', 'RSS streaming (MiB)', 'RSS after (MiB)'],
    together.map((r) => {
      const spread = r.last.map((last, round) => last - r.first[round]!);
      return [
        r.n,
        ms(r.wall),
        ms(r.first),
        ms(r.last),
        ms(spread),
        fmt(Math.max(...spread), 0),
        r.ttft.map((v) => ms(v)).join(' '),
        fmt(Math.max(...r.rss), 1),
        fmt(r.rssAfter, 1),
      ];
    }),
  ),
);
console.log('\nThe same N requests one after another:\n');
console.log(table(['N', 'wall time', 'last instance\'s first token'], oneByOne.map((r) => [r.n, ms(r.wall), ms(r.last)])));
console.log(
  `\nllama.cpp's memory for a context of stories260K (${contextMemory.perSequence} tokens per sequence): ` +
    contextSizes.map((k, i) => `${k} sequence${k > 1 ? 's' : ''} ${fmt(contextMemory.sizes[i]!, 1)} MiB`).join(', ') +
    '.',
);
