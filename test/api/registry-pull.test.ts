import fs from 'node:fs';
import path from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, postJson, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { OllamaBackend } from '../../src/providers/ollama/server.js';
import { serveRegistry, type RegistryServer } from '../support/registry-server.js';
import { parseRegistryName } from '../../src/providers/embedded/ollama-registry.js';
import { fileNameForModel, modelNameForFile } from '../../src/providers/embedded/gguf-catalog.js';

/**
 * Ollama registry names pulled by the embedded engine when no Ollama server is configured: the real
 * server against a stand-in registry on loopback that speaks the registry's wire format (manifest,
 * 307 to a CDN, sha256-addressed blob).
 */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');

let server: RunningServer;
let registry: RegistryServer;
let modelsDir: string;

beforeAll(async () => {
  registry = await serveRegistry(MODEL_FILE, {
    chunkSize: 64 * 1024,
    delayMs: 20,
    models: {
      'library/stories:latest': {},
      'library/stories:q8': {},
      'someone/tiny:v1': { delayMs: 0 },
      'library/slow:latest': { delayMs: 200 },
      'library/broken:latest': { dropAfter: 512 * 1024, delayMs: 5 },
      'library/liar:latest': { wrongDigest: true, delayMs: 0 },
    },
  });
  modelsDir = tempDir('registry-models-');
  // As with no settings at all: Ollama's default address is an optional host, and nothing answers
  // there, so names must not be sent to it.
  const noOllama = new OllamaBackend(`http://127.0.0.1:${await freePort()}`, { optional: true });
  server = await startServer({ MODELS_DIR: modelsDir, OLLAMA_REGISTRY: registry.url, PULL_ALLOW_HOSTS: '127.0.0.1' }, [noOllama]);
});
afterAll(async () => {
  await server?.close();
  await registry?.close();
});

type Job = { state: string; status: string; error?: string; digest?: string; total?: number; completed?: number; percent?: number; model: string };

async function job(id: string): Promise<Job> {
  return (await fetch(`${server.url}/api/pulls/${id}`)).json() as Promise<Job>;
}

async function startPull(model: string): Promise<string> {
  const response = await postJson(`${server.url}/api/pull_model`, { model });
  expect(response.status).toBe(200);
  return ((await response.json()) as { job_id: string }).job_id;
}

async function finished(id: string): Promise<Job> {
  await expect.poll(async () => (await job(id)).state, { timeout: 20_000, interval: 30 }).not.toBe('running');
  return job(id);
}

async function modelNames(): Promise<string[]> {
  return ((await (await fetch(`${server.url}/api/models`)).json()) as { models: string[] }).models;
}

/** Files a failed pull may have left under the name: none may remain, half-written or otherwise. */
function leftovers(stem: string): string[] {
  return fs.readdirSync(modelsDir).filter((f) => f.startsWith(stem));
}

