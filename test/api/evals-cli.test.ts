import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';

/**
 * The `ollama-arena eval` command as a CI pipeline runs it: a separate process, against a running
 * server or with its own server in process; its exit code follows the threshold (0 met, 1 not met,
 * 2 usage or connection error).
 */

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/ollama-arena.mjs'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, OLLAMA_HOSTS: '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the eval command', () => {
  let server: RunningServer;
  const dir = tempDir('eval-cli-');
  const suite = (extra: string) => {
    const file = path.join(dir, `suite-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(
      file,
      `name: cli\nprompts:\n  - Once upon a time\n  - Tell me about a dog\nmodel_instances:\n  - { model: stories260K, num_predict: 6, seed: 1 }\n  - { model: stories260K, num_predict: 6, seed: 2 }\nassert:\n  - { type: regex, value: '\\w' }\n${extra}`,
    );
    return file;
  };

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('exits 0 when every configuration meets the suite threshold, prints the table and writes the export', async () => {
    const out = path.join(dir, 'result.md');
    const result = await cli(['eval', suite('threshold: { pass_rate: 0.9 }\n'), '--server', server.url, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('| configuration | pass rate | 95% interval');
    expect(result.stdout).toContain('| stories260K__0.7_0.9_40_1.1_6_1 | 100.0% (2/2) ✓');
    expect(result.stderr).toContain('[##############################] 4/4');
    expect(fs.readFileSync(out, 'utf8')).toContain('# Evaluation: cli');
  });

  it('exits 1 when a configuration misses the threshold given on the command line', async () => {
    const passing = await cli(['eval', suite(''), '--server', server.url, '--threshold', '0.5', '--quiet']);
    expect(passing.code, passing.stderr).toBe(0);
    const failing = path.join(dir, 'failing.yaml');
    fs.writeFileSync(failing, 'prompts: [Once upon a time]\nmodel_instances: [{ model: stories260K, num_predict: 6, seed: 1 }]\nassert: [{ type: contains, value: zzqqxx }]\n');
    const below = await cli(['eval', failing, '--server', server.url, '--threshold', '0.5', '--quiet']);
    expect(below.code, below.stderr).toBe(1);
    expect(below.stdout).toMatch(/✗ stories260K__0.7_0.9_40_1.1_6_1: pass rate 0 is below 0.5/);
  });

  it('exits 2 on a usage or connection error', { timeout: 180_000 }, async () => {
    expect((await cli(['eval'])).code).toBe(2);
    expect((await cli(['eval', path.join(dir, 'missing.yaml'), '--server', server.url])).code).toBe(2);
    expect((await cli(['eval', suite(''), '--threshold', '2', '--server', server.url])).code).toBe(2);
    const unknownModel = path.join(dir, 'unknown.yaml');
    fs.writeFileSync(unknownModel, 'prompts: [x]\nmodel_instances: [{ model: no-such-model }]\n');
    const refused = await cli(['eval', unknownModel, '--server', server.url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Model not found: no-such-model');
    const closed = await cli(['eval', suite(''), '--server', `http://127.0.0.1:${await freePort()}`]);
    expect(closed.code).toBe(2);
    expect(closed.stderr).toMatch(/error: fetch failed/);
  });

  it('runs in process without a server, with the same exit codes', { timeout: 240_000 }, async () => {
    const env = { MODELS_DIR: SHARED_MODELS, DATA_DIR: tempDir('eval-cli-data-') };
    const met = await cli(['eval', suite('threshold: { pass_rate: 1 }\n'), '--quiet'], env);
    expect(met.code, met.stderr).toBe(0);
    expect(met.stdout).toContain('✓ every configuration meets the pass rate 1');
    const failing = path.join(dir, 'failing-in-process.yaml');
    fs.writeFileSync(failing, 'prompts: [Once upon a time]\nmodel_instances: [{ model: stories260K, num_predict: 6, seed: 1 }]\nassert: [{ type: is_json }]\nthreshold: { pass_rate: 0.5 }\n');
    expect((await cli(['eval', failing, '--quiet'], env)).code).toBe(1);
  });
});
