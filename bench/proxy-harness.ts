import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { once } from 'node:events';
import path from 'node:path';
import { freePort, REPO_ROOT, tempDir } from '../test/support/server.js';
import { spawnMockProcess } from '../test/support/mock-upstream.js';
import { ensureServerBuilt } from '../bin/server-build.mjs';
import { fmt, percentile } from './lib.js';

/**
 * What the proxy benchmarks (gateway-overhead.ts, peers.ts) share: the mock upstream, the gateway and
 * the peers each in a process of their own, requests sent over one keep-alive agent and timed to their
 * last byte, and each process's own CPU time.
 */

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((child) => child.kill()));

/** Stops every process started here and waits for them to end. */
export async function stopAll(): Promise<void> {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined)));
  agent.destroy();
}

/** Runs test/support/mock-upstream.ts in a process of its own with `args`; resolves with the URL of each and the process id (for its CPU time). */
export async function startMockProcessWithPid(args: string[]): Promise<{ urls: Record<string, string>; pid: number }> {
  const { child, urls } = await spawnMockProcess(args);
  children.push(child);
  return { urls, pid: child.pid! };
}

/**
 * The gateway as `npm start` runs it (default log level), with an empty models dir, ready once it
 * lists every model of `models`. `env` adds settings (WEB_CHAT_TOKEN, ...). `checkout`: another
 * checkout of the project to run instead of this one (an earlier commit, to compare builds in one run),
 * built already (`npm ci && npm start` there once).
 */
export async function startGateway(
  backends: { ollama?: string; openai?: string },
  models: string[],
  env: Record<string, string> = {},
  checkout = REPO_ROOT,
): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  // The server as `npm start` runs it: the one-file build of src/, made first if it is out of date.
  if (checkout === REPO_ROOT) await ensureServerBuilt();
  const main = path.join(checkout, 'dist/main.mjs');
  if (!fs.existsSync(main)) throw new Error(`${main} is not built: run \`npm ci && npm start\` in ${checkout} once`);
  const child = spawn(process.execPath, [main], {
    cwd: checkout,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      MODELS_DIR: tempDir('overhead-models-'),
      DATA_DIR: tempDir('overhead-data-'),
      OLLAMA_HOSTS: backends.ollama ?? '',
      OPENAI_BACKENDS: backends.openai ?? '',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      ...env,
    },
    // Logs are written as in production (serialised), then dropped.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const auth: Record<string, string> = env.WEB_CHAT_TOKEN ? { authorization: `Bearer ${env.WEB_CHAT_TOKEN}` } : {};
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const listed = await fetch(`${url}/api/models`, { headers: auth })
      .then((r) => r.json() as Promise<{ models?: string[] }>)
      .catch(() => undefined);
    if (models.every((model) => listed?.models?.includes(model))) return { url, pid: child.pid! };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`gateway did not start or did not list ${models.join(', ')}`);
}