describe('pulling an Ollama name without an Ollama server', () => {
  it('downloads the model layer with Ollama-style progress, then lists and runs the model', async () => {
    const response = await postJson(`${server.url}/api/pull_model`, { model: 'stories' });
    const body = await response.json();
    expect(body).toMatchObject({ status: 'downloading', model: 'stories', name: 'stories:latest' });

    const seen: Job[] = [];
    await expect
      .poll(
        async () => {
          const current = await job(body.job_id);
          if (current.state === 'running') {
            seen.push(current);
            expect(await modelNames()).not.toContain('stories:latest');
          }
          return current.state;
        },
        { timeout: 20_000, interval: 25 },
      )
      .toBe('success');
    const pulling = seen.filter((j) => j.status.startsWith('pulling ') && j.status !== 'pulling manifest');
    expect(new Set(pulling.map((j) => j.completed)).size).toBeGreaterThan(1);
    expect(pulling[0]).toMatchObject({ status: `pulling ${registry.digest.slice(7, 19)}`, digest: registry.digest, total: registry.size });
    expect(await job(body.job_id)).toMatchObject({ state: 'success', percent: 100, completed: registry.size });

    // The wire: the manifest asked for with Docker's v2 media type, the blob fetched through the redirect.
    const paths = registry.requests.map((r) => r.path);
    expect(registry.requests.find((r) => r.path === '/v2/library/stories/manifests/latest')?.accept).toContain(
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    expect(paths).toContain(`/v2/library/stories/blobs/${registry.digest}`);
    expect(paths.some((p) => p.startsWith(`/cdn/${registry.digest}`))).toBe(true);

    expect(fs.readdirSync(modelsDir)).toContain('stories.gguf');
    expect(await modelNames()).toContain('stories:latest');
    const chat = await postJson(`${server.url}/api/chat`, {
      history: [{ role: 'user', content: 'Once upon a time' }],
      model_instances: [{ model: 'stories', num_predict: 5 }],
    });
    expect(chat.status).toBe(200);
    expect((await chat.json()).metrics.tokens).toBeGreaterThan(0);
  });

  it('streams Ollama progress lines to the ollama client on /api/pull, ending in success', async () => {
    const ollama = new Ollama({ host: server.url });
    const parts = [];
    for await (const part of await ollama.pull({ model: 'stories:q8', stream: true })) parts.push(part);
    expect(parts[0]).toEqual({ status: 'pulling manifest' });
    expect(parts.at(-1)).toEqual({ status: 'success' });
    const progress = parts.filter((p) => p.completed !== undefined);
    expect(progress.length).toBeGreaterThan(1);
    for (const p of progress) {
      expect(p).toMatchObject({ status: `pulling ${registry.digest.slice(7, 19)}`, digest: registry.digest, total: registry.size });
    }
    const completed = progress.map((p) => p.completed);
    expect([...completed].sort((a, b) => a - b)).toEqual(completed);
    expect(completed.at(-1)).toBe(registry.size);
    const statuses = parts.map((p) => p.status);
    expect(statuses.slice(statuses.indexOf('verifying sha256 digest'))).toEqual(['verifying sha256 digest', 'writing manifest', 'success']);
    expect((await ollama.list()).models.map((m) => m.name)).toContain('stories:q8');
    expect(fs.readdirSync(modelsDir)).toContain('stories@q8.gguf');
  });

  it('keeps a namespace in the model name and maps it to one flat file', async () => {
    expect((await finished(await startPull('someone/tiny:v1'))).state).toBe('success');
    expect(fs.readdirSync(modelsDir)).toContain('someone+tiny@v1.gguf');
    expect(await modelNames()).toContain('someone/tiny:v1');
    const answer = await postJson(`${server.url}/api/generate`, { model: 'someone/tiny:v1', prompt: 'Once', stream: false, options: { num_predict: 2 } });
    expect((await answer.json()).eval_count).toBe(2);
  });

  it('fails the job and leaves nothing behind when the connection drops mid-file', async () => {
    const failed = await finished(await startPull('broken'));
    expect(failed.state).toBe('error');
    expect(failed.error).toMatch(/download/);
    expect(leftovers('broken')).toEqual([]);
    expect(await modelNames()).not.toContain('broken:latest');
  });

  it('fails the job and leaves nothing behind when the bytes do not have the manifest digest', async () => {
    const failed = await finished(await startPull('liar'));
    expect(failed.state).toBe('error');
    expect(failed.error).toMatch(/^digest mismatch, file must be downloaded again: want sha256:[0-9a-f]{64}, got sha256:/);
    expect(failed.error).toContain(`got ${registry.digest}`);
    expect(leftovers('liar')).toEqual([]);
    expect(await modelNames()).not.toContain('liar:latest');
  });

  it('reports an unknown name as Ollama does', async () => {
    const failed = await finished(await startPull('nobody/nothing:1b'));
    expect(failed).toMatchObject({ state: 'error', error: 'pull model manifest: file does not exist' });
    const quiet = await postJson(`${server.url}/api/pull`, { model: 'nothing', stream: false });
    expect(quiet.status).toBe(502);
    expect((await quiet.json()).error).toBe('pull model manifest: file does not exist');
  });

  it('refuses a malformed name with a 400 before any job starts', async () => {
    const before = ((await (await fetch(`${server.url}/api/pulls`)).json()) as { pulls: unknown[] }).pulls.length;
    for (const model of ['bad name', 'a/b/c/d', '../up:x', 'stories:', 'ns.dot/model', 'mirror.example:5000/ns/model', 'model:tag@sha256:abc', 'ns/a..b:1']) {
      const response = await postJson(`${server.url}/api/pull_model`, { model });
      expect(response.status, model).toBe(400);
      expect((await response.json()).error).toMatch(/^invalid model name/);
    }
    expect((await postJson(`${server.url}/api/pull`, { model: 'a//b' })).status).toBe(400);
    expect(((await (await fetch(`${server.url}/api/pulls`)).json()) as { pulls: unknown[] }).pulls).toHaveLength(before);
  });

  it('stops the download and removes the temporary file when the job is cancelled', async () => {
    const id = await startPull('slow');
    await expect.poll(async () => (await job(id)).completed ?? 0, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    expect(leftovers('slow')).toEqual(['slow.gguf.partial']);
    const cancel = await fetch(`${server.url}/api/pulls/${id}`, { method: 'DELETE' });
    expect(cancel.status).toBe(200);
    expect((await finished(id)).state).toBe('cancelled');
    await expect.poll(() => leftovers('slow'), { timeout: 5_000 }).toEqual([]);
    expect(await modelNames()).not.toContain('slow:latest');
  });
});

describe('Ollama names', () => {
  it('parses them as Ollama does and maps them to file names and back', () => {
    expect(parseRegistryName('llama3.2')).toMatchObject({ host: undefined, namespace: 'library', model: 'llama3.2', tag: 'latest', localName: 'llama3.2:latest' });
    expect(parseRegistryName('deepseek-r1:8b')).toMatchObject({ namespace: 'library', model: 'deepseek-r1', tag: '8b', localName: 'deepseek-r1:8b' });
    expect(parseRegistryName('user/model:tag')).toMatchObject({ namespace: 'user', model: 'model', tag: 'tag', localName: 'user/model:tag' });
    expect(parseRegistryName('hf.co/owner/repo:Q4_K_M')).toMatchObject({ host: 'hf.co', namespace: 'owner', model: 'repo', tag: 'Q4_K_M', localName: 'hf.co/owner/repo:Q4_K_M' });
    // Ollama's own host spelled out is the configured registry, and the model keeps its short name.
    expect(parseRegistryName('registry.ollama.ai/library/qwen3:0.6b')).toMatchObject({ host: undefined, localName: 'qwen3:0.6b' });
    for (const name of ['hf.co/owner/repo:Q4_K_M', 'user/model:tag', 'model:latest']) {
      expect(modelNameForFile(fileNameForModel(name))).toBe(name);
    }
    expect(fileNameForModel('hf.co/owner/repo:Q4_K_M')).toBe('hf.co+owner+repo@Q4_K_M.gguf');
  });
});
