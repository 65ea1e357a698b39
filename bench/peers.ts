/**
 * ollama-arena beside its peers in one run: a bare node:http pass-through proxy (the floor of one more
 * process hop), the gateway's stack with no gateway in it (Fastify and undici alone, and undici behind
 * a bare node:http server, to show what the framework costs), ollama-arena as
 * `npm start` runs it, ollama-arena with API management on (the request carries an API key with a
 * rate limit, and its usage is recorded), and Portkey's open-source gateway
 * (`@portkey-ai/gateway`, a devDependency), each in a process of its own in front of the same mock
 * upstream (test/support/mock-upstream.ts), on OpenAI's chat completions, JSON and SSE.
 *
 * Per peer and request: latency to the last byte against the mock directly, interleaved (added = the
 * peer's percentile minus the direct one), and the peer process's own CPU time per request over a
 * fixed number of requests (from /proc/<pid>/stat), each also as a ratio to the bare proxy's. A peer
 * that fails to start or to answer is reported with its failure, not left out.
 *
 * Usage: npx tsx bench/peers.ts [pairs at concurrency 1, default 1200] [requests for the CPU column, default 3000]
 *   [turns of the CPU column, default 10: more turns steady the ratios when two builds differ by little]
 * With BASELINE=<directory>, the build of another checkout (an earlier commit, `npm ci && npm start`
 * run there once) is measured beside this one, keys on: `git worktree add /tmp/before <commit>`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, REPO_ROOT } from '../test/support/server.js';
import { fmt, machine, mean, percentile, table } from './lib.js';
import { pinToCores, closedLoop, cpuMs, cpuRatio, interleavedCpu, type CpuMeasure, startGateway, startGatewayWithKey, startMockProcessWithPid, startProgram, stopAll, cpuLoadText, processFigures, type Samples } from './proxy-harness.js';

const PAIRS = Number(process.argv[2] ?? 1200);
const CPU_REQUESTS = Number(process.argv[3] ?? 3000);
/** Concurrency of the CPU measurement: enough to keep a proxy busy, as under real traffic. */
const CPU_CONCURRENCY = 4;
/** Turns of the CPU measurement, the peers taking turns: its ratios are the median of the turns' ratios. */
const CPU_TURNS = Number(process.argv[4] ?? 10);
/** Processes of the bare proxy and of each ollama-arena with keys on, whose median is their CPU figure. */
const REPLICAS = 3;
/** Each peer's pairs are sent in this many chunks, the peers taking turns, so that a change of load falls on all of them. */
const CHUNKS = 4;
const MODEL = 'mock-openai:latest';
/** A checkout of an earlier commit, built, to run beside this one (see the usage above). */
const BASELINE = process.env.BASELINE;

interface Peer {
  name: string;
  /** Base URL of its OpenAI-compatible API (ending before `/chat/completions`). */
  base?: string;
  headers?: Record<string, string>;
  pid?: number;
  /** Other processes of the same peer, started alike: its CPU figure of a turn is the median over all of them (see CpuTarget.replicas). */
  replicas?: Omit<Peer, 'name' | 'replicas' | 'failed'>[];
  /** Why it could not be measured. */
  failed?: string;
}

async function attempt(name: string, start: () => Promise<Omit<Peer, 'name'>>, processes = 1): Promise<Peer> {
  try {
    const [first, ...replicas] = await Promise.all(Array.from({ length: processes }, start));
    return { name, ...first!, ...(replicas.length ? { replicas } : {}) };
  } catch (error) {
    return { name, failed: `did not start: ${(error as Error).message}` };
  }
}

const loadSamples: number[] = [];
function loads(): void {
  loadSamples.push(os.loadavg()[0]!);
}

const { urls, pid: mockPid } = await startMockProcessWithPid([MODEL]);
const mock = urls[MODEL]!;
loads();

