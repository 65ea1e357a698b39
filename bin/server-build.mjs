// The server as one JavaScript file, dist/main.mjs (and the web-build check beside it), built by
// esbuild from src/ whenever the sources differ from those of the last build. `npm start` runs the
// build rather than the TypeScript through tsx: no loader then works on each module file at start,
// nor on each closure at run time (tsx keeps function names by wrapping every function it creates,
// which the gateway's CPU profile showed on its hot path). Dependencies stay in node_modules, loaded
// by Node as they are.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { sourcesHash } from './sources-hash.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'dist');
const STAMP = path.join(OUT, '.sources-sha256');
/** What the build depends on: the server's sources, the lockfile (versions) and the compiler settings. */
const SOURCES = ['src', 'package-lock.json', 'tsconfig.json', 'bin/server-build.mjs', 'bin/sources-hash.mjs'];

/** Builds dist/ unless it is the build of the current sources; `onBuild` is told before a build starts. */
export async function ensureServerBuilt(onBuild = () => {}) {
  const hash = sourcesHash(ROOT, SOURCES);
  const current = fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8').trim() === hash;
  if (current && fs.existsSync(path.join(OUT, 'main.mjs'))) return;
  onBuild();
  fs.rmSync(STAMP, { force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: { main: 'src/main.ts', 'web-build': 'src/web-build.ts' },
    outdir: OUT,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
  fs.writeFileSync(STAMP, `${hash}\n`);
}
