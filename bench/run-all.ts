/**
 * Runs every benchmark one after another (never together: they would share the two cores) and prints
 * their markdown sections, ready for bench/RESULTS.md.
 * Usage: npm run bench
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;
const scripts = ['engine-throughput.ts', 'arena-fanout.ts', 'memory.ts', 'gateway-overhead.ts', 'peers.ts', 'eval-throughput.ts', 'start.ts'].filter((file) =>
  fs.existsSync(path.join(here, file)),
);
for (const script of scripts) {
  const output = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, script)], {
    cwd: path.join(here, '..'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  console.log(output.trim() + '\n');
}
