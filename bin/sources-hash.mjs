// The hash of a build's sources: each file's path and contents, in path order. A hash of contents
// rather than modification times: a checkout or a branch switch touches every file without changing
// what a build would make. The server build (server-build.mjs) and the web UI's (src/web-build.ts)
// each record the one their output was made from and rebuild when it differs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Never sources: a build's own output and anything installed. */
const SKIPPED = new Set(['dist', 'node_modules']);

function files(root, entry, into) {
  const full = path.join(root, entry);
  if (!fs.existsSync(full)) return into;
  if (!fs.statSync(full).isDirectory()) {
    into.push(entry);
    return into;
  }
  for (const name of fs.readdirSync(full).sort()) {
    if (!SKIPPED.has(name)) files(root, path.join(entry, name), into);
  }
  return into;
}

/** The hash of every file under `entries` (files or directories, relative to `root`). */
export function sourcesHash(root, entries) {
  const hash = crypto.createHash('sha256');
  for (const file of entries.flatMap((entry) => files(root, entry, []))) {
    hash.update(file.split(path.sep).join('/')).update('\0').update(fs.readFileSync(path.join(root, file))).update('\0');
  }
  return hash.digest('hex');
}