const peers: Peer[] = [
  await attempt('bare node:http proxy', () => referenceProxy('proxy'), REPLICAS),
  // The gateway's stack with no gateway in it: what Fastify and undici cost (see startStackFloor), and
  // the same without Fastify: what the framework itself costs.
  await attempt('Fastify + undici, no gateway work (the stack floor)', () => referenceProxy('floor')),
  await attempt('node:http + undici, no gateway work (the floor without Fastify)', () => referenceProxy('rawfloor')),
  await attempt('ollama-arena', async () => {
    const { url, pid } = await startGateway({ openai: `${mock}/v1` }, [MODEL]);
    return { base: `${url}/v1`, pid };
  }),
  await attempt('ollama-arena, keys on (API key, rate limit, usage)', () => keyedGateway(), REPLICAS),
  // An earlier build beside this one (BASELINE=<a checkout, built>): what a change did, in the same run.
  ...(BASELINE
    ? [
        await attempt(`ollama-arena at ${revisionOf(BASELINE)}, keys on`, () => keyedGateway(BASELINE), REPLICAS),
      ]
    : []),
  await attempt(`Portkey gateway ${portkeyVersion()}`, async () => {
    const port = await freePort();
    const script = path.join(REPO_ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js');
    const { pid } = await startProgram(script, [`--port=${port}`, '--headless'], `http://127.0.0.1:${port}/`);
    // Portkey routes by headers: the provider's wire format, and the upstream's address in place of OpenAI's.
    return { base: `http://127.0.0.1:${port}/v1`, pid, headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${mock}/v1`, authorization: 'Bearer sk-unused' } };
  }),
];

/** One of the mock's reference proxies (`proxy`, `floor`, `rawfloor`) in front of the mock, in a process of its own. */
async function referenceProxy(kind: string): Promise<Omit<Peer, 'name'>> {
  const { urls: proxied, pid } = await startMockProcessWithPid([`${kind}=${mock}`]);
  return { base: `${Object.values(proxied)[0]}/v1`, pid };
}

/** ollama-arena with API management on, of this checkout or of `checkout` (built), in a process of its own. */
async function keyedGateway(checkout?: string): Promise<Omit<Peer, 'name'>> {
  const { url, pid, headers } = await startGatewayWithKey({ openai: `${mock}/v1` }, [MODEL], checkout);
  return { base: `${url}/v1`, pid, headers };
}

/** The commit a checkout is at, for the report. */
function revisionOf(checkout: string): string {
  const head = spawnSync('git', ['-C', checkout, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).stdout.trim();
  return head || checkout;
}

function portkeyVersion(): string {
  const file = path.join(REPO_ROOT, 'node_modules/@portkey-ai/gateway/package.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version : '(not installed)';
}

const messages = [{ role: 'user', content: 'Tell me a story' }];
const requests = [
  { name: 'JSON', body: JSON.stringify({ model: MODEL, messages, stream: false }) },
  { name: 'SSE', body: JSON.stringify({ model: MODEL, messages, stream: true, stream_options: { include_usage: true } }) },
];

/** One request through the peer, read whole: null when it answered as the mock does, else why not. */
async function probe(peer: Peer, body: string): Promise<string | null> {
  try {
    const response = await fetch(`${peer.base}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...peer.headers }, body });
    const text = await response.text();
    if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 120)}`;
    if (!text.includes('Once')) return `unexpected answer: ${text.slice(0, 120)}`;
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

interface Row {
  peer: Peer;
  request: string;
  failed?: string;
  samples?: Samples;
  cpu?: CpuMeasure;
  failures: number;
}
const rows: Row[] = [];
pinToCores(
  peers.flatMap((peer) => [peer, ...(peer.replicas ?? [])].flatMap(({ pid }) => (pid === undefined ? [] : [pid]))),
  [mockPid],
);
for (const request of requests) {
  const live: Row[] = [];
  for (const peer of peers) {
    const failed = peer.failed ?? (await probe(peer, request.body)) ?? undefined;
    const row: Row = { peer, request: request.name, failed, failures: 0 };
    rows.push(row);
    if (failed) continue;
    row.samples = { direct: [], gateway: [], failures: 0 };
    live.push(row);
    // Warm-up, not counted: JIT, keep-alive sockets, the gateways' model listings.
    await closedLoop({ name: peer.name, direct: `${mock}/v1/chat/completions`, gateway: `${peer.base}/chat/completions`, body: request.body, headers: peer.headers }, 4, 300);
    // Its other processes get as much traffic as it will in the latency rounds.
    for (const replica of peer.replicas ?? []) await closedLoop({ name: peer.name, direct: `${mock}/v1/chat/completions`, gateway: `${replica.base}/chat/completions`, body: request.body, headers: replica.headers }, 4, 300 + PAIRS);
  }
  for (let chunk = 0; chunk < CHUNKS; chunk++) {
    for (const row of live) {
      const scenario = { name: row.peer.name, direct: `${mock}/v1/chat/completions`, gateway: `${row.peer.base}/chat/completions`, body: request.body, headers: row.peer.headers };
      const samples = await closedLoop(scenario, 1, Math.ceil(PAIRS / CHUNKS));
      row.samples!.direct.push(...samples.direct);
      row.samples!.gateway.push(...samples.gateway);
      row.failures += samples.failures;
    }
    loads();
  }
  // The peers take turns here too, so that a change of load falls on all of them alike.
  const cpu = await interleavedCpu(
    live.map((row) => ({
      pid: row.peer.pid!,
      url: `${row.peer.base}/chat/completions`,
      body: request.body,
      headers: row.peer.headers,
      replicas: row.peer.replicas?.map((replica) => ({ pid: replica.pid!, url: `${replica.base}/chat/completions`, headers: replica.headers })),
    })),
    CPU_REQUESTS,
    CPU_CONCURRENCY,
    CPU_TURNS,
  );
  live.forEach((row, i) => {
    row.cpu = cpu[i]!;
    row.failures += cpu[i]!.failures;
  });
  loads();
  console.error(`${request.name}: done`);
}
const mockCpu = cpuMs(mockPid);

const added = (row: Row, p: number) => (row.samples ? percentile(row.samples.gateway, p) - percentile(row.samples.direct, p) : NaN);
const bareOf = (row: Row) => rows.find((other) => other.request === row.request && other.peer === peers[0] && !other.failed);
const ratio = (value: number, base: number | undefined) => (base !== undefined && Number.isFinite(value) && base > 0 ? `${fmt(value / base, 2)}×` : 'n/a');

const tableRows = rows.map((row) => {
  if (row.failed) return [row.peer.name, row.request, `**failed**: ${row.failed.replace(/\|/g, '\\|').replace(/\s+/g, ' ')}`, '', '', '', '', '', '', ''];
  const bare = bareOf(row);
  return [
    row.peer.name,
    row.request,
    fmt(percentile(row.samples!.direct, 50), 3),
    fmt(percentile(row.samples!.gateway, 50), 3),
    `**${fmt(added(row, 50), 3)}**`,
    fmt(added(row, 99), 3),
    row === bare ? '1.00×' : ratio(added(row, 50), bare && added(bare, 50)),
    fmt(row.cpu!.ms, 3),
    row === bare ? '1.00×' : bare?.cpu ? `${fmt(cpuRatio(row.cpu!, bare.cpu), 2)}×` : 'n/a',
    row.failures,
  ];
});

console.log(`## Peers in the same run (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)

