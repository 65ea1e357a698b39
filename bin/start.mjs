#!/usr/bin/env node
// `npm start`: builds the web UI only when its sources changed since the last build, then runs the
// server (src/main.ts) in this same process.
//
// The server's largest dependencies are imported first, by Node's own loader, before tsx's loader
// hooks are registered: with the hooks in place every one of their ~900 module files also passes
// through tsx's resolve and load hooks, which made a start cost about a third more CPU time (measured
// on a 2-core machine: 2.0-2.4 s of CPU against 2.8-3.8 s). They are plain JavaScript and need no
// hook; the server's own imports of them then find them already loaded. The list only saves time: a
// package missing from it is loaded through the hooks as before.
import process from 'node:process';
import { register } from 'tsx/esm/api';

await Promise.all(
  ['node-llama-cpp', 'kysely', 'fastify', 'pino', 'better-sqlite3', 'pg', 'ioredis', 'prom-client', 'ajv', 'yaml', '@fastify/static', '@fastify/swagger', '@fastify/swagger-ui', '@fastify/cors'].map(
    (name) => import(name),
  ),
);
register();

const { ensureWebBuilt } = await import('../src/web-build.ts');
try {
  ensureWebBuilt(() => process.stderr.write('ollama-arena: building the web UI (first start or its sources changed)…\n'));
} catch {
  // vite has printed its errors above; serving the API with an app older than its sources would hide them
  process.stderr.write('ollama-arena cannot start: building the web UI failed (see above)\n');
  process.exit(1);
}
await import('../src/main.ts');
