import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Vitest global setup: the browser tests need the built web app, so it is built once before any test
 * file runs, unless web/dist is already newer than every source of the web app.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const WEB = path.join(ROOT, 'web');

function newest(entry: string): number {
  const stat = fs.statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...fs.readdirSync(entry).map((name) => newest(path.join(entry, name))));
}

export default function setup(): void {
  const index = path.join(WEB, 'dist', 'index.html');
  const sources = Math.max(newest(path.join(WEB, 'src')), newest(path.join(WEB, 'index.html')), newest(path.join(WEB, 'vite.config.ts')));
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'web', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}
