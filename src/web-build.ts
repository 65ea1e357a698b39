import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sourcesHash } from '../bin/sources-hash.mjs';

/**
 * Whether web/dist is the build of the web app's current sources, and building it when it is not.
 * `npm start` and the test suite's global setup both ask here, so a start never rebuilds an app whose
 * sources did not change, and a test run never serves an app older than its sources.
 *
 * Every `vite build` (npm start, `npm run build:web`, the tests) records the hash of the sources it
 * built in web/dist (the plugin in web/vite.config.ts); bin/sources-hash.mjs says why a hash of contents.
 */

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** The file in web/dist holding the hash of the sources that build was made from. */
export const STAMP_FILE = '.sources-sha256';

/**
 * What goes into the bundle: the web app itself (with its vite config and index.html), the two
 * directories of the server's code it imports at run time (src/shared, src/domain; its other imports
 * from src/ are types, erased by the build), and the lockfile, which pins vite, React and the rest.
 */
const SOURCES = ['web', 'src/shared', 'src/domain', 'package-lock.json'];

/** The hash of every source of the web app under `root`: each file's path and contents, in path order. */
export function webSourcesHash(root = REPO_ROOT): string {
  return sourcesHash(root, SOURCES);
}

/** Records, in a finished build, the hash of the sources it was made from. */
export function writeWebStamp(hash: string, root = REPO_ROOT): void {
  fs.writeFileSync(path.join(root, 'web', 'dist', STAMP_FILE), `${hash}\n`);
}

/** True when web/dist holds a complete build of the sources as they are now. */
export function webBuildIsCurrent(root = REPO_ROOT): boolean {
  const dist = path.join(root, 'web', 'dist');
  if (!fs.existsSync(path.join(dist, 'index.html'))) return false;
  let stamp: string;
  try {
    stamp = fs.readFileSync(path.join(dist, STAMP_FILE), 'utf8').trim();
  } catch {
    return false; // a build from before the stamp, or one interrupted before its end
  }
  return stamp === webSourcesHash(root);
}

/**
 * Builds the web app unless web/dist is current; `announce` is called first when it builds (a build
 * takes many seconds, and whoever waits should know why). Returns whether it built.
 */
export function ensureWebBuilt(announce: () => void = () => undefined, root = REPO_ROOT): boolean {
  if (webBuildIsCurrent(root)) return false;
  announce();
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'web', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  return true;
}
