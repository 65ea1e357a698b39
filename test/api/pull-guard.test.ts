import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ndjsonLines, postJson, SHARED_MODELS, spawnServer, startServer, tempDir, type RunningServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';
import { PullPolicy } from '../../src/providers/embedded/pull-policy.js';
import { STALE_MS } from '../../src/providers/embedded/partial-files.js';

/**
 * A pull cannot be turned into a probe of what only this machine can reach: loopback, link-local
 * (cloud metadata), unspecified and multicast addresses are refused in every spelling and on every
 * redirect hop unless PULL_ALLOW_HOSTS opens them; sources are the admin's to see, query strings
 * no one's. On Linux every 127/8 address is loopback: the allowed stand-in model host listens on
 * 127.0.0.2 (PULL_ALLOW_HOSTS=127.0.0.2/32) and redirects to the refused 127.0.0.1.
 */

const MODEL_FILE = path.join(SHARED_MODELS, 'stories260K.gguf');
const ADMIN = 'pull-guard-admin';
const admin = { authorization: `Bearer ${ADMIN}` };
const SECRET = 'tok3n-never-shown';

type Job = { id: string; state: string; error?: string; source?: string; model: string; completed?: number };

async function pullList(server: RunningServer, headers: Record<string, string> = {}): Promise<Job[]> {
  return ((await (await fetch(`${server.url}/api/pulls`, { headers })).json()) as { pulls: Job[] }).pulls;
}

async function finished(server: RunningServer, id: string, headers: Record<string, string> = {}): Promise<Job> {
  let job = {} as Job;
  await expect
    .poll(async () => (job = (await (await fetch(`${server.url}/api/pulls/${id}`, { headers })).json()) as Job).state, { timeout: 20_000, interval: 30 })
    .not.toBe('running');
  return job;
}

async function pull(server: RunningServer, model: string, headers: Record<string, string> = {}): Promise<Job> {
  const response = await postJson(`${server.url}/api/pull_model`, { model }, headers);
  expect(response.status, model).toBe(200);
  return finished(server, ((await response.json()) as { job_id: string }).job_id, headers);
}

