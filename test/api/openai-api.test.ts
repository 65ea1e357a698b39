import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, TEST_MODEL, type RunningServer } from '../support/server.js';
import { SCRIPTED_MODEL, ScriptedBackend } from '../support/scripted-backend.js';

/** The OpenAI API under /v1, driven by the real `openai` npm client. */

let server: RunningServer;
let openai: OpenAI;
const scripted = new ScriptedBackend();

beforeAll(async () => {
  server = await startServer({}, [scripted]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
});
afterAll(() => server?.close());

/** The `data:` frames of an SSE body, parsed, with `[DONE]` kept as the string. */
async function frames(response: Response): Promise<unknown[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((frame) => frame.trim() !== '')
    .map((frame) => {
      expect(frame.startsWith('data: ')).toBe(true);
      const data = frame.slice('data: '.length);
      return data === '[DONE]' ? data : JSON.parse(data);
    });
}

describe('models', () => {
  it('lists and retrieves models; an unknown one is NotFoundError', async () => {
    const list = await openai.models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toContain(TEST_MODEL);
    expect(list.data[0]).toMatchObject({ object: 'model', owned_by: expect.any(String), created: expect.any(Number) });
    const one = await openai.models.retrieve(TEST_MODEL);
    expect(one).toMatchObject({ id: TEST_MODEL, object: 'model' });
    const error = await openai.models.retrieve('no-such-model').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('model_not_found');
  });
});

describe('chat completions', () => {
  it('answers a chat.completion with usage and finish_reason', async () => {
    const completion = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'developer', content: 'Tell a story.' }, { role: 'user', content: [{ type: 'text', text: 'Once upon a time' }] }],
      max_tokens: 6,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['zzz'],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.system_fingerprint).toBe('fp_ollama_arena');
    expect(completion.model).toBe(TEST_MODEL);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]!.message.role).toBe('assistant');
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage).toMatchObject({ completion_tokens: 6 });
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + 6);
  });

  it('streams chat.completion.chunk frames, the usage chunk when asked, and [DONE]', async () => {
    const stream = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_completion_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id && c.system_fingerprint === 'fp_ollama_arena')).toBe(true);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish!.choices[0]!.finish_reason).toBe('length');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 5 });
    expect(text.length).toBeGreaterThan(0);

    const raw = await frames(await postJson(`${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, stream: true }));
    expect(raw.at(-1)).toBe('[DONE]');
    // Without include_usage no chunk has a usage field at all.
    expect(raw.slice(0, -1).every((frame) => !('usage' in (frame as object)))).toBe(true);
  });

  it('follows response_format json_schema and json_object through the grammar', async () => {
    const completion = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'How did Lily feel?' }],
      max_tokens: 40,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'mood', schema: { type: 'object', properties: { mood: { type: 'string', enum: ['happy', 'sad'] } }, required: ['mood'] } },
      },
    });
    expect(['happy', 'sad']).toContain(JSON.parse(completion.choices[0]!.message.content!).mood);
    const json = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Lily' }],
      max_tokens: 3,
      response_format: { type: 'json_object' },
    });
    expect(json.choices[0]!.message.content!.trimStart().startsWith('{')).toBe(true);
  });

  it('gives the same answer for the same seed', async () => {
    const ask = () =>
      openai.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Tim' }], max_tokens: 20, temperature: 1.5, seed: 1234 });
    const [a, b] = [await ask(), await ask()];
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
  });

  it('passes tools through and answers tool calls with string arguments and finish_reason tool_calls', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const plain = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
      tools,
      max_tokens: 4,
    });
    expect(plain.choices[0]!.message.role).toBe('assistant');

    const called = await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'CALL get_weather' }], tools });
    const choice = called.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]! as { id: string; type: string; function: { name: string; arguments: string } };
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(call.id).toMatch(/^call_/);
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    const forwarded = scripted.requests.at(-1) as { tools?: { function: { name: string } }[] };
    expect(forwarded.tools?.[0]?.function.name).toBe('get_weather');

    const stream = await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'CALL get_weather' }], tools, stream: true });
    const deltas = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0]);
    const withCall = deltas.find((d) => d?.delta.tool_calls);
    expect(withCall!.delta.tool_calls![0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(deltas.at(-1)!.finish_reason).toBe('tool_calls');
  });

  it('applies tool_choice: none offers no tools, a named function only that one, bad values are 400', async () => {
    const tool = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object', properties: {} } } });
    const tools = [tool('get_weather'), tool('get_time')];
    const forwarded = () => scripted.requests.at(-1) as { tools?: { function: { name: string } }[]; toolChoice?: string };
    await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: 'none' });
    expect(forwarded().tools).toBeUndefined();
    await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: { type: 'function', function: { name: 'get_time' } } });
    expect(forwarded().tools!.map((t) => t.function.name)).toEqual(['get_time']);
    expect(forwarded().toolChoice).toBe('required');
    await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: 'required' });
    expect(forwarded()).toMatchObject({ toolChoice: 'required' });
    expect(forwarded().tools).toHaveLength(2);
    for (const toolChoice of [{ type: 'function', function: { name: 'nope' } }, 'sometimes', 7]) {
      const error = await openai.chat.completions
        .create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: toolChoice as never })
        .catch((e: unknown) => e);
      expect(error, JSON.stringify(toolChoice)).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).message).toMatch(/tool_choice/);
    }
  });

  it('answers errors in the OpenAI shape with the client error classes', async () => {
    const missing = await openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).code).toBe('model_not_found');
    const bad: Record<string, unknown>[] = [
      { n: 9 },
      { temperature: 5 },
      { top_p: -1 },
      { max_tokens: 0 },
      { stop: 5 },
      { response_format: { type: 'xml' } },
      { messages: [] },
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } }] }] },
    ];
    for (const extra of bad) {
      const error = await openai.chat.completions
        .create({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], max_tokens: 2, ...extra } as never)
        .catch((e: unknown) => e);
      expect(error, JSON.stringify(extra)).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).type).toBe('invalid_request_error');
    }
    const raw = await postJson(`${server.url}/v1/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: 'x' }], n: 30 });
    const body = await raw.json();
    expect(body.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/^n must be between 1 and 8/) });
    expect(body.error).toHaveProperty('code');
  });

  it('raises a mid-stream failure in the client as an APIError', async () => {
    const stream = await openai.chat.completions.create({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'FAIL' }], stream: true });
    const error = await (async () => {
      for await (const chunk of stream) void chunk;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).message).toContain('upstream connection lost');
  });

  it('counts a backend’s negative or infinite token counts as none, in the usage and the metrics alike', async () => {
    const totals = async () => {
      const usage = (await (await fetch(`${server.url}/api/admin/usage?model=${SCRIPTED_MODEL}`)).json()) as { totals: { requests: number; prompt_tokens: unknown; completion_tokens: unknown } };
      const metrics = await fetch(`${server.url}/metrics`);
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      const metric = (name: string) => new RegExp(`^${name}\\{model="${SCRIPTED_MODEL}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? '0';
      return { ...usage.totals, generated: metric('arena_tokens_generated_total'), prompted: metric('arena_prompt_tokens_total') };
    };
    const before = await totals();
    const answer = await postJson(`${server.url}/v1/chat/completions`, { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'BAD COUNTS' }] });
    expect(answer.status).toBe(200);
    const after = await totals();
    expect(after.requests).toBe(before.requests + 1);
    // Unchanged and still numbers: a -4 would have lowered the totals, an Infinity made them null.
    expect(after).toMatchObject({ prompt_tokens: before.prompt_tokens, completion_tokens: before.completion_tokens, generated: before.generated, prompted: before.prompted });
    expect(typeof after.prompt_tokens).toBe('number');
    expect(typeof after.completion_tokens).toBe('number');
  });
});

describe('completions', () => {
  it('answers text_completion objects, streamed and not', async () => {
    const completion = await openai.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 5, echo: true });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]!.text.startsWith('Once upon a time')).toBe(true);
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBe(5);

    const stream = await openai.completions.create({ model: 'stories260K', prompt: 'The dog', max_tokens: 4, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.text ?? '').join('').length).toBeGreaterThan(0);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 4 });

    const raw = await frames(await postJson(`${server.url}/v1/completions`, { model: 'stories260K', prompt: 'Hi', max_tokens: 2, stream: true }));
    expect(raw.at(-1)).toBe('[DONE]');
    const suffix = await openai.completions.create({ model: 'stories260K', prompt: 'a', suffix: 'b', max_tokens: 2 }).catch((e: unknown) => e);
    expect(suffix).toBeInstanceOf(BadRequestError);
  });
});

describe('embeddings', () => {
  it('embeds as floats and as the client’s default base64, unit-length, with usage', async () => {
    // The openai client asks for base64 by default and decodes it: this checks our encoding too.
    const viaBase64 = await openai.embeddings.create({ model: 'stories260K', input: ['a happy dog', 'a sad cat'] });
    const asFloats = await openai.embeddings.create({ model: 'stories260K', input: 'a happy dog', encoding_format: 'float' });
    expect(viaBase64.object).toBe('list');
    expect(viaBase64.data.map((d) => d.index)).toEqual([0, 1]);
    const [first] = viaBase64.data;
    expect(first!.embedding.length).toBe(asFloats.data[0]!.embedding.length);
    first!.embedding.forEach((value, i) => expect(value).toBeCloseTo(asFloats.data[0]!.embedding[i]!, 5));
    expect(Math.hypot(...asFloats.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(viaBase64.usage.prompt_tokens).toBeGreaterThan(0);
    const cut = await openai.embeddings.create({ model: 'stories260K', input: 'dog', dimensions: 16, encoding_format: 'float' });
    expect(cut.data[0]!.embedding).toHaveLength(16);
    const empty = await openai.embeddings.create({ model: 'stories260K', input: '' }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(BadRequestError);
    const missing = await openai.embeddings.create({ model: 'nothing', input: 'x' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
  });
});

describe('an API key with a model allow-list', () => {
  const ADMIN = 'openai-test-admin';
  let locked: RunningServer;
  let client: OpenAI;
  let key: string;

  beforeAll(async () => {
    locked = await startServer({ WEB_CHAT_TOKEN: ADMIN }, [new ScriptedBackend()]);
    const response = await postJson(`${locked.url}/api/admin/keys`, { name: 'stories only', tier: 'standard', models: ['stories260K'] }, { authorization: `Bearer ${ADMIN}` });
    expect(response.status).toBe(201);
    key = ((await response.json()) as { key: string }).key;
    client = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: key, maxRetries: 0 });
  });
  afterAll(() => locked?.close());

  it('lists only the models the key may use, on /v1/models and /api/tags', async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual([TEST_MODEL]);
    expect(await client.models.retrieve(SCRIPTED_MODEL).catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
    const tags = await (await fetch(`${locked.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })).json();
    expect(tags.models.map((m: { name: string }) => m.name)).toEqual([TEST_MODEL]);
    const everything = await (await fetch(`${locked.url}/api/tags`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect(everything.models.map((m: { name: string }) => m.name).sort()).toEqual([SCRIPTED_MODEL, TEST_MODEL].sort());
    const answer = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 });
    expect(answer.choices[0]!.message.role).toBe('assistant');
  });

  it('serves the Ollama client with the same key: its models only, 403 for the others, 401 without it', async () => {
    const ollama = new Ollama({ host: locked.url, headers: { authorization: `Bearer ${key}` } });
    expect((await ollama.list()).models.map((m) => m.name)).toEqual([TEST_MODEL]);
    const answer = await ollama.chat({ model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 2 } });
    expect(answer.done).toBe(true);
    const refused = await ollama.chat({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status_code: 403 });
    const anonymous = await new Ollama({ host: locked.url }).list().catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ status_code: 401 });
  });
});
