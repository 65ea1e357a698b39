import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, SHARED_MODELS, tempDir } from '../support/server.js';

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