describe('with no PULL_ALLOW_HOSTS', () => {
  let server: RunningServer;
  let local: FileServer;
  let modelsDir: string;

  beforeAll(async () => {
    modelsDir = tempDir('guard-models-');
    server = await startServer({ MODELS_DIR: modelsDir });
    local = await serveFile(MODEL_FILE);
  });
  afterAll(async () => {
    await server?.close();
    await local?.close();
  });

  it('refuses loopback, link-local, unspecified and multicast hosts in every spelling with a 400 at once', async () => {
    const port = new URL(local.url).port;
    const sources = [
      `http://127.0.0.1:${port}/x.gguf`,
      `http://localhost:${port}/x.gguf`,
      `http://LOCALHOST.:${port}/x.gguf`,
      `http://2130706433:${port}/x.gguf`,
      `http://0x7f.1:${port}/x.gguf`,
      `http://017700000001:${port}/x.gguf`,
      `http://127.1:${port}/x.gguf`,
      `http://[::1]:${port}/x.gguf`,
      `http://[::ffff:127.0.0.1]:${port}/x.gguf`,
      `http://0.0.0.0:${port}/x.gguf`,
      `http://0:${port}/x.gguf`,
      'http://169.254.169.254/latest/meta-data/x.gguf',
      'http://[::ffff:169.254.169.254]/x.gguf',
      'http://[fe80::1]/x.gguf',
      'http://224.0.0.1/x.gguf',
      'http://[ff02::1]/x.gguf',
      `127.0.0.1:${port}/library/model:latest`,
      '2130706433/library/model:latest',
      'localhost/ns/model',
    ];
    for (const model of sources) {
      for (const route of ['/api/pull_model', '/api/pull']) {
        const response = await postJson(`${server.url}${route}`, { model, stream: false });
        expect(response.status, `${route} ${model}`).toBe(400);
        expect((await response.json()).error, model).toMatch(/refused to pull from .*(loopback|link-local|unspecified|multicast).*PULL_ALLOW_HOSTS/);
      }
    }
    expect(local.requests).toEqual([]);
    expect(await pullList(server)).toEqual([]);
  });

  it('answers invalid sources and names with a 400 and starts no job', async () => {
    const invalid = [
      'http://',
      'http://exa mple.com/x.gguf',
      'http://example.com/a/../b.gguf',
      'http://example.com/%2e%2E/b.gguf',
      'https://user:password@example.com/x.gguf',
      'http://example.com/x\n.gguf',
      'http://example.com/x\u0007.gguf',
      `https://example.com/${'a'.repeat(3000)}.gguf`,
      'ftp://example.com/x.gguf',
      'file:///etc/passwd',
      'hf:owner',
      'hf:owner/repo/',
      'hf:owner/repo/file.bin',
      'hf:owner/../repo/file.gguf',
      'hf:owner/repo/a b.gguf',
      'model\u0000',
      'a/b/c/d',
      'ns/../model',
      'mirror.example:99999/ns/model',
    ];
    for (const model of invalid) {
      for (const route of ['/api/pull_model', '/api/pull']) {
        const response = await postJson(`${server.url}${route}`, { model, stream: false });
        expect(response.status, `${route} ${JSON.stringify(model)}`).toBe(400);
      }
    }
    const badName = await postJson(`${server.url}/api/pull_model`, { model: 'https://example.com/x.gguf', name: '../escape' });
    expect(badName.status).toBe(400);
    expect(await pullList(server)).toEqual([]);
  });

  it('lets private ranges through: a model mirror on the local network is a common source', () => {
    const policy = new PullPolicy();
    for (const address of ['10.1.2.3', '172.16.0.9', '192.168.1.10', 'fd12::1', '8.8.8.8', '2606:4700::1111']) {
      expect(policy.refusal(address), address).toBeUndefined();
    }
    for (const address of ['127.0.0.53', '::1', '::', '0.0.0.0', '169.254.169.254', '::ffff:169.254.169.254', '::ffff:7f00:1', '::7f00:1', 'fe80::1', 'ff02::1', '239.1.1.1', '255.255.255.255', 'fd00:ec2::254', '100.100.100.200']) {
      expect(policy.refusal(address), address).toBeDefined();
    }
  });

  it('checks the addresses a name resolves to in the lookup the connection itself uses', async () => {
    const lookup = (policy: PullPolicy, all: boolean) =>
      new Promise<unknown>((resolve, reject) =>
        policy.lookupFor('localhost')('localhost', { all }, (error, address) => (error ? reject(error) : resolve(address))),
      );
    for (const all of [true, false]) {
      await expect(lookup(new PullPolicy(), all)).rejects.toThrow(/refused to pull from localhost \((127\.0\.0\.1|::1)\): a .*loopback address/);
      await expect(lookup(new PullPolicy(['127.0.0.0/8', '::1']), all)).resolves.toBeDefined();
    }
    await expect(lookup(new PullPolicy(['localhost']), false)).resolves.toMatch(/^(127\.0\.0\.1|::1)$/);
  });

  it('reads PULL_ALLOW_HOSTS as host names and IPv4 or IPv6 addresses and CIDR ranges', () => {
    const policy = new PullPolicy(['127.0.0.2/32', 'fe80::/10', '::1', 'LocalHost', ' 169.254.0.0/16 ']);
    expect(policy.refusal('127.0.0.2')).toBeUndefined();
    expect(policy.refusal('::ffff:127.0.0.2')).toBeUndefined();
    expect(policy.refusal('127.0.0.1')).toBe('loopback');
    expect(policy.refusal('fe80::abcd')).toBeUndefined();
    expect(policy.refusal('::1')).toBeUndefined();
    expect(policy.refusal('169.254.169.254')).toBeUndefined();
    expect(() => policy.checkLiteralHost('localhost')).not.toThrow();
    for (const bad of ['10.0.0.0/33', '::/129', 'not a host', '10.0.0.0/x', 'host/8']) {
      expect(() => new PullPolicy([bad]), bad).toThrow(/PULL_ALLOW_HOSTS/);
    }
  });
});

