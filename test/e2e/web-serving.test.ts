import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { serveFile, type FileServer } from '../support/file-server.js';

/**
 * What the browser app needs from the server, over plain HTTP: the app for browser requests to its
 * pages (docs/api-contract.md, the root), its hashed assets, and the live feed of pull jobs.
 */

const TOKEN = 'serving-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
let server: RunningServer;
let host: FileServer;

beforeAll(async () => {
  server = await startServer({ WEB_CHAT_TOKEN: TOKEN, MODELS_DIR: tempDir('arena-models-'), PULL_ALLOW_HOSTS: '127.0.0.1' });
  host = await serveFile(path.join(SHARED_MODELS, 'stories260K.gguf'), { chunkSize: 64 * 1024, delayMs: 20 });
});
afterAll(async () => {
  await host?.close();
  await server?.close();
});

const html = { accept: 'text/html,application/xhtml+xml' };

describe('the web app', () => {
  it('is served to browsers at / and at every page of the app, without a token', async () => {
    for (const page of ['/', '/battle', '/leaderboard', '/runs', '/runs/0194-some-id', '/models', '/admin/api-keys']) {
      const response = await fetch(server.url + page, { headers: html });
      expect(response.status, page).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(await response.text()).toContain('<div id="root">');
    }
  });

  it('leaves other clients the JSON of the extended Ollama API at / and a 404 on the app pages', async () => {
    const root = await fetch(server.url + '/');
    expect(await root.json()).toMatchObject({ name: 'ollama-arena', status: 'running' });
    const page = await fetch(server.url + '/battle', { headers: { accept: 'application/json' } });
    expect(page.status).toBe(404);
    expect(await page.json()).toEqual({ error: 'Resource not found' });
  });

  it('serves the hashed bundles for good', async () => {
    const index = await (await fetch(server.url + '/', { headers: html })).text();
    const scripts = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const asset of scripts) {
      const response = await fetch(server.url + asset);
      expect(response.status, asset).toBe(200);
      expect(response.headers.get('cache-control')).toContain('immutable');
    }
    expect((await fetch(server.url + '/assets/nothing-here.js')).status).toBe(404);
  });
});

/**
 * A feed read over its own connection (node:http, no agent): fetch's shared pool may keep extra
 * sockets open, which would hold the server's close and say nothing about the server.
 */
function openFeed(url: string, headers: Record<string, string> = {}) {
  const lines: unknown[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let status = 0;
  let contentType = '';
  const request = http.get(url, { headers, agent: false }, (response) => {
    status = response.statusCode ?? 0;
    contentType = String(response.headers['content-type']);
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) lines.push(JSON.parse(line));
      }
      wake?.();
    });
    response.on('end', () => {
      ended = true;
      wake?.();
    });
  });
  request.on('error', () => {
    ended = true;
    wake?.();
  });
  return {
    status: () => status,
    contentType: () => contentType,
    /** The next event, or undefined once the feed has ended. */
    async next<T>(): Promise<T | undefined> {
      while (lines.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
      return lines.shift() as T | undefined;
    },
    close: () => request.destroy(),
  };
}

type FeedEvent = { type: string; pulls?: { id: string; state: string }[]; job?: { id: string; state: string; completed?: number; percent?: number } };

describe('GET /api/pulls/events', () => {
  it('needs the token like the rest of the API', async () => {
    const response = await fetch(server.url + '/api/pulls/events');
    expect(response.status).toBe(401);
  });

  it('starts with a snapshot of the jobs, then streams every change of a pull to its end', async () => {
    const feed = openFeed(server.url + '/api/pulls/events', auth);
    expect(await feed.next<FeedEvent>()).toEqual({ type: 'snapshot', pulls: [] });
    expect(feed.status()).toBe(200);
    expect(feed.contentType()).toBe('application/x-ndjson');

    const started = await (await postJson(`${server.url}/api/pull_model`, { model: `${host.url}/feed-test.gguf` }, auth)).json();
    const seen: number[] = [];
    let last: FeedEvent['job'];
    for (let event = await feed.next<FeedEvent>(); event; event = await feed.next<FeedEvent>()) {
      if (event.type !== 'update' || event.job!.id !== started.job_id) continue;
      if (event.job!.completed !== undefined) seen.push(event.job!.completed);
      last = event.job!;
      if (last.state !== 'running') break;
    }
    feed.close();
    expect(last).toMatchObject({ state: 'success', percent: 100 });
    expect(new Set(seen).size).toBeGreaterThan(3);

    // A client connecting afterwards finds the finished job in its snapshot.
    const again = openFeed(server.url + '/api/pulls/events', auth);
    expect((await again.next<FeedEvent>())!.pulls).toEqual([expect.objectContaining({ id: started.job_id, state: 'success' })]);
    again.close();
  });

  it('does not hold the server open: closing ends the feeds', async () => {
    const other = await startServer();
    const feed = openFeed(other.url + '/api/pulls/events');
    expect((await feed.next<FeedEvent>())!.type).toBe('snapshot');
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await feed.next()).toBeUndefined();
  });
});
