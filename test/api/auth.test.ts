import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, type RunningServer } from '../support/server.js';
import { bearerToken } from '../../src/access/auth.js';

/** WEB_CHAT_TOKEN as the Arena API describes it, and the open default (docs/api-contract.md, access). */

describe('with WEB_CHAT_TOKEN set', () => {
  let server: RunningServer;
  const token = 'correct-horse-battery-staple';
  let logs = '';
  beforeAll(async () => {
    const logStream = new PassThrough();
    logStream.on('data', (chunk) => (logs += chunk));
    server = await startServer({ WEB_CHAT_TOKEN: token, LOG_LEVEL: 'trace' }, [], logStream);
  });
  afterAll(() => server.close());

  it('keeps health routes open', async () => {
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(server.url, { method: 'HEAD' })).status).toBe(200);
  });

  it('refuses a missing header with the documented message', async () => {
    const response = await fetch(`${server.url}/api/models`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'Missing or invalid Authorization header' });
  });

  it('refuses a malformed header as missing', async () => {
    const response = await fetch(`${server.url}/api/models`, { headers: { authorization: `Token ${token}` } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'Missing or invalid Authorization header' });
  });

  it('refuses the token cut short, extended or changed by one character', async () => {
    for (const wrong of [token.slice(0, -1), `${token}x`, `${token.slice(0, -1)}f`, token.toUpperCase()]) {
      const response = await fetch(`${server.url}/api/models`, { headers: { authorization: `Bearer ${wrong}` } });
      expect(response.status, wrong).toBe(401);
    }
  });

  it('refuses a wrong token with the documented message', async () => {
    const response = await fetch(`${server.url}/api/models`, { headers: { authorization: 'Bearer nope' } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'Invalid authorization token' });
  });

  it('accepts the right token on every /api route', async () => {
    const headers = { authorization: `Bearer ${token}` };
    expect((await fetch(`${server.url}/api/models`, { headers })).status).toBe(200);
    const chat = await postJson(
      `${server.url}/api/chat`,
      { history: [{ role: 'user', content: 'Hello!' }], models: ['stories260K'], stream: false },
      headers,
    );
    expect(chat.status).toBe(200);
    expect((await chat.json()).response).toBeTypeOf('string');
  });

  it('guards the stream and the model management routes too', async () => {
    const body = { history: [{ role: 'user', content: 'x' }], models: ['stories260K'] };
    expect((await postJson(`${server.url}/api/stream_chat`, body)).status).toBe(401);
    expect((await postJson(`${server.url}/api/pull_model`, { model: 'x' })).status).toBe(401);
    expect((await postJson(`${server.url}/api/delete_model`, { model: 'x' })).status).toBe(401);
  });

  it('never writes the token into the logs', async () => {
    const headers = { authorization: `Bearer ${token}` };
    await fetch(`${server.url}/api/models`, { headers });
    await fetch(`${server.url}/api/models`, { headers: { authorization: `Bearer ${token}-wrong` } });
    await postJson(`${server.url}/api/chat`, { history: [], models: [] }, headers);
    await expect.poll(() => logs.includes('/api/models')).toBe(true);
    expect(logs).not.toContain(token);
  });
});

describe('with no token and no keys', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  it('is open', async () => {
    expect((await fetch(`${server.url}/api/models`)).status).toBe(200);
  });
});

describe('bearer headers', () => {
  it('parses only well-formed bearer headers', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('CORS', () => {
  it('is off by default', async () => {
    const server = await startServer();
    try {
      const response = await fetch(`${server.url}/api/models`, { headers: { origin: 'http://evil.test' } });
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await server.close();
    }
  });

  it('allows the origins of CORS_ORIGINS only, preflight included', async () => {
    const server = await startServer({ CORS_ORIGINS: 'http://app.test,http://other.test', WEB_CHAT_TOKEN: 't' });
    try {
      const allowed = await fetch(`${server.url}/api/models`, { headers: { origin: 'http://app.test', authorization: 'Bearer t' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://app.test');
      const preflight = await fetch(`${server.url}/api/chat`, {
        method: 'OPTIONS',
        headers: { origin: 'http://other.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('http://other.test');
      const denied = await fetch(`${server.url}/api/models`, { headers: { origin: 'http://evil.test', authorization: 'Bearer t' } });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await server.close();
    }
  });
});
