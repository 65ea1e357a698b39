import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { OpenAICompatibleBackend } from '../../src/providers/openai/server.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { postJson, startServer, tempDir, type RunningServer } from '../support/server.js';

/**
 * /v1 requests for a model served only by OpenAI-compatible servers go on as the client wrote them and
 * come back as the server wrote them, while the gateway still accounts for every token.
 */

const ANSWER = 'Once upon a time, there was a little girl.';
const messages = [{ role: 'user' as const, content: 'Tell me a story' }];

/** A counter or gauge of the server's /metrics, summed over the series whose labels include `labels`. */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The `data:` payloads of an SSE body. */
async function sseEvents(response: Response): Promise<string[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((frame) => frame.startsWith('data: '))
    .map((frame) => frame.slice(6));
}

describe('OpenAI wire format passed through to an OpenAI-compatible server', () => {
  let mock: MockUpstream;
  let gateway: RunningServer;
  let openai: OpenAI;

  beforeAll(async () => {
    mock = await startMockUpstream({ models: ['mock'] });
    gateway = await startServer({ MODELS_DIR: tempDir('relay-models-') }, [new OpenAICompatibleBackend(mock.url)]);
    openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await gateway?.close();
    await mock?.close();
  });

  it('sends the client’s own fields, vendor ones included, and answers with the server’s JSON', async () => {
    const before = await metric(gateway.url, 'arena_tokens_generated_total', 'model="mock:latest"');
    const body = { model: 'mock', messages, temperature: 0.3, top_k: 7, max_tokens: 11, user: 'someone' };
    const response = await postJson(`${gateway.url}/v1/chat/completions`, body);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as Record<string, unknown>;
    // The server's own answer: its id and fingerprint, not the gateway's.
    expect(answer).toMatchObject({ id: 'chatcmpl-mock', system_fingerprint: 'fp_mock', choices: [{ message: { content: ANSWER } }] });
    expect(mock.lastBodies.get('/v1/chat/completions')).toEqual(body);
    const completion = await openai.chat.completions.create({ model: 'mock', messages });
    expect(completion.choices[0]!.message.content).toBe(ANSWER);
    expect(completion.usage).toEqual({ prompt_tokens: 5, completion_tokens: 11, total_tokens: 16 });
    await expect.poll(() => metric(gateway.url, 'arena_tokens_generated_total', 'model="mock:latest"')).toBe(before + 22);
  });

  it('streams the server’s events; asks for usage for itself and keeps it from a client that did not', async () => {
    const beforePrompt = await metric(gateway.url, 'arena_prompt_tokens_total', 'model="mock:latest"');
    const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'mock', messages, stream: true });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await sseEvents(response);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as { choices: { delta: { content?: string } }[]; usage?: unknown });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(ANSWER);
    expect(chunks.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
    expect(mock.lastBodies.get('/v1/chat/completions')).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    await expect.poll(() => metric(gateway.url, 'arena_prompt_tokens_total', 'model="mock:latest"')).toBe(beforePrompt + 5);

    // A client that asks gets the usage event, through the openai package as users call it.
    const stream = await openai.chat.completions.create({ model: 'mock', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage ??= chunk.usage ?? undefined;
    }
    expect(text).toBe(ANSWER);
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 11, total_tokens: 16 });
  });

  it('passes legacy completions through, streamed and not', async () => {
    const completion = await openai.completions.create({ model: 'mock', prompt: 'Once' });
    expect(completion.choices[0]!.text).toBe(ANSWER);
    let text = '';
    for await (const chunk of await openai.completions.create({ model: 'mock', prompt: 'Once', stream: true })) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(ANSWER);
  });

  it('answers with the server’s own refusal of a request it alone validates', async () => {
    const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'mock', messages: 'not a list' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { message: "Invalid type for 'messages': expected an array", type: 'invalid_request_error', param: 'messages', code: 'invalid_type' } });
    // What the gateway checks on every path it checks here too, before the server is asked.
    const calls = mock.hits.get('/v1/chat/completions');
    for (const [field, value, message] of [
      ['stream', 'yes', /stream must be a boolean/],
      ['n', 9, /n must be/],
      ['max_tokens', -1, /max_tokens must be/],
      ['temperature', 3, /temperature must be/],
    ] as const) {
      const refused = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'mock', messages, [field]: value });
      expect(refused.status, field).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
    expect(mock.hits.get('/v1/chat/completions')).toBe(calls);
  });
});

