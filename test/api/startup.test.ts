import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, SHARED_MODELS, spawnServer, tempDir } from '../support/server.js';
import { startMockUpstream } from '../support/mock-upstream.js';
import { databaseLine, openLine } from '../../src/start-report.js';

/** A server that cannot start says why in one line and exits with 1, rather than dumping a stack. */

function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, MODELS_DIR: SHARED_MODELS, OLLAMA_HOSTS: '', LOG_LEVEL: 'warn', DATA_DIR: tempDir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('start-up failures', () => {
  it('exits 1 with one clear line when PostgreSQL is unreachable', async () => {
    const dead = await freePort(); // nothing listens there
    const { code, stdout, stderr } = await run({ DATABASE_URL: `postgres://arena:secret@127.0.0.1:${dead}/arena`, PORT: String(await freePort()) });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`ollama-arena cannot start: PostgreSQL at 127.0.0.1:${dead}/arena is unreachable: connect ECONNREFUSED 127.0.0.1:${dead}\n`);
    expect(stderr).not.toContain('secret');
  }, 180_000); // the exit comes after a full start-up of tsx and the server, slow on a loaded machine
});

/** What a start says once it listens: one line each for the models, the model servers, the database and the address. */
describe('start-up report', () => {
  /** The `msg` of each JSON log line of the server's output. */
  const messages = (output: string) =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);

  it('logs the models directory and its models, the backends it reaches, the database and the URL to open', async () => {
    const mock = await startMockUpstream({ models: ['mock:latest'] });
    const dead = await freePort(); // nothing listens there
    const dataDir = tempDir();
    const server = await spawnServer({
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      OLLAMA_HOSTS: `${mock.url},127.0.0.1:${dead}`,
      OPENAI_BACKENDS: `${mock.url}/v1|sk-upstream-secret`,
    });
    try {
      // The report follows the health check (it probes the backends once the server answers).
      const deadline = Date.now() + 30_000;
      while (!messages(server.output()).some((msg) => msg.startsWith('open ')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const said = messages(server.output());
      expect(said).toContain(`models directory ${SHARED_MODELS}: 1 model found`);
      expect(said).toContain(
        `backends: embedded llama.cpp engine; Ollama ${mock.url} reachable; Ollama http://127.0.0.1:${dead} unreachable; OpenAI-compatible ${mock.url}/v1 reachable`,
      );
      expect(said).toContain(`database: SQLite ${path.join(dataDir, 'arena.db')}`);
      expect(said).toContain(`open ${server.url}/ in a browser`);
      expect(server.output()).not.toContain('sk-upstream-secret');
    } finally {
      await server.stop();
      await mock.close();
    }
  }, 180_000);

  it('names PostgreSQL and Redis by host and database, never with their passwords', () => {
    const line = databaseLine({ databaseUrl: 'postgres://arena:secret@db.internal:5433/arena', redisUrl: 'redis://:hunter2@cache:6380', dataDir: '/data' });
    expect(line).toBe('database: PostgreSQL db.internal:5433/arena, shared through Redis cache:6380');
  });

  it('gives a server listening on every interface an address a browser on this machine can open', () => {
    expect(openLine('0.0.0.0', 7860)).toBe('open http://localhost:7860/ in a browser (listening on every interface)');
    expect(openLine('::1', 7860)).toBe('open http://[::1]:7860/ in a browser');
  });
});
