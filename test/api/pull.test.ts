import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';
import { nameFromSource, resolveSource } from '../../src/providers/embedded/pull-source.js';

/** The Arena API pull_model and delete_model, with real downloads from a local HTTP server. */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');

let server: RunningServer;
let modelsDir: string;
let slowHost: FileServer;
let droppingHost: FileServer;

beforeAll(async () => {
  modelsDir = tempDir('arena-models-');
  server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.1' });
  slowHost = await serveFile(MODEL_FILE, { chunkSize: 64 * 1024, delayMs: 40 });
  droppingHost = await serveFile(MODEL_FILE, { chunkSize: 64 * 1024, delayMs: 5, dropAfter: 512 * 1024 });
});
afterAll(async () => {
  await server.close();
  await slowHost.close();
  await droppingHost.close();
});

async function waitForJob(id: string) {
  let job: Record<string, unknown> = {};
  await expect
    .poll(
      async () => {
        job = await (await fetch(`${server.url}/api/pulls/${id}`)).json();
        return job.state;
      },
      { timeout: 20_000, interval: 50 },
    )
    .not.toBe('running');
  return job;
}

describe('POST /api/pull_model', () => {
  it('requires a model', async () => {
    const response = await postJson(`${server.url}/api/pull_model`, {});
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'Model name is required' });
  });

  it('refuses a source it cannot fetch with a clear 400', async () => {
    const response = await postJson(`${server.url}/api/pull_model`, { model: 'ftp://example/x.gguf' });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatch(/http\(s\) URL or an hf:/);
  });

  it('downloads in the background, shows progress, then lists the model', async () => {
    const source = `${slowHost.url}/models/tiny-story.gguf`;
    const response = await postJson(`${server.url}/api/pull_model`, { model: source });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ status: 'downloading', model: source, name: 'tiny-story:latest' });

    // While it runs, progress is observable and the half file is not a model.
    const seen: number[] = [];
    await expect
      .poll(
        async () => {
          const job = await (await fetch(`${server.url}/api/pulls/${body.job_id}`)).json();
          if (job.state === 'running' && typeof job.completed === 'number') seen.push(job.completed);
          const names = (await (await fetch(`${server.url}/api/models`)).json()).models;
          if (job.state === 'running') expect(names).not.toContain('tiny-story:latest');
          return job.state;
        },
        { timeout: 20_000, interval: 30 },
      )
      .toBe('success');
    expect(new Set(seen).size).toBeGreaterThan(1);
    const job = await (await fetch(`${server.url}/api/pulls/${body.job_id}`)).json();
    expect(job).toMatchObject({ state: 'success', percent: 100, total: fs.statSync(MODEL_FILE).size });

    const models = (await (await fetch(`${server.url}/api/models`)).json()).models;
    expect(models).toContain('tiny-story:latest');
    // And the downloaded model really generates.
    const chat = await postJson(`${server.url}/api/chat`, {
      history: [{ role: 'user', content: 'Once upon a time' }],
      model_instances: [{ model: 'tiny-story', num_predict: 5 }],
    });
    expect((await chat.json()).metrics.tokens).toBeGreaterThan(0);
  });

  it('leaves nothing that looks like a model when the connection drops mid-file', async () => {
    const response = await postJson(`${server.url}/api/pull_model`, { model: `${droppingHost.url}/broken.gguf` });
    const { job_id } = await response.json();
    const job = await waitForJob(job_id);
    expect(job.state).toBe('error');
    expect(String(job.error)).toMatch(/download/);
    expect(fs.readdirSync(modelsDir).filter((f) => f.startsWith('broken'))).toEqual([]);
    const models = (await (await fetch(`${server.url}/api/models`)).json()).models;
    expect(models).not.toContain('broken:latest');
  });

  it('reports a missing file as a failed job', async () => {
    const { job_id } = await (await postJson(`${server.url}/api/pull_model`, { model: `${slowHost.url}/missing.bin?x=.gguf` })).json();
    expect((await waitForJob(job_id)).state).toBe('error');
  });

  it('names models after the file and resolves hf: references', () => {
    expect(nameFromSource('https://host/a/My-Model.Q4_K_M.gguf?download=true')).toBe('My-Model.Q4_K_M:latest');
    expect(resolveSource('hf:owner/repo/file.gguf')).toBe('https://huggingface.co/owner/repo/resolve/main/file.gguf');
    expect(() => resolveSource('hf:owner')).toThrow(/hf:owner\/repo\/file.gguf/);
  });
});

describe('POST /api/delete_model', () => {
  it('requires a model', async () => {
    const response = await postJson(`${server.url}/api/delete_model`, {});
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'Model name is required' });
  });

  it('answers 404 for a model that does not exist', async () => {
    const response = await postJson(`${server.url}/api/delete_model`, { model: 'ghost:1b' });
    expect(response.status).toBe(404);
  });

  it('deletes a model and its file', async () => {
    const { job_id } = await (await postJson(`${server.url}/api/pull_model`, { model: `${slowHost.url}/doomed.gguf` })).json();
    expect((await waitForJob(job_id)).state).toBe('success');
    const response = await postJson(`${server.url}/api/delete_model`, { model: 'doomed' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'deleted', model: 'doomed' });
    expect(fs.existsSync(path.join(modelsDir, 'doomed.gguf'))).toBe(false);
    expect((await (await fetch(`${server.url}/api/models`)).json()).models).not.toContain('doomed:latest');
  });
});
