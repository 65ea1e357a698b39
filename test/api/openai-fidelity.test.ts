import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { OpenAICompatibleBackend } from '../../src/providers/openai/server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, SHARED_MODELS, startServer, tempDir, type RunningServer } from '../support/server.js';
import { ANSWER, STANDIN_MODEL, startOpenAiStandIn, type OpenAiStandIn } from '../support/openai-standin.js';

/**
 * OpenAI's Responses API as the openai client's README uses it (`responses.create`, `responses.stream`),
 * on the real model, and with tool calls through an OpenAI-compatible stand-in upstream.
 */

let server: RunningServer;
let standin: OpenAiStandIn;
let client: OpenAI;

beforeAll(async () => {
  const modelsDir = tempDir('responses-models-');
  fs.copyFileSync(path.join(SHARED_MODELS, 'stories260K.gguf'), path.join(modelsDir, 'stories260K.gguf'));
  standin = await startOpenAiStandIn();
  server = await startServer({ MODELS_DIR: modelsDir }, [new OpenAICompatibleBackend(standin.url)]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
  await standin?.close();
});

describe('/v1/responses', () => {
  it('answers responses.create with output_text and usage', async () => {
    const response = await client.responses.create({ model: 'stories260K', instructions: 'Tell a story.', input: 'Once upon a time', max_output_tokens: 8 });
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(['completed', 'incomplete']).toContain(response.status);
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    expect(response.usage?.input_tokens).toBeGreaterThan(0);
    expect(response.instructions).toBe('Tell a story.');
  });

  it('streams events that responses.stream assembles into the final response', async () => {
    const stream = client.responses.stream({ model: 'stories260K', input: [{ role: 'user', content: 'Lily went' }], max_output_tokens: 6 });
    let deltas = '';
    const types = new Set<string>();
    stream.on('response.output_text.delta', (event) => (deltas += event.delta));
    for await (const event of stream) types.add(event.type);
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(deltas);
    expect(deltas.length).toBeGreaterThan(0);
    for (const type of ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.done', 'response.output_item.done', 'response.completed']) {
      expect(types).toContain(type);
    }
  });

  it('continues from previous_response_id with the conversation kept on the server', async () => {
    const first = await client.responses.create({ model: 'stories260K', input: 'Once upon a time', max_output_tokens: 4 });
    const second = await client.responses.create({ model: 'stories260K', previous_response_id: first.id, input: 'And then?', max_output_tokens: 4 });
    expect(second.previous_response_id).toBe(first.id);
    // The first turn (question and answer) is in the prompt of the second.
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    const unknown = await client.responses.create({ model: 'stories260K', previous_response_id: 'resp_nothing', input: 'x' }).catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    // store: false keeps nothing to continue from.
    const unstored = await client.responses.create({ model: 'stories260K', input: 'Once', store: false, max_output_tokens: 2 });
    await expect(client.responses.create({ model: 'stories260K', previous_response_id: unstored.id, input: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('calls a function tool and takes its output as input (stand-in upstream)', async () => {
    const tools = [{ type: 'function' as const, name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }];
    const response = await client.responses.create({ model: STANDIN_MODEL, input: 'Weather in Paris?', tools });
    const call = response.output.find((item) => item.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Paris"}', call_id: 'call_standin1' });
    const sent = standin.bodies.at(-1)!;
    expect(sent.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: tools[0]!.parameters } }]);

    const answer = await client.responses.create({
      model: STANDIN_MODEL,
      previous_response_id: response.id,
      input: [{ type: 'function_call_output', call_id: 'call_standin1', output: 'sunny' }],
      tools,
    });
    expect(answer.output_text).toBe(ANSWER.join(''));
    const messages = standin.bodies.at(-1)!.messages as Record<string, unknown>[];
    expect(messages.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_standin1', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    expect(messages.at(-1)).toMatchObject({ role: 'tool', content: 'sunny', tool_call_id: 'call_standin1' });

    const streamed = client.responses.stream({ model: STANDIN_MODEL, input: 'Weather in Paris?', tools });
    const final = await streamed.finalResponse();
    expect(final.output.find((item) => item.type === 'function_call')).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}' });
  });

  it('refuses bad input with a 400 that names the field', async () => {
    for (const [body, message] of [
      [{ model: 'stories260K' }, /input must not be empty/],
      [{ model: 'stories260K', input: 5 }, /input must be a string or an array/],
      [{ model: 'stories260K', input: [{ type: 'web_search_call' }] }, /input item type 'web_search_call' is not supported/],
      [{ model: 'stories260K', input: 'x', tools: [{ type: 'web_search' }] }, /built-in tools are not available/],
      [{ model: 'stories260K', input: 'x', instructions: 3 }, /instructions must be a string/],
    ] as const) {
      const response = await postJson(`${server.url}/v1/responses`, body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
  });
});

describe('defaults and digests of an upstream model', () => {
  it('sends an upstream nothing the client did not set, on the Ollama and the OpenAI surface', async () => {
    const viaOllama = await postJson(`${server.url}/api/chat`, { model: STANDIN_MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: false });
    expect(viaOllama.status).toBe(200);
    const sentByOllama = standin.bodies.at(-1)!;
    await client.chat.completions.create({ model: STANDIN_MODEL, messages: [{ role: 'user', content: 'Hi' }] });
    const sentByOpenAi = standin.bodies.at(-1)!;
    for (const sent of [sentByOllama, sentByOpenAi]) {
      for (const key of ['temperature', 'max_tokens', 'top_p', 'top_k', 'min_p', 'repeat_penalty', 'seed']) expect(sent).not.toHaveProperty(key);
    }
    // What the client does set still goes.
    await postJson(`${server.url}/api/chat`, { model: STANDIN_MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: false, options: { temperature: 0.3, num_predict: 5 } });
    expect(standin.bodies.at(-1)).toMatchObject({ temperature: 0.3, max_tokens: 5 });
  });

  it('lists an upstream model with a stable sha256 digest', async () => {
    const tags = (await (await fetch(`${server.url}/api/tags`)).json()) as { models: { name: string; digest: string }[] };
    const digest = tags.models.find((m) => m.name === `${STANDIN_MODEL}:latest`)?.digest;
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const again = (await (await fetch(`${server.url}/api/tags`)).json()) as typeof tags;
    expect(again.models.find((m) => m.name === `${STANDIN_MODEL}:latest`)?.digest).toBe(digest);
  });
});

describe('n choices on chat completions', () => {
  it('answers n choices, each a generation of its own, streamed and not', async () => {
    const completion = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], n: 3, max_tokens: 6, seed: 1 });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const choice of completion.choices) expect(choice.message.content?.length).toBeGreaterThan(0);
    expect(completion.usage!.completion_tokens).toBeGreaterThanOrEqual(3);

    const stream = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Lily' }], n: 2, max_tokens: 4, stream: true, stream_options: { include_usage: true } });
    const text = ['', ''];
    const finished = new Set<number>();
    let usage: unknown;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text[choice.index] += choice.delta.content ?? '';
        if (choice.finish_reason) finished.add(choice.index);
      }
    }
    expect([...finished].sort()).toEqual([0, 1]);
    expect(text.every((t) => t.length > 0)).toBe(true);
    expect(usage).toMatchObject({ completion_tokens: expect.any(Number) });
  });

  it('refuses n above the cap with a 400', async () => {
    const error = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], n: 9 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toMatch(/n must be between 1 and 8/);
  });
});