/** A Node program run as its own process, ready once `ready` (a URL) answers at all. */
export async function startProgram(script: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<{ pid: number }> {
  const child = spawn(process.execPath, [script, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${path.basename(script)} exited: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    if (await fetch(ready).then(() => true, () => false)) return { pid: child.pid! };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${path.basename(script)} did not answer at ${ready}`);
}

/** User and system CPU time a process has used, in milliseconds (/proc/<pid>/stat, ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** One request to its last byte; resolves with the milliseconds it took, or -1 on a failure (any status but 200). */
export function send(url: string, body: string | undefined, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const options =
      body === undefined
        ? { method: 'GET', agent, headers }
        : { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } };
    const request = http.request(url, options, (response) => {
      response.on('data', () => undefined);
      response.on('end', () => resolve(response.statusCode === 200 ? performance.now() - started : -1));
      response.on('error', () => resolve(-1));
    });
    request.on('error', () => resolve(-1));
    request.end(body);
  });
}

export interface Scenario {
  name: string;
  direct: string;
  gateway: string;
  /** A GET when undefined. */
  body?: string;
  /** Headers of the requests through the gateway (a key, a peer's routing headers). */
  headers?: Record<string, string>;
}

export interface Samples {
  direct: number[];
  gateway: number[];
  failures: number;
}

/** `concurrency` workers, each alternating direct and gateway (the order flipping every pair). */
export async function closedLoop(scenario: Scenario, concurrency: number, pairs: number): Promise<Samples> {
  const samples: Samples = { direct: [], gateway: [], failures: 0 };
  let next = 0;
  const record = (list: number[], ms: number) => (ms < 0 ? samples.failures++ : list.push(ms));
  const direct = () => send(scenario.direct, scenario.body);
  const gateway = () => send(scenario.gateway, scenario.body, scenario.headers);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < pairs) {
        const n = next++;
        if (n % 2 === 0) {
          record(samples.direct, await direct());
          record(samples.gateway, await gateway());
        } else {
          record(samples.gateway, await gateway());
          record(samples.direct, await direct());
        }
      }
    }),
  );
  return samples;
}

/** A gateway with API management on: an admin token, and an API key whose rate limit is checked on every request (never reached). */
export async function startGatewayWithKey(
  backends: { ollama?: string; openai?: string },
  models: string[],
  checkout = REPO_ROOT,
): Promise<{ url: string; pid: number; headers: Record<string, string> }> {
  const token = 'bench-admin-token';
  const { url, pid } = await startGateway(backends, models, { WEB_CHAT_TOKEN: token }, checkout);
  const created = await fetch(`${url}/api/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'bench', rpm: 1_000_000 }),
  });
  if (created.status !== 201) throw new Error(`creating the key answered ${created.status}: ${await created.text()}`);
  const { key } = (await created.json()) as { key: string };
  return { url, pid, headers: { authorization: `Bearer ${key}` } };
}

/**
 * The load generator of the CPU column: wrk when it is installed (a C program, one thread, a fraction
 * of a core), else this process's own HTTP client. A Node client on the same 2 cores costs about as
 * much CPU as the process it measures, and how fast it sends changes what each request costs there
 * (how many arrive per turn of its event loop): ratios measured with it moved by half from run to run.
 */
export const CPU_LOAD = spawnSync('wrk', ['--version']).error === undefined ? 'wrk' : 'node';

/**
 * Whether processes are pinned to cores for the CPU column: with two cores or more and `taskset`, the
 * processes measured share core 0 and the load (wrk, the mock upstream) has core 1. Unpinned, the
 * scheduler moved them between the cores from turn to turn, and two runs of the same build a quarter of
 * an hour apart disagreed by up to a fifth on its ratio.
 */
const PINNED = CPU_LOAD === 'wrk' && os.availableParallelism() >= 2 && spawnSync('taskset', ['-V']).error === undefined;

/** Puts every thread of process `pid` on `core` (when pinning, see PINNED). */
function pin(pid: number, core: number): void {
  if (PINNED) spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

/**
 * Pins the processes measured to core 0 and the load's (the mock upstream) to core 1, when pinning
 * (see PINNED): called once everything has started, so that every figure of a run is taken alike.
 */
export function pinToCores(measured: number[], load: number[]): void {
  for (const pid of measured) pin(pid, 0);
  for (const pid of load) pin(pid, 1);
}

/** How the CPU column was loaded, for the report. */
export function cpuLoadText(): string {
  if (CPU_LOAD !== 'wrk') return "load from the benchmark's own Node client: wrk is not installed";
  return PINNED ? 'load from wrk -t1, at least 2 s a turn; the processes measured on core 0, wrk and the mock upstream on core 1' : 'load from wrk -t1, at least 2 s a turn';
}

/** CPU milliseconds process `pid` spends per request, over `requests` sent to `url` at `concurrency`. */
export async function cpuPerRequest(pid: number, url: string, body: string | undefined, headers: Record<string, string> = {}, requests = 3000, concurrency = 4): Promise<{ ms: number; failures: number }> {
  if (CPU_LOAD === 'wrk') return cpuPerRequestWrk(pid, url, body, headers, requests, concurrency);
  let next = 0;
  let failures = 0;
  const before = cpuMs(pid);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < requests) if ((await send(url, body, headers)) < 0) failures++;
    }),
  );
  return { ms: (cpuMs(pid) - before) / requests, failures };
}

