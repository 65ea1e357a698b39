import { describe, expect, it } from 'vitest';
import { keepAliveValue, toOllamaChat, toOllamaGenerate } from '../../src/providers/ollama/to-ollama.js';
import type { ChatRequest } from '../../src/providers/provider.js';
import { fixtureJson } from './fixtures.js';

const signal = new AbortController().signal;

describe('toOllamaChat', () => {
  it('writes a chat request as the /api/chat body Ollama takes', () => {
    const request: ChatRequest = {
      model: 'llama3.2:latest',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Paris?', images: ['iVBORw0KGgo='] },
        { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: '18 C', tool_name: 'get_weather' },
      ],
      options: { temperature: 0.2, num_predict: 64, seed: 0, stop: ['\n\n'], extra: { num_keep: 4 } },
      think: 'low',
      logprobs: 2,
      keepAliveMs: 1500,
      signal,
    };
    expect(toOllamaChat(request)).toEqual(fixtureJson('ollama/chat-request.json'));
  });
});

describe('toOllamaGenerate', () => {
  it('sends raw only when set, and the earlier context as given', () => {
    const body = toOllamaGenerate({ model: 'm:latest', prompt: 'Hi', raw: false, context: [1, 2], options: {}, signal });
    expect(body).toMatchObject({ model: 'm:latest', prompt: 'Hi', stream: true, context: [1, 2], options: {} });
    expect(body.raw).toBeUndefined();
  });
});

describe('keepAliveValue', () => {
  it('writes whole seconds as a number, fractions as a Go duration and forever as -1', () => {
    expect(keepAliveValue(undefined)).toBeUndefined();
    expect(keepAliveValue(300_000)).toBe(300);
    expect(keepAliveValue(1500)).toBe('1500ms');
    expect(keepAliveValue(-5)).toBe(-1);
  });
});
