/**
 * Gateway overhead, measured the way TensorZero, Bifrost and LiteLLM publish theirs: a mock upstream
 * that answers at once (test/support/mock-upstream.ts, OpenAI and Ollama wire formats), and the same requests
 * sent to it directly and through the gateway (OpenAI backend behind /v1, Ollama backend behind /api),
 * interleaved in one run. Reports the latency the gateway adds (p50, p99) at concurrency 1 and 10, and
 * the highest request rate at which the added p99 stays under 5 ms, streamed and not.
 *
 * The mock, the gateway and this load generator are three processes on loopback.
 * Usage: npx tsx bench/gateway-overhead.ts [pairs at concurrency 1, default 1500]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import readline from 'node:readline';
import { freePort, REPO_ROOT, tempDir } from '../test/support/server.js';
import { fmt, machine, percentile, table } from './lib.js';

const PAIRS = Number(process.argv[2] ?? 1500);
const RATES = [100, 250, 500, 750, 1000, 1500, 2000, 3000];
/** Each rate window lasts at least this long and holds at least WINDOW_REQUESTS requests, so a p99 rests on enough samples. */
const WINDOW_MS = 1000;
const WINDOW_REQUESTS = 400;
const P99_BUDGET_MS = 5;
const messages = [{ role: 'user', content: 'Tell me a story' }];

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((child) => child.kill()));

/** Runs test/support/mock-upstream.ts in a process of its own with `args`; resolves with the URL of each. */
async function startMockProcess(args: string[]): Promise<Record<string, string>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/mock-upstream.ts', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const urls: Record<string, string> = {};
  for await (const line of readline.createInterface({ input: child.stdout! })) {
    const { model, url } = JSON.parse(line) as { model: string; url: string };
    urls[model] = url;
    if (Object.keys(urls).length === args.length) break;
  }
  return urls;
}

/** The gateway as `npm start` runs it (default log level), with an empty models dir. */
async function startGateway(ollama: string, openai: string): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODELS_DIR: tempDir('overhead-models-'), DATA_DIR: tempDir('overhead-data-'), OLLAMA_HOSTS: ollama, OPENAI_BACKENDS: openai, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    // Logs are written as in production (serialised), then dropped.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const models = await fetch(`${url}/api/models`).then((r) => r.json() as Promise<{ models?: string[] }>).catch(() => undefined);
    if (models?.models?.includes('mock-ollama:latest') && models.models.includes('mock-openai:latest')) return url;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('gateway did not start or did not list the mock models');
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** One request to its last byte; resolves with the milliseconds it took, or -1 on a failure. */
function send(url: string, body: string | undefined): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const options = body === undefined
      ? { method: 'GET', agent }
      : { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } };
    const request = http.request(url, options, (response) => {
      response.on('data', () => undefined);
      response.on('end', () => resolve(response.statusCode === 200 ? performance.now() - started : -1));
      response.on('error', () => resolve(-1));
    });
    request.on('error', () => resolve(-1));
    request.end(body);
  });
}

interface Scenario {
  name: string;
  direct: string;
  gateway: string;
  /** A GET when undefined. */
  body?: string;
}

interface Samples {
  direct: number[];
  gateway: number[];
  failures: number;
}

/** `concurrency` workers, each alternating direct and gateway (the order flipping every pair). */
async function closedLoop(scenario: Scenario, concurrency: number, pairs: number): Promise<Samples> {
  const samples: Samples = { direct: [], gateway: [], failures: 0 };
  let next = 0;
  const record = (list: number[], ms: number) => (ms < 0 ? samples.failures++ : list.push(ms));
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < pairs) {
        const n = next++;
        if (n % 2 === 0) {
          record(samples.direct, await send(scenario.direct, scenario.body));
          record(samples.gateway, await send(scenario.gateway, scenario.body));
        } else {
          record(samples.gateway, await send(scenario.gateway, scenario.body));
          record(samples.direct, await send(scenario.direct, scenario.body));
        }
      }
    }),
  );
  return samples;
}

/** Requests started at a fixed rate for one window (open loop); latencies of those that completed. */
async function openLoop(url: string, body: string | undefined, rate: number): Promise<{ latencies: number[]; failures: number; achieved: number }> {
  const latencies: number[] = [];
  let failures = 0;
  let sent = 0;
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const windowMs = Math.max(WINDOW_MS, (WINDOW_REQUESTS / rate) * 1000);
  while (performance.now() - started < windowMs) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      pending.push(send(url, body).then((ms) => void (ms < 0 ? failures++ : latencies.push(ms))));
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const windowEnd = performance.now();
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  const completedIn = Math.max(performance.now() - started, windowEnd - started);
  return { latencies, failures, achieved: (latencies.length / completedIn) * 1000 };
}