describe('with PULL_ALLOW_HOSTS=127.0.0.2/32', () => {
  let server: RunningServer;
  let modelsDir: string;
  /** Refused: on 127.0.0.1. It must never be asked for anything. */
  let forbidden: FileServer;
  /** Allowed: on 127.0.0.2, redirecting to places a pull must not go. */
  let mirror: FileServer;
  let logs = '';

  beforeAll(async () => {
    forbidden = await serveFile(MODEL_FILE);
    const port = new URL(forbidden.url).port;
    mirror = await serveFile(MODEL_FILE, {
      host: '127.0.0.2',
      chunkSize: 64 * 1024,
      delayMs: 5,
      redirects: {
        '/to-loopback.gguf': `${forbidden.url}/secret.gguf`,
        '/to-metadata.gguf': 'http://169.254.169.254/latest/meta-data/iam.gguf',
        '/to-localhost.gguf': `http://localhost:${port}/secret.gguf`,
        '/to-decimal.gguf': `http://2130706433:${port}/secret.gguf`,
        '/to-mapped.gguf': `http://[::ffff:127.0.0.1]:${port}/secret.gguf`,
        '/to-ftp.gguf': 'ftp://127.0.0.2/x.gguf',
        '/loop.gguf': '/loop.gguf',
        '/to-allowed.gguf': '/files/moved.gguf',
      },
    });
    modelsDir = tempDir('guard-models-');
    const logStream = new PassThrough();
    logStream.on('data', (chunk) => (logs += chunk));
    server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.2/32', WEB_CHAT_TOKEN: ADMIN, LOG_LEVEL: 'trace' }, [], logStream);
  });
  afterAll(async () => {
    await server?.close();
    await mirror?.close();
    await forbidden?.close();
  });

  it('pulls from an allowed host and follows its redirects there', async () => {
    expect(await pull(server, `${mirror.url}/files/allowed.gguf`, admin)).toMatchObject({ state: 'success', model: 'allowed:latest' });
    expect(await pull(server, `${mirror.url}/to-allowed.gguf`, admin)).toMatchObject({ state: 'success', model: 'to-allowed:latest' });
  });

  it('refuses every redirect hop to a refused address, before connecting to it', async () => {
    const cases: [string, RegExp][] = [
      ['to-loopback', /refused to pull from 127\.0\.0\.1: a loopback address/],
      ['to-metadata', /refused to pull from 169\.254\.169\.254: a link-local \(cloud metadata\) address/],
      ['to-localhost', /refused to pull from localhost \((127\.0\.0\.1|::1)\)/],
      ['to-decimal', /refused to pull from 127\.0\.0\.1: a loopback address/],
      ['to-mapped', /refused to pull from ::ffff:7f00:1: a loopback address/],
      ['to-ftp', /only http\(s\) can be downloaded/],
      ['loop', /more than 10 redirects/],
    ];
    for (const [file, error] of cases) {
      const job = await pull(server, `${mirror.url}/${file}.gguf`, admin);
      expect(job.state, file).toBe('error');
      expect(job.error, file).toMatch(error);
    }
    expect(forbidden.requests).toEqual([]);
    expect(fs.readdirSync(modelsDir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    // Ollama's route carries the refusal too.
    const quiet = await postJson(`${server.url}/api/pull`, { model: `${mirror.url}/to-loopback.gguf`, stream: false }, admin);
    expect(quiet.status).toBe(502);
    expect((await quiet.json()).error).toMatch(/refused to pull from 127\.0\.0\.1/);
    expect(forbidden.requests).toEqual([]);
  });

  it('shows pull sources to the admin only, and their query strings to no one, nor in the logs', async () => {
    const created = await postJson(`${server.url}/api/admin/keys`, { name: 'reader', tier: 'standard' }, admin);
    const key = { authorization: `Bearer ${((await created.json()) as { key: string }).key}` };
    // An API key may not start pulls at all: that is the admin's.
    expect((await postJson(`${server.url}/api/pull_model`, { model: `${mirror.url}/k.gguf` }, key)).status).toBe(403);

    const started = await postJson(`${server.url}/api/pull_model`, { model: `${mirror.url}/files/tokened.gguf?token=${SECRET}` }, admin);
    const body = (await started.json()) as { job_id: string; model: string };
    expect(body.model).toBe(`${mirror.url}/files/tokened.gguf`);
    expect((await finished(server, body.job_id, admin)).state).toBe('success');
    const failed = await postJson(`${server.url}/api/pull_model`, { model: `${mirror.url}/gone.bin?token=${SECRET}` }, admin);
    const failedId = ((await failed.json()) as { job_id: string }).job_id;
    expect((await finished(server, failedId, admin)).state).toBe('error');
    const quiet = await postJson(`${server.url}/api/pull`, { model: `${mirror.url}/gone.bin?token=${SECRET}`, stream: false }, admin);
    expect(quiet.status).toBe(502);
    expect(JSON.stringify(await quiet.json())).not.toContain(SECRET);

    const asAdmin = await pullList(server, admin);
    expect(asAdmin.find((job) => job.id === body.job_id)).toMatchObject({ source: `${mirror.url}/files/tokened.gguf`, model: 'tokened:latest' });
    expect(JSON.stringify(asAdmin)).not.toContain(SECRET);

    const asKey = await pullList(server, key);
    expect(asKey.length).toBe(asAdmin.length);
    for (const job of asKey) expect(job).not.toHaveProperty('source');
    expect(asKey.find((job) => job.id === body.job_id)).toMatchObject({ model: 'tokened:latest', state: 'success', percent: 100 });
    const one = await (await fetch(`${server.url}/api/pulls/${failedId}`, { headers: key })).json();
    expect(one).toMatchObject({ state: 'error', error: expect.stringMatching(/download failed/) });
    expect(JSON.stringify([asKey, one])).not.toMatch(/127\.0\.0\.2|gone\.bin|tokened\.gguf|refused/);

    const feed = await fetch(`${server.url}/api/pulls/events`, { headers: key });
    const lines = ndjsonLines<{ type: string; pulls: Job[] }>(feed);
    const snapshot = (await lines.next()).value!;
    await lines.return(undefined);
    expect(snapshot.type).toBe('snapshot');
    expect(snapshot.pulls.length).toBe(asAdmin.length);
    expect(JSON.stringify(snapshot)).not.toMatch(/127\.0\.0\.2|"source"/);

    expect(logs).toContain('request'); // the logger is writing, at trace level
    expect(logs).not.toContain(SECRET);
  });
});

describe('half-downloaded files', () => {
  let slow: FileServer;
  beforeAll(async () => {
    slow = await serveFile(MODEL_FILE, { host: '127.0.0.2', chunkSize: 16 * 1024, delayMs: 100 });
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('removes a crash leftover at start and keeps what is not a leftover', async () => {
    const modelsDir = tempDir('guard-models-');
    const old = new Date(Date.now() - 3600_000);
    for (const name of ['gone.gguf.partial', 'other+ns@tag.gguf.partial']) {
      fs.writeFileSync(path.join(modelsDir, name), 'half a model');
      fs.utimesSync(path.join(modelsDir, name), old, old);
    }
    fs.writeFileSync(path.join(modelsDir, 'notes.partial'), 'not a download');
    fs.symlinkSync(MODEL_FILE, path.join(modelsDir, 'stories260K.gguf'));
    const server = await startServer({ MODELS_DIR: modelsDir });
    try {
      await expect.poll(() => fs.readdirSync(modelsDir).sort(), { timeout: 10_000 }).toEqual(['notes.partial', 'stories260K.gguf']);
    } finally {
      await server.close();
    }
  });

  it('removes the file of a download cut by the server shutting down', async () => {
    const modelsDir = tempDir('guard-models-');
    const server = await startServer({ MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.2' });
    const started = await postJson(`${server.url}/api/pull_model`, { model: `${slow.url}/cut.gguf` });
    const { job_id } = (await started.json()) as { job_id: string };
    await expect
      .poll(async () => ((await (await fetch(`${server.url}/api/pulls/${job_id}`)).json()) as Job).completed ?? 0, { timeout: 10_000, interval: 20 })
      .toBeGreaterThan(0);
    expect(fs.readdirSync(modelsDir)).toEqual(['cut.gguf.partial']);
    await server.close();
    expect(fs.readdirSync(modelsDir)).toEqual([]);
  });

  it('removes the file of a download cut by kill -9 once the server is back', async () => {
    const modelsDir = tempDir('guard-models-');
    const env = { MODELS_DIR: modelsDir, PULL_ALLOW_HOSTS: '127.0.0.2' };
    const first = await spawnServer(env);
    const started = await postJson(`${first.url}/api/pull_model`, { model: `${slow.url}/killed.gguf` });
    expect(started.status).toBe(200);
    await expect.poll(() => fs.readdirSync(modelsDir), { timeout: 10_000, interval: 20 }).toEqual(['killed.gguf.partial']);
    await first.stop('SIGKILL');
    expect(fs.readdirSync(modelsDir)).toEqual(['killed.gguf.partial']);
    // Restarted at once, the file is still fresh: it could be another replica's download in progress,
    // so it goes once it has stayed untouched for the staleness window.
    const second = await spawnServer(env);
    try {
      await expect.poll(() => fs.readdirSync(modelsDir), { timeout: STALE_MS * 3, interval: 250 }).toEqual([]);
    } finally {
      await second.stop();
    }
  }, 180_000); // two server starts on a loaded machine, and the staleness window
});
