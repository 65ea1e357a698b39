import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RouteEntry } from '../../src/access/route-access.js';
import { postJson, startServer, tempDir, type RunningServer } from '../support/server.js';
import { pooled, rawRequest, type RawResponse } from '../support/raw-http.js';
import { createPgDatabase, testRedis, type TestDatabase } from '../support/stores.js';

/**
 * Every route the server registered (read from its own route table, so a new route is covered
 * without touching this file) × spellings of its path × who is asking, on one SQLite server and on
 * two replicas sharing PostgreSQL and Redis. The access level applied must be the matched route's,
 * whatever the spelling; a spelling the router does not match is a 401 without credentials and a
 * 404 with them. No model is served (an empty models directory), so permitted requests end fast in
 * their handlers' 400s and 404s, and admin routes get bodies that change nothing.
 */

const ADMIN_TOKEN = 'matrix-admin-token';
/** The model the keys may use; no backend serves it. */
const MODEL = 'matrix-model';

const STATES = ['none', 'wrong', 'admin', 'key', 'manageKey', 'otherKey', 'revoked', 'expired'] as const;
type State = (typeof STATES)[number];
const UNAUTHENTICATED: ReadonlySet<State> = new Set(['none', 'wrong', 'revoked', 'expired']);
const KEYS: ReadonlySet<State> = new Set(['key', 'manageKey', 'otherKey']);
const WITHOUT = STATES.filter((s) => UNAUTHENTICATED.has(s));
const WITH = STATES.filter((s) => !UNAUTHENTICATED.has(s));

/** A concrete path for a route: parameters and wildcards filled in. */
function concrete(url: string): string {
  if (url === '*') return `/${MODEL}`;
  return url.replace(/:name\b/g, MODEL).replace(/:[A-Za-z_]+/g, 'matrix-id').replace(/\*$/, MODEL);
}

/** Each spelling of a path, or undefined where it does not apply (the root has no letters to encode). */
const SPELLINGS: Record<string, (path: string) => string | undefined> = {
  plain: (p) => p,
  'percent-encoded letter': (p) => (/[a-z]/i.test(p) ? p.replace(/[a-z]/i, (c) => `%${c.charCodeAt(0).toString(16)}`) : undefined),
  'percent-encoded slash': (p) => (p.indexOf('/', 1) > 0 ? `${p.slice(0, p.indexOf('/', 1))}%2F${p.slice(p.indexOf('/', 1) + 1)}` : `${p}%2F`),
  'double slash': (p) => (p.indexOf('/', 1) > 0 ? `${p.slice(0, p.indexOf('/', 1))}/${p.slice(p.indexOf('/', 1))}` : `/${p}`),
  'trailing slash': (p) => (p === '/' ? undefined : `${p}/`),
  'dot segments': (p) => `/matrix/..${p}`,
  'upper case': (p) => (p.toUpperCase() === p ? undefined : p.toUpperCase()),
  'absolute form': (p) => `http://matrix.test${p}`,
};

/** Whether the request names a model the allow-list checks: any body (it names one), or `:name`. */
function namesModel(route: RouteEntry): boolean {
  return hasBody(route) || route.url.includes(':name');
}

function hasBody(route: RouteEntry): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(route.method);
}

/** Model routes name the keys' model everywhere a request can; admin routes get a body every handler refuses. */
function bodyFor(route: RouteEntry): string | undefined {
  if (!hasBody(route)) return undefined;
  if (route.access === 'admin') return JSON.stringify({ matrix: true });
  return JSON.stringify({ model: MODEL, name: MODEL, models: [MODEL], model_instances: [{ model: MODEL }], pool: [MODEL] });
}

/** What the documented rule allows for a route the spelling reached, by its level and the caller. */
function refusal(route: RouteEntry, state: State): 401 | 403 | undefined {
  if (route.access === 'public') return undefined;
  if (UNAUTHENTICATED.has(state)) return 401;
  if (route.access === 'admin' && KEYS.has(state)) return 403;
  if (route.access === 'manage' && (state === 'key' || state === 'otherKey')) return 403;
  if (state === 'otherKey' && namesModel(route)) return 403;
  return undefined;
}

