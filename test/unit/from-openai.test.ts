import { describe, expect, it } from 'vitest';
import { fromOpenAiFinishReason, fromOpenAiModels, openAiClientError } from '../../src/providers/openai/from-openai.js';
import { ContextOverflowError } from '../../src/providers/types.js';
import { openAiParts } from '../../src/providers/openai/server.js';
import type { OpenAiModelList } from '../../src/providers/openai/wire.js';
import { collectBatches, fixtureJson, fixtureResponse } from './fixtures.js';

const partsOf = (name: string, chunkSize?: number) => collectBatches(openAiParts(fixtureResponse(name, chunkSize)));

describe('openAiParts (SSE framing and fromOpenAiChunk)', () => {
  it('reads a streamed chat: text deltas, then the finish reason and the usage of the last chunk', async () => {
    expect(await partsOf('openai/chat-stream.sse')).toEqual([
      { type: 'token', text: 'Hello' },
      { type: 'token', text: ' there!' },
      { type: 'finish', stats: { promptTokens: 9, completionTokens: 2, doneReason: 'length' } },
    ]);
  });

  it('reads the same whatever the network chunks (one byte at a time)', async () => {
    expect(await partsOf('openai/chat-stream.sse', 1)).toEqual(await partsOf('openai/chat-stream.sse', 4096));
  });

  it('joins a tool call’s argument fragments and parses them, the call before the finish', async () => {
    expect(await partsOf('openai/chat-tool-call.sse')).toEqual([
      { type: 'tool-call', call: { id: 'call_abc123', function: { name: 'get_weather', arguments: { city: 'Paris' } } } },
      { type: 'finish', stats: { promptTokens: 80, completionTokens: 17, doneReason: 'tool_calls' } },
    ]);
  });

  it('reads reasoning_content as thinking, apart from the answer', async () => {
    expect(await partsOf('openai/chat-reasoning.sse')).toEqual([
      { type: 'thinking', text: 'Two plus two' },
      { type: 'token', text: '4' },
      { type: 'finish', stats: { promptTokens: 12, completionTokens: 6, doneReason: 'stop' } },
    ]);
  });

  it('turns the legacy completions’ parallel log-probability arrays into the chat shape', async () => {
    const [first] = await partsOf('openai/completion-logprobs.sse');
    expect(first).toEqual({
      type: 'token',
      text: ' there',
      logprobs: [
        {
          token: ' there',
          logprob: -0.5,
          bytes: [32, 116, 104, 101, 114, 101],
          top_logprobs: [
            { token: ' there', logprob: -0.5, bytes: [32, 116, 104, 101, 114, 101] },
            { token: ' the', logprob: -1.25, bytes: [32, 116, 104, 101] },
          ],
        },
      ],
    });
  });

  it('turns an error event inside a begun stream into an error part, and gives no finish without a final chunk', async () => {
    expect(await partsOf('openai/error-event.sse')).toEqual([
      { type: 'token', text: 'Once' },
      { type: 'error', message: 'The server had an error while processing your request.' },
    ]);
  });
});

describe('fromOpenAiFinishReason', () => {
  it('maps OpenAI’s finish reasons to ours', () => {
    expect(fromOpenAiFinishReason('length')).toBe('length');
    expect(fromOpenAiFinishReason('tool_calls')).toBe('tool_calls');
    expect(fromOpenAiFinishReason('function_call')).toBe('tool_calls');
    expect(fromOpenAiFinishReason('content_filter')).toBe('stop');
    expect(fromOpenAiFinishReason(null)).toBe('stop');
  });
});

describe('fromOpenAiModels', () => {
  it('lists tagless ids as name:latest and remembers the server’s own id for each', () => {
    const ids = new Map<string, string>();
    const models = fromOpenAiModels(fixtureJson<OpenAiModelList>('openai/models.json'), 'openai:http://host/v1', ids);
    expect(models.map((m) => m.name)).toEqual(['gpt-4o-mini:latest', 'Qwen/Qwen2.5-7B-Instruct:latest', 'llama3:8b']);
    expect(models[0]!.modifiedAt).toBe(new Date(1721172741 * 1000).toISOString());
    expect(models[0]!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(ids.get('Qwen/Qwen2.5-7B-Instruct:latest')).toBe('Qwen/Qwen2.5-7B-Instruct');
  });
});

describe('openAiClientError', () => {
  it('types a context_length_exceeded refusal, and nothing else', () => {
    const body = (code: string) => JSON.stringify({ error: { message: 'too long', type: 'invalid_request_error', code } });
    expect(openAiClientError(400, 'too long', body('context_length_exceeded'))).toBeInstanceOf(ContextOverflowError);
    expect(openAiClientError(400, 'bad', body('invalid_value'))).toBeUndefined();
    expect(openAiClientError(400, 'bad', 'not json')).toBeUndefined();
  });
});