\`bench/peers.ts\` (\`npx tsx bench/peers.ts [pairs] [cpu-requests]\`): the same OpenAI chat completion
sent directly to \`test/support/mock-upstream.ts\` and through each peer, interleaved, at concurrency 1
(${PAIRS} pairs per peer and request, in ${CHUNKS} chunks with the peers taking turns); latency to the last
byte in ms, "added" = the peer's percentile minus the direct one. CPU per request: the peer process's
own user + system time (/proc/<pid>/stat) per request at concurrency ${CPU_CONCURRENCY} (${cpuLoadText()}), in ms: the median of ${CPU_TURNS} turns with the peers taking turns, and
as a ratio the median of each turn's ratio to the bare proxy. The bare proxy and each ollama-arena with
keys on run in ${REPLICAS} processes each, started and loaded alike, a turn's figure being their median:
each process's JIT makes it cost up to a sixth more or less than another of the same build, for as long
as it lives. Each process's own figure is listed under the table.
Ratios are to the bare proxy of the same request. "The stack floor" is the gateway's own framework and
HTTP client with no gateway work (a Fastify route that parses the body and forwards it through undici):
what is above it is the gateway's own work. "The floor without Fastify" does the same from a bare
node:http server: the gap between the two floors is what the framework costs. Each peer, the mock and the load generator are
processes of their own on loopback. ollama-arena runs as \`npm start\` runs it (\`LOG_LEVEL=info\`);
"keys on" sends an API key with a rate limit of its own (checked on every request) and records usage.

Machine: ${machine()}. Load average (1 min) during the run: ${fmt(Math.min(...loadSamples), 1)}-${fmt(Math.max(...loadSamples), 1)}, mean ${fmt(mean(loadSamples), 1)}. Mock upstream CPU over the whole run: ${mockCpu} ms.

${table(['peer', 'request', 'direct p50', 'peer p50', 'added p50', 'added p99', 'added p50 / bare', 'CPU ms/request', 'CPU / bare', 'failures'], tableRows)}

CPU ms per request of each process, for the peers run in several:
${rows
  .flatMap((row) => (row.cpu && row.cpu.processes.length > 1 ? [`- ${row.peer.name}, ${row.request}: ${processFigures(row.cpu)}`] : []))
  .join('\n')}
`);
await stopAll();