interface Deployment {
  servers: RunningServer[];
  auth: Record<State, Record<string, string>>;
}

async function createKey(server: RunningServer, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const response = await postJson(`${server.url}/api/admin/keys`, { rpm: 1_000_000, ...body }, { authorization: `Bearer ${ADMIN_TOKEN}` });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; key: string };
}

/** Keys made on the first server and revoked (or left to expire) on the last: replicas must agree. */
async function credentials(servers: RunningServer[]): Promise<Deployment['auth']> {
  const [first, last] = [servers[0]!, servers.at(-1)!];
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const key = await createKey(first, { name: 'matrix-key', models: [MODEL] });
  const manageKey = await createKey(first, { name: 'matrix-manage', models: [MODEL], scopes: ['manage'] });
  const otherKey = await createKey(first, { name: 'matrix-other', models: ['matrix-other-model'] });
  const revoked = await createKey(first, { name: 'matrix-revoked' });
  const expired = await createKey(last, { name: 'matrix-expired', expires_at: new Date(Date.now() + 1500).toISOString() });
  for (const server of servers) expect((await fetch(`${server.url}/api/tags`, { headers: bearer(revoked.key) })).status).toBe(200);
  expect((await fetch(`${last.url}/api/admin/keys/${revoked.id}`, { method: 'DELETE', headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
  // Wait for the expiry on every server, polling rather than sleeping a guess.
  for (const server of servers) {
    await vi.waitFor(async () => expect((await fetch(`${server.url}/api/tags`, { headers: bearer(expired.key) })).status).toBe(401), { timeout: 10_000, interval: 100 });
  }
  return {
    none: {},
    wrong: bearer('not-the-token'),
    admin: bearer(ADMIN_TOKEN),
    key: bearer(key.key),
    manageKey: bearer(manageKey.key),
    otherKey: bearer(otherKey.key),
    revoked: bearer(revoked.key),
    expired: bearer(expired.key),
  };
}

interface Case {
  route: RouteEntry;
  spelling: string;
  target: string;
  state: State;
  server: number;
}

async function runMatrix({ servers, auth }: Deployment): Promise<string[]> {
  const app = servers[0]!.app;
  const routes = servers[0]!.services.routes;
  const cases: Case[] = [];
  let unmatched = 0;
  for (const route of routes) {
    const path = concrete(route.url);
    for (const [spelling, spell] of Object.entries(SPELLINGS)) {
      const target = spell(path);
      if (target === undefined) continue;
      // A spelling no route matches never reaches a route, whatever the caller: one caller without
      // valid credentials and one with, taking turns over the routes, cover every caller at less cost.
      const matched = app.findRoute({ method: route.method as 'GET', url: target }) !== null;
      const states = matched ? STATES : [WITHOUT[unmatched % WITHOUT.length]!, WITH[unmatched++ % WITH.length]!];
      for (const state of states) cases.push({ route, spelling, target, state, server: cases.length % servers.length });
    }
  }
  const agents = servers.map(() => new http.Agent({ keepAlive: true, maxSockets: 8 }));
  let responses: RawResponse[];
  try {
    responses = await pooled(cases, 8 * servers.length, (c) =>
      rawRequest(servers[c.server]!.url, { method: c.route.method, target: c.target, headers: auth[c.state], body: bodyFor(c.route) }, agents[c.server]),
    );
  } finally {
    for (const agent of agents) agent.destroy();
  }

  const plainStatus = new Map<string, number>();
  cases.forEach((c, i) => c.spelling === 'plain' && plainStatus.set(`${c.route.method} ${c.route.url} ${c.state}`, responses[i]!.status));
  const failures: string[] = [];

  cases.forEach((c, i) => {
    const { status } = responses[i]!;
    const { route, state } = c;
    const where = `${route.method} ${c.target} (${route.url}, ${route.access}, ${c.spelling}) as ${state}: ${status}`;
    const match = app.findRoute({ method: route.method as 'GET', url: c.target });
    const plain = app.findRoute({ method: route.method as 'GET', url: concrete(route.url) });
    // The one property every case keeps: without credentials nothing but a public route answers 2xx.
    if (UNAUTHENTICATED.has(state) && route.access !== 'public' && status < 300) failures.push(`${where}: answered without credentials`);
    if (!match) {
      const expected = UNAUTHENTICATED.has(state) ? 401 : 404;
      if (status !== expected) failures.push(`${where}: unmatched, expected ${expected}`);
      return;
    }
    if (JSON.stringify(match.params) !== JSON.stringify(plain?.params)) return; // reached another route (a wildcard)
    const refused = refusal(route, state);
    if (refused !== undefined && status !== refused) failures.push(`${where}: expected ${refused}`);
    if (refused === undefined && (status === 401 || status === 403)) failures.push(`${where}: refused, expected the handler's answer`);
    const asPlain = plainStatus.get(`${route.method} ${route.url} ${state}`);
    if (status !== asPlain) failures.push(`${where}: the plain spelling answered ${asPlain}`);
  });
  return failures;
}

function expectCompleteTable(routes: readonly RouteEntry[]): void {
  const levels = new Set(routes.map((r) => r.access));
  expect([...levels].sort()).toEqual(['admin', 'manage', 'model', 'public']);
  // Fastify's HEAD twin of every GET carries the GET's level.
  for (const get of routes.filter((r) => r.method === 'GET')) {
    expect(routes.find((r) => r.method === 'HEAD' && r.url === get.url)?.access, get.url).toBe(get.access);
  }
  for (const url of ['/docs', '/metrics', '/assets/*', '/api/models/:name/unload', '/v1/chat/completions']) {
    expect(routes.some((r) => r.url === url), url).toBe(true);
  }
}

describe('access matrix on one SQLite server', () => {
  let server: RunningServer;
  let auth: Deployment['auth'];
  beforeAll(async () => {
    // CORS on, so that its plugin's preflight route is in the table too.
    server = await startServer({ WEB_CHAT_TOKEN: ADMIN_TOKEN, MODELS_DIR: tempDir(), CORS_ORIGINS: 'http://app.test' });
    auth = await credentials([server]);
  });
  afterAll(() => server?.close());

  it('lists every route with its level', () => expectCompleteTable(server.services.routes));

  it('applies the matched route’s level under every spelling and to every caller', async () => {
    expect(await runMatrix({ servers: [server], auth })).toEqual([]);
  });
});

describe('access matrix on two replicas sharing PostgreSQL and Redis', () => {
  let servers: RunningServer[] = [];
  let database: TestDatabase;
  let auth: Deployment['auth'];
  const redis = testRedis();
  beforeAll(async () => {
    database = await createPgDatabase();
    const env = () => ({ WEB_CHAT_TOKEN: ADMIN_TOKEN, MODELS_DIR: tempDir(), DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix });
    servers = await Promise.all([startServer(env()), startServer(env())]);
    auth = await credentials(servers);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await database?.drop();
    await redis.cleanup();
  });

  it('refuses on one replica a key revoked on the other, at once', async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    const { id, key } = await createKey(a, { name: 'matrix-swap' });
    expect((await rawRequest(b.url, { method: 'GET', target: '/%61pi/tags', headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await fetch(`${b.url}/api/admin/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    expect((await rawRequest(a.url, { method: 'GET', target: 'http://x/api/tags', headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
  });

  it('stops a manage scope taken away on one replica at once on the other', async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    const { id, key } = await createKey(a, { name: 'matrix-operator', scopes: ['manage'] });
    const unload = () => rawRequest(b.url, { method: 'POST', target: `/%61pi/models/${MODEL}/unload`, headers: { authorization: `Bearer ${key}` }, body: '{}' });
    // B knows (and caches) the key with its scope: the unload reaches the handler (no such model).
    expect((await unload()).status).toBe(404);
    const taken = await fetch(`${a.url}/api/admin/keys/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: [] }),
    });
    expect(taken.status).toBe(200);
    expect((await unload()).status).toBe(403);
  });

  // Every route under every spelling, twice over (one request per replica): minutes on a loaded machine.
  it('applies the matched route’s level under every spelling and to every caller, on both', async () => {
    expect(await runMatrix({ servers, auth })).toEqual([]);
  }, 240_000);
});
