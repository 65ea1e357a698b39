import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { buildServer, type BuildOptions } from '../../src/app.js';
import type { Services } from '../../src/http/services.js';
import type { ModelProvider } from '../../src/providers/provider.js';
import { readNdjson } from '../../src/shared/ndjson.js';
import { ensureServerBuilt } from '../../bin/server-build.mjs';

/** The shared test model, read in place from ../shared/models (never copied into the repo). */
export const SHARED_MODELS = path.resolve(import.meta.dirname, '../../../shared/models');
export const TEST_MODEL = 'stories260K:latest';
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export function tempDir(prefix = 'arena-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface RunningServer {
  url: string;
  port: number;
  app: FastifyInstance;
  services: Services;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The real server, in this process, on a free port, with its own data dir (a real SQLite file) and the
 * real test model. `env` takes the same settings as the environment (WEB_CHAT_TOKEN, DATABASE_URL...).
 * Ollama's default host is not probed unless OLLAMA_HOSTS is given.
 */
export async function startServer(
  env: Record<string, string> = {},
  backends: ModelProvider[] = [],
  logStream?: NodeJS.WritableStream,
  build: Pick<BuildOptions, 'loadLlama'> = {},
): Promise<RunningServer> {
  const dataDir = env.DATA_DIR ?? tempDir();
  const config = loadConfig({
    MODELS_DIR: SHARED_MODELS,
    OLLAMA_HOSTS: '',
    LOG_LEVEL: 'warn',
    SHUTDOWN_GRACE_SECONDS: '1',
    ...env,
    DATA_DIR: dataDir,
    PORT: '0',
  });
  const { app, services } = await buildServer({ config, backends, logStream, ...build });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, port, app, services, dataDir, close: () => app.close() };
}

export interface SpawnedServer {
  url: string;
  port: number;
  process: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The server as a separate process, run as `npm start` runs it: the build in dist/ of the current
 * sources (made by the test run's global setup, before any file runs). For restarts, replicas, signals.
 */
export async function spawnServer(env: Record<string, string> = {}): Promise<SpawnedServer> {
  await ensureServerBuilt(); // current already in a test run; a benchmark may be the first to need it
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/main.mjs'], {
    cwd: REPO_ROOT,
    env: { ...process.env, MODELS_DIR: SHARED_MODELS, OLLAMA_HOSTS: '', LOG_LEVEL: 'warn', DATA_DIR: tempDir(), ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  // A loaded two-core machine starting two replicas at once was measured at 42–53 s to healthy.
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      // Never leave a half-started server behind to load the machine for the tests after this one.
      child.kill('SIGKILL');
      throw new Error(`server did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    process: child,
    output: () => output,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        // A process ended by a signal has no exit code, only a signal code: it will not exit again.
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}

/** Reads an NDJSON response body line by line as it arrives. */
export function ndjsonLines<T = Record<string, unknown>>(response: Response): AsyncGenerator<T> {
  return readNdjson<T>(response.body!);
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}