/** wrk: for as long as `requests` take at about 1,000 per second (at least 2 s); the count is wrk's own. */
async function cpuPerRequestWrk(pid: number, url: string, body: string | undefined, headers: Record<string, string>, requests: number, concurrency: number): Promise<{ ms: number; failures: number }> {
  const script = path.join(tempDir('wrk-'), 'request.lua');
  const lines = [`wrk.method = "${body === undefined ? 'GET' : 'POST'}"`];
  if (body !== undefined) lines.push(`wrk.body = ${JSON.stringify(body)}`, 'wrk.headers["content-type"] = "application/json"');
  for (const [name, value] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
  fs.writeFileSync(script, `${lines.join('\n')}\n`);
  const seconds = Math.max(2, Math.round(requests / 1000));
  const before = cpuMs(pid);
  const wrk = ['wrk', '-t1', `-c${concurrency}`, `-d${seconds}s`, '-s', script, url];
  const [command, ...args] = PINNED ? ['taskset', '-c', '1', ...wrk] : wrk;
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await once(child, 'close');
  const cpu = cpuMs(pid) - before;
  const sent = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
  const refused = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)?.slice(1).reduce((sum, n) => sum + Number(n), 0) ?? 0;
  if (sent === 0) return { ms: NaN, failures: requests };
  return { ms: cpu / sent, failures: refused + errors };
}

export interface CpuTarget {
  pid: number;
  url: string;
  body?: string;
  headers?: Record<string, string>;
  /**
   * Other processes of the same program, started alike, answering the same request: a turn's figure is
   * the median over all of them. Two processes of one build differ by up to a sixth (once by more than
   * half) for as long as they live, as each JIT compiles the code its own way; the median of three
   * is a figure of the build, not of one process.
   */
  replicas?: Replica[];
}

/** Another process of a CpuTarget's program: where it answers, and its own headers (its own API key) if any. */
export interface Replica {
  pid: number;
  url: string;
  headers?: Record<string, string>;
}

export interface CpuMeasure {
  /** The median over the turns of the CPU ms per request. */
  ms: number;
  /** Each turn's CPU ms per request, in the order of the turns. */
  turns: number[];
  /** Each process's median over the turns: the target's own first, then its replicas'. */
  processes: number[];
  failures: number;
}

/**
 * CPU per request of several processes, measured in `rounds` turns (each target `requests / rounds`
 * requests per turn, the targets taking turns), so that a change of the machine's load falls on all of
 * them alike: measured one after another, a ratio between two of them moved by half from run to run.
 * Its load runs on core 1 when processes are pinned (see pinToCores).
 */
export async function interleavedCpu(targets: CpuTarget[], requests = 3000, concurrency = 4, rounds = 10): Promise<CpuMeasure[]> {
  const measures = targets.map((): CpuMeasure => ({ ms: NaN, turns: [], processes: [], failures: 0 }));
  const byProcess = targets.map((target) => processesOf(target).map((): number[] => []));
  const perRound = Math.ceil(requests / rounds);
  for (let round = 0; round < rounds; round++) {
    // The order flips every turn, so that no target always runs right after the same one.
    const order = round % 2 === 0 ? [...targets.keys()] : [...targets.keys()].reverse();
    for (const i of order) {
      const target = targets[i]!;
      const figures: number[] = [];
      for (const [p, { pid, url, headers }] of processesOf(target).entries()) {
        const measured = await cpuPerRequest(pid, url, target.body, headers ?? target.headers, perRound, concurrency);
        figures.push(measured.ms);
        byProcess[i]![p]!.push(measured.ms);
        measures[i]!.failures += measured.failures;
      }
      measures[i]!.turns.push(median(figures));
    }
  }
  measures.forEach((measure, i) => {
    measure.ms = median(measure.turns);
    measure.processes = byProcess[i]!.map(median);
  });
  return measures;
}

/** The processes that answer a target: its own, then its replicas. */
function processesOf(target: CpuTarget): Replica[] {
  return [target, ...(target.replicas ?? [])];
}

/** Each process's CPU ms per request, as the benchmarks list them under their tables. */
export function processFigures(measure: CpuMeasure): string {
  return measure.processes.map((ms) => fmt(ms, 3)).join(', ');
}

/** The median over the turns of one target's CPU per request divided by another's in the same turn. */
export function cpuRatio(measure: CpuMeasure, reference: CpuMeasure): number {
  return median(measure.turns.map((ms, turn) => ms / reference.turns[turn]!));
}

/** The middle value of those that are numbers (a turn that sent nothing has none). */
function median(values: number[]): number {
  return percentile(values.filter(Number.isFinite), 50);
}
