import { describe, expect, it } from 'vitest';
import { fromOllamaChunk, fromOllamaModel, fromOllamaShow, ollamaClientError } from '../../src/providers/ollama/from-ollama.js';
import { ContextOverflowError } from '../../src/providers/types.js';
import type { OllamaChunk, OllamaModel, OllamaShow } from '../../src/providers/ollama/wire.js';
import { fixtureJson, fixtureLines } from './fixtures.js';

const partsOf = (name: string) => fixtureLines<OllamaChunk>(name).flatMap(fromOllamaChunk);

describe('fromOllamaChunk', () => {
  it('reads a streamed chat: thoughts, text, then the final line as a finish with Ollama’s figures', () => {
    expect(partsOf('ollama/chat-stream.ndjson')).toEqual([
      { type: 'thinking', text: 'The user greets me.' },
      { type: 'token', text: 'Hello' },
      { type: 'token', text: ' there!' },
      {
        type: 'finish',
        stats: {
          promptTokens: 26,
          completionTokens: 3,
          loadDurationNs: 1334875,
          promptEvalDurationNs: 342546000,
          evalDurationNs: 4535599000,
          totalDurationNs: 4883583458,
          doneReason: 'stop',
          context: undefined,
        },
      },
    ]);
  });

  it('reads tool calls with their arguments as objects', () => {
    const parts = partsOf('ollama/chat-tool-call.ndjson');
    expect(parts[0]).toEqual({ type: 'tool-call', call: { function: { name: 'get_current_weather', arguments: { format: 'celsius', location: 'Paris, FR' } } } });
    expect(parts.at(-1)).toMatchObject({ type: 'finish', stats: { promptTokens: 122, completionTokens: 33 } });
  });

  it('reads /api/generate: responses, log-probabilities, the context and the done reason', () => {
    const parts = partsOf('ollama/generate-stream.ndjson');
    expect(parts.slice(0, 2)).toEqual([
      { type: 'token', text: 'The' },
      { type: 'token', text: ' sky', logprobs: [{ token: ' sky', logprob: -0.25, bytes: [32, 115, 107, 121], top_logprobs: [] }] },
    ]);
    expect(parts[2]).toMatchObject({ type: 'finish', stats: { doneReason: 'length', context: [1, 2, 3, 4], completionTokens: 2 } });
  });

  it('turns an error line inside a begun stream into an error part', () => {
    expect(partsOf('ollama/error-mid-stream.ndjson')).toEqual([
      { type: 'token', text: 'Once' },
      { type: 'error', message: 'an error was encountered while running the model: unexpected EOF' },
    ]);
  });

  it('keeps the done reasons Ollama has words for and calls any other a stop', () => {
    const reason = (done_reason: string) => fromOllamaChunk({ done: true, done_reason })[0];
    expect(reason('load')).toMatchObject({ stats: { doneReason: 'load' } });
    expect(reason('unload')).toMatchObject({ stats: { doneReason: 'unload' } });
    expect(reason('something new')).toMatchObject({ stats: { doneReason: 'stop' } });
  });
});

describe('Ollama listings', () => {
  it('merges /api/tags, /api/ps and /api/show into one model', () => {
    const [tagged] = fixtureJson<{ models: OllamaModel[] }>('ollama/tags.json').models;
    const [running] = fixtureJson<{ models: OllamaModel[] }>('ollama/ps.json').models;
    const shown = fromOllamaShow(fixtureJson<OllamaShow>('ollama/show.json'));
    expect(fromOllamaModel(tagged!, shown, running, true)).toMatchObject({
      name: 'llama3.2:latest',
      family: 'llama',
      families: ['llama'],
      format: 'gguf',
      parameterSize: '3.2B',
      quantization: 'Q4_K_M',
      sizeBytes: 2019393189,
      contextSize: 131072,
      capabilities: ['completion', 'tools'],
      template: '{{ .Prompt }}',
      loaded: true,
      loadedSizeBytes: 5137025024,
      expiresAt: '2025-05-04T17:42:44.706015396-07:00',
    });
  });

  it('leaves the loaded state unknown when the server has no /api/ps', () => {
    const [tagged] = fixtureJson<{ models: OllamaModel[] }>('ollama/tags.json').models;
    expect(fromOllamaModel(tagged!, {}, undefined, false).loaded).toBeUndefined();
    expect(fromOllamaModel(tagged!, {}, undefined, true).loaded).toBe(false);
  });
});

describe('ollamaClientError', () => {
  it("types Ollama's refusal of a prompt longer than the context, and nothing else", () => {
    expect(ollamaClientError(400, 'the input length exceeds the context length')).toBeInstanceOf(ContextOverflowError);
    expect(ollamaClientError(400, 'invalid options: num_predict')).toBeUndefined();
    expect(ollamaClientError(404, 'model "x" not found, try pulling it first')).toBeUndefined();
  });
});
