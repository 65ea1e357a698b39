import { describe, expect, it } from 'vitest';
import { openAiMessages, toOpenAiChat, toOpenAiCompletion } from '../../src/providers/openai/to-openai.js';

const signal = new AbortController().signal;

describe('toOpenAiChat', () => {
  it('sends the server’s own model id, asks for usage and maps our options to OpenAI’s names', () => {
    const body = toOpenAiChat(
      { model: 'gpt-mini:latest', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 10, top_k: 5, stop: ['x'] }, format: 'json', think: 'high', signal },
      'gpt-mini',
    );
    expect(body).toMatchObject({
      model: 'gpt-mini',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 10,
      top_k: 5,
      stop: ['x'],
      response_format: { type: 'json_object' },
      reasoning_effort: 'high',
    });
    expect(body.tools).toBeUndefined();
  });

  it('leaves max_tokens out for "until the end" (-1)', () => {
    expect(toOpenAiChat({ model: 'm', messages: [], options: { num_predict: -1 }, signal }, 'm').max_tokens).toBeUndefined();
  });
});

describe('toOpenAiCompletion', () => {
  it('puts the system prompt before the prompt, unless raw', () => {
    expect(toOpenAiCompletion({ model: 'm', prompt: 'Go', system: 'Sys', options: {}, signal }, 'm').prompt).toBe('Sys\n\nGo');
    expect(toOpenAiCompletion({ model: 'm', prompt: 'Go', system: 'Sys', raw: true, options: {}, signal }, 'm').prompt).toBe('Go');
  });
});

describe('openAiMessages', () => {
  it('writes tool arguments as JSON and ties a tool result to the call it answers', () => {
    expect(
      openAiMessages([
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: '18 C', tool_name: 'get_weather' },
        { role: 'user', content: 'and this?', images: ['AAAA'] },
      ]),
    ).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', content: '18 C', tool_call_id: 'call_0' },
      { role: 'user', content: [{ type: 'text', text: 'and this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
    ]);
  });
});
