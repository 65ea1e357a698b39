#!/usr/bin/env node
// `npm start`: builds the server (dist/) and the web UI (web/dist) when their sources changed since
// their last build, then runs the server in this same process. Each start says what it builds.
import process from 'node:process';
import { ensureServerBuilt } from './server-build.mjs';

try {
  await ensureServerBuilt(() => process.stderr.write('ollama-arena: building the server (first start or its sources changed)…\n'));
} catch {
  // esbuild has printed its errors above
  process.stderr.write('ollama-arena cannot start: building the server failed (see above)\n');
  process.exit(1);
}
const { ensureWebBuilt } = await import('../dist/web-build.mjs');
try {
  ensureWebBuilt(() => process.stderr.write('ollama-arena: building the web UI (first start or its sources changed)…\n'));
} catch {
  // vite has printed its errors above; serving the API with an app older than its sources would hide them
  process.stderr.write('ollama-arena cannot start: building the web UI failed (see above)\n');
  process.exit(1);
}
await import('../dist/main.mjs');