describe('logprobs on /v1', () => {
  it('answers logprobs and top_logprobs on chat completions from the embedded engine', async () => {
    const completion = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], logprobs: true, top_logprobs: 2, max_tokens: 4, top_p: 1 });
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(completion.usage!.completion_tokens);
    expect(content.map((entry) => entry.token).join('')).toBe(completion.choices[0]!.message.content);
    expect(content[0]!.top_logprobs).toHaveLength(2);
    const legacy = await client.completions.create({ model: 'stories260K', prompt: 'Once', logprobs: 2, max_tokens: 3, top_p: 1 });
    expect(legacy.choices[0]!.logprobs!.tokens!.join('')).toBe(legacy.choices[0]!.text);
    expect(Object.keys(legacy.choices[0]!.logprobs!.top_logprobs![0]!)).toHaveLength(2);
  });

  it('passes logprobs through to an OpenAI-compatible upstream and back, streamed', async () => {
    const stream = await client.chat.completions.create({ model: STANDIN_MODEL, messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 2, stream: true });
    const tokens: string[] = [];
    for await (const chunk of stream) for (const entry of chunk.choices[0]?.logprobs?.content ?? []) tokens.push(entry.token);
    expect(tokens).toEqual(ANSWER);
    expect(standin.bodies.at(-1)).toMatchObject({ logprobs: true, top_logprobs: 2 });
    // The Ollama surface reads them from the same upstream in its own shape.
    const viaOllama = await postJson(`${server.url}/api/chat`, { model: STANDIN_MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: false, logprobs: true });
    const body = (await viaOllama.json()) as { logprobs: { token: string; logprob: number }[] };
    expect(body.logprobs.map((entry) => entry.token)).toEqual(ANSWER);
  });
});

describe('client libraries as their READMEs use them', () => {
  it('serves LangChain (ChatOllama, ChatOpenAI) and the AI SDK OpenAI-compatible provider', async () => {
    const { ChatOllama } = await import('@langchain/ollama');
    const { ChatOpenAI } = await import('@langchain/openai');
    const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
    const { generateText } = await import('ai');
    const viaOllama = await new ChatOllama({ model: 'stories260K', baseUrl: server.url, numPredict: 4 }).invoke('Once upon a time');
    expect(String(viaOllama.content).length).toBeGreaterThan(0);
    const viaOpenAi = await new ChatOpenAI({ model: 'stories260K', apiKey: 'unused', maxTokens: 4, configuration: { baseURL: `${server.url}/v1` } }).invoke('Once upon a time');
    expect(String(viaOpenAi.content).length).toBeGreaterThan(0);
    const provider = createOpenAICompatible({ name: 'arena', baseURL: `${server.url}/v1` });
    const result = await generateText({ model: provider.chatModel('stories260K'), prompt: 'Once upon a time', maxOutputTokens: 4 });
    expect(result.text.length).toBeGreaterThan(0);
  });
});