describe('passing through, with replicas, limits and a catalog', () => {
  let slow: MockUpstream;
  let broken: MockUpstream;
  let gateway: RunningServer;

  beforeAll(async () => {
    slow = await startMockUpstream({ models: ['story'], tokenDelayMs: 40, tokens: Array.from({ length: 60 }, (_, i) => ` w${i}`) });
    broken = await startMockUpstream({ models: ['story'], mode: 'fail' });
    gateway = await startServer({ MODELS_DIR: tempDir('relay-models-') }, [new OpenAICompatibleBackend(broken.url), new OpenAICompatibleBackend(slow.url)]);
  });
  afterAll(async () => {
    await gateway?.close();
    await slow?.close();
    await broken?.close();
  });

  it('fails over to the next replica when one fails before answering', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'story', messages, max_tokens: 2 });
      expect(response.status).toBe(200);
    }
    expect(broken.hits.get('/v1/chat/completions')).toBeGreaterThan(0);
  });

  it('stops the server’s generation when the client leaves, and charges what was streamed', async () => {
    const before = await metric(gateway.url, 'arena_tokens_generated_total', 'model="story:latest"');
    const cutBefore = slow.cut;
    const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'story', messages, stream: true });
    const reader = response.body!.getReader();
    await reader.read();
    const running = () => metric(gateway.url, 'arena_generations_running');
    expect(await running()).toBe(1);
    await reader.cancel();
    await expect.poll(running, { timeout: 10_000 }).toBe(0);
    // The server's own connection is closed, which is how it learns to stop generating.
    await expect.poll(() => slow.cut, { timeout: 10_000 }).toBe(cutBefore + 1);
    await expect.poll(() => metric(gateway.url, 'arena_generations_total', 'outcome="abort"')).toBe(1);
    // Cut after a few of its 60 pieces: charged for those, not for the whole answer.
    const charged = (await metric(gateway.url, 'arena_tokens_generated_total', 'model="story:latest"')) - before;
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThan(30);
  });

  it('translates instead when the catalog gives the model defaults', async () => {
    const set = await fetch(`${gateway.url}/api/admin/models/story`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ parameters: { temperature: 0.25 } }) });
    expect(set.status).toBe(200);
    const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'story', messages });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { id: string };
    expect(answer.id).not.toBe('chatcmpl-mock');
    expect(slow.lastBodies.get('/v1/chat/completions')).toMatchObject({ temperature: 0.25 });
  });
});

describe('passing through to servers that do not answer', () => {
  let stalled: MockUpstream;
  let gone: MockUpstream;
  let ok: MockUpstream;
  let gateway: RunningServer;
  let alone: RunningServer;

  beforeAll(async () => {
    stalled = await startMockUpstream({ models: ['story'], mode: 'stall' });
    gone = await startMockUpstream({ models: ['story'] });
    ok = await startMockUpstream({ models: ['story'] });
    gateway = await startServer({ MODELS_DIR: tempDir('relay-models-') }, [
      new OpenAICompatibleBackend(gone.url),
      new OpenAICompatibleBackend(stalled.url, { responseTimeoutMs: 1_000 }),
      new OpenAICompatibleBackend(ok.url),
    ]);
    alone = await startServer({ MODELS_DIR: tempDir('relay-models-') }, [new OpenAICompatibleBackend(stalled.url, { responseTimeoutMs: 1_000 })]);
    // Listed while it ran, then gone: its connections are refused from now on.
    await gone.close();
  });
  afterAll(async () => {
    await Promise.all([gateway, alone].map((server) => server?.close()));
    await Promise.all([stalled, ok].map((mock) => mock?.close()));
  });

  it('fails over from a server that refuses the connection and from one that never answers', async () => {
    const before = stalled.hits.get('/v1/chat/completions') ?? 0;
    for (const stream of [false, true, false, true]) {
      const response = await postJson(`${gateway.url}/v1/chat/completions`, { model: 'story', messages, max_tokens: 2, stream });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain(stream ? 'data: [DONE]' : '"chat.completion"');
    }
    expect(stalled.hits.get('/v1/chat/completions') ?? 0).toBeGreaterThan(before);
    expect(ok.hits.get('/v1/chat/completions')).toBe(4);
  });

  it('answers 504 when the only server never answers', async () => {
    const response = await postJson(`${alone.url}/v1/chat/completions`, { model: 'story', messages, max_tokens: 2 });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/did not answer within 1 s/);
  });
});