/** The highest rate at which both paths kept up and the gateway's p99 stayed within the budget. */
async function maxRate(scenario: Scenario): Promise<{ rate: number; note: string }> {
  let best = 0;
  let note = '';
  for (const rate of RATES) {
    const direct: number[] = [];
    const gateway: number[] = [];
    let held = true;
    for (let round = 0; round < 2; round++) {
      const d = await openLoop(scenario.direct, scenario.body, rate);
      const g = await openLoop(scenario.gateway, scenario.body, rate);
      direct.push(...d.latencies);
      gateway.push(...g.latencies);
      if (d.failures || d.achieved < rate * 0.9) {
        note = `direct path itself stopped keeping up at ${rate}/s (load generator or mock limit)`;
        held = false;
      }
      if (g.failures || g.achieved < rate * 0.9) held = false;
    }
    const p99 = percentile(gateway, 99) - percentile(direct, 99);
    if (!held || p99 >= P99_BUDGET_MS) {
      if (!note) note = `at ${rate}/s: added p99 ${fmt(p99)} ms`;
      break;
    }
    best = rate;
  }
  return { rate: best, note: best === RATES.at(-1) ? `highest rate tried` : note };
}

// One server for the Ollama backend, one for the OpenAI one.
const urls = await startMockProcess(['mock-ollama:latest', 'mock-openai:latest']);
// The floor of one extra hop: a bare pass-through proxy, in a process of its own like the gateway.
const bare = Object.values(await startMockProcess([`proxy=${urls['mock-openai:latest']}`]))[0]!;
const gatewayUrl = await startGateway(urls['mock-ollama:latest']!, urls['mock-openai:latest']!);
const openaiBody = (stream: boolean) => JSON.stringify({ model: 'mock-openai:latest', messages, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
const ollamaBody = (stream: boolean) => JSON.stringify({ model: 'mock-ollama:latest', messages, stream });
const scenarios: Scenario[] = [
  { name: 'OpenAI chat, not streamed', direct: `${urls['mock-openai:latest']}/v1/chat/completions`, gateway: `${gatewayUrl}/v1/chat/completions`, body: openaiBody(false) },
  { name: 'OpenAI chat, streamed (SSE)', direct: `${urls['mock-openai:latest']}/v1/chat/completions`, gateway: `${gatewayUrl}/v1/chat/completions`, body: openaiBody(true) },
  { name: 'Ollama chat, not streamed', direct: `${urls['mock-ollama:latest']}/api/chat`, gateway: `${gatewayUrl}/api/chat`, body: ollamaBody(false) },
  { name: 'Ollama chat, streamed (NDJSON)', direct: `${urls['mock-ollama:latest']}/api/chat`, gateway: `${gatewayUrl}/api/chat`, body: ollamaBody(true) },
];

// References: a route of ours that calls no backend, and a bare proxy that only forwards (the floor of
// one more process hop on this machine), each against the mock directly.
const references: Scenario[] = [
  { name: 'reference: our GET /api/version (no backend call)', direct: `${urls['mock-ollama:latest']}/api/version`, gateway: `${gatewayUrl}/api/version` },
  { name: 'reference: bare node:http proxy, OpenAI chat not streamed', direct: scenarios[0]!.direct, gateway: `${bare}/v1/chat/completions`, body: openaiBody(false) },
  { name: 'reference: bare node:http proxy, OpenAI chat streamed', direct: scenarios[1]!.direct, gateway: `${bare}/v1/chat/completions`, body: openaiBody(true) },
];

const rows: (string | number)[][] = [];
for (const scenario of [...scenarios, ...references]) {
  await closedLoop(scenario, 10, 300); // warm-up: JIT, keep-alive sockets, router listing
  const c1 = await closedLoop(scenario, 1, PAIRS);
  const c10 = await closedLoop(scenario, 10, PAIRS * 2);
  const rate = await maxRate(scenario);
  const added = (s: Samples, p: number) => percentile(s.gateway, p) - percentile(s.direct, p);
  rows.push([
    scenario.name,
    fmt(percentile(c1.direct, 50), 3),
    fmt(percentile(c1.gateway, 50), 3),
    `**${fmt(added(c1, 50), 3)}**`,
    fmt(added(c1, 99), 3),
    fmt(added(c10, 50), 3),
    fmt(added(c10, 99), 3),
    `${rate.rate}/s${rate.note ? ` (${rate.note})` : ''}`,
    c1.failures + c10.failures,
  ]);
  console.error(`${scenario.name}: done`);
}

console.log(`## Gateway overhead (${new Date().toISOString().slice(0, 10)})

\`bench/gateway-overhead.ts\`: \`test/support/mock-upstream.ts\` answering at once (11 chunks) and the same
request sent directly to it and through the gateway (OpenAI-compatible backend behind \`/v1\`, Ollama
backend behind \`/api\`), interleaved; mock, gateway and load generator in three processes on loopback.
Latencies are to the last byte, in milliseconds; "added" is the gateway percentile minus the direct one.

Machine: ${machine()}. ${PAIRS} pairs at concurrency 1, ${PAIRS * 2} at 10; rate steps of windows of at least ${WINDOW_MS} ms and ${WINDOW_REQUESTS} requests, direct and gateway alternating twice per step.

${table(
  ['request', 'c=1 direct p50', 'c=1 gateway p50', 'c=1 added p50', 'c=1 added p99', 'c=10 added p50', 'c=10 added p99', 'max rate, added p99 < 5 ms', 'failures'],
  rows,
)}
`);
for (const child of children) child.kill();
await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
agent.destroy();
