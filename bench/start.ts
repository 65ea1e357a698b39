/**
 * Time to healthy of `npm start`: from spawning the command to the first 200 from /health, with the
 * server and the web UI already built (their sources unchanged since the last build) and with neither
 * built (dist/ and web/dist removed, as on a first start after `npm ci`), beside the built server alone
 * (`node dist/main.mjs`), the sources run through tsx's loader (`node --import tsx src/main.ts`), and
 * the start as it once was (`npm run build:web && tsx src/main.ts`, which built the UI every time),
 * interleaved round by round so that each sees the same machine load.
 *
 * Besides the wall time, the CPU time the whole process tree (npm, the shell, node, a vite build) had
 * used when it became healthy, read from /proc: on a shared machine the wall time follows the load of
 * everything else, the CPU time much less.
 *
 * Usage: npx tsx bench/start.ts [rounds, default 5]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, REPO_ROOT, SHARED_MODELS, tempDir } from '../test/support/server.js';
import { fmt, machine, mean, percentile, table } from './lib.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const TICK_MS = 1000 / 100; // USER_HZ, 100 on Linux
const WEB_DIST = path.join(REPO_ROOT, 'web', 'dist');

interface Way {
  name: string;
  command: string[];
  /** Run before each start: makes the UI built or not. */
  prepare(): void;
}

const keepBuilt = () => undefined;
/** As after `npm ci` on a fresh clone: neither the server nor the UI built. */
const removeBuilds = () => {
  fs.rmSync(WEB_DIST, { recursive: true, force: true });
  fs.rmSync(path.join(REPO_ROOT, 'dist'), { recursive: true, force: true });
};
const ways: Way[] = [
  { name: '`npm start`, server and UI already built', command: ['npm', 'start'], prepare: keepBuilt },
  { name: '`npm start`, nothing built (first start)', command: ['npm', 'start'], prepare: removeBuilds },
  { name: 'server alone, built: `node dist/main.mjs`', command: [process.execPath, 'dist/main.mjs'], prepare: keepBuilt },
  { name: 'server alone, through the loader: `node --import tsx src/main.ts`', command: [process.execPath, '--import', 'tsx', 'src/main.ts'], prepare: keepBuilt },
  { name: 'before: `npm run build:web && tsx src/main.ts` (built every start)', command: ['sh', '-c', 'npm run build:web && node_modules/.bin/tsx src/main.ts'], prepare: keepBuilt },
];

/** CPU time (user + system, and that of children already waited for) of `pid` and all its descendants, in ms. */
function treeCpuMs(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name, in parentheses, may hold spaces: the fields are counted after it.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      stats.set(Number(entry), { ppid: Number(fields[1]), ticks });
    } catch {
      // the process ended while the list was read
    }
  }
  let total = 0;
  const pending = [pid];
  while (pending.length) {
    const current = pending.pop()!;
    total += stats.get(current)?.ticks ?? 0;
    for (const [child, { ppid }] of stats) if (ppid === current) pending.push(child);
  }
  return total * TICK_MS;
}

function stopTree(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    // npm and the shell are the group's leaders: the signal goes to the whole group, server included.
    process.kill(-child.pid!, 'SIGTERM');
  });
}

async function startOnce(way: Way): Promise<{ wallMs: number; cpuMs: number; built: boolean }> {
  way.prepare();
  const port = await freePort();
  const started = performance.now();
  const child = spawn(way.command[0]!, way.command.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODELS_DIR: SHARED_MODELS, DATA_DIR: tempDir('bench-start-'), OLLAMA_HOSTS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${way.name} exited: ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (performance.now() - started > 180_000) throw new Error(`${way.name} did not become healthy: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const wallMs = performance.now() - started;
    return { wallMs, cpuMs: treeCpuMs(child.pid!), built: stderr.includes('building the web UI') };
  } finally {
    await stopTree(child);
  }
}

const results = new Map<Way, { wall: number[]; cpu: number[]; built: number }>(ways.map((way) => [way, { wall: [], cpu: [], built: 0 }]));
const loads: number[] = [];
// A first start of each, not counted: tsx's transform cache and the file system cache are warm after it.
for (const way of ways) await startOnce(way);
for (let round = 0; round < ROUNDS; round++) {
  for (const way of ways) {
    loads.push(os.loadavg()[0]!);
    const run = await startOnce(way);
    const result = results.get(way)!;
    result.wall.push(run.wallMs);
    result.cpu.push(run.cpuMs);
    if (run.built) result.built++;
  }
  console.error(`round ${round + 1}/${ROUNDS} done`);
}
// Leave the UI built, as it was found.
await startOnce(ways[0]!);

const rows = ways.map((way) => {
  const { wall, cpu, built } = results.get(way)!;
  return [way.name, fmt(percentile(wall, 50), 0), fmt(Math.min(...wall), 0), fmt(Math.max(...wall), 0), fmt(mean(cpu), 0), way.command[0] === 'npm' ? `${built}/${ROUNDS}` : 'n/a'];
});
console.log(`## Start-up time (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)

\`bench/start.ts\`: wall time from spawning the command to the first 200 from \`/health\`, and the CPU
time the process tree had used by then (npm, shell, node and any vite build, from /proc), in ms.
Models from the shared models directory (1 model), a fresh SQLite database each start, no Ollama.
${ROUNDS} rounds, the ${ways.length} ways interleaved in each, after one uncounted warm-up start of each.

Machine: ${machine()}. Load average (1 min) at the starts: ${fmt(Math.min(...loads), 1)}-${fmt(Math.max(...loads), 1)}, mean ${fmt(mean(loads), 1)}.

${table(['start', 'wall p50', 'wall min', 'wall max', 'CPU mean', 'said it built the UI'], rows)}
`);
