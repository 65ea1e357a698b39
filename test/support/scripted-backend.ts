import { BackendError, type ChatRequest, type CompletionRequest, type ModelInfo, type StreamPart } from '../../src/providers/provider.js';
import { TestBackend, finish } from './test-backend.js';

/**
 * A second backend beside the real engine, serving one model whose behaviour the test picks with the
 * last message: what a real tool-calling model or a failing upstream does, which the 260K-parameter
 * story model cannot show. The surfaces under test cannot tell it from an Ollama host.
 *
 * - a message containing `CALL get_weather` ends the turn with that tool call (`{"city": "Paris"}`);
 * - a message containing `FAIL` streams one token and then fails, as an upstream dropping mid-answer;
 * - a message containing `BAD COUNTS` ends with a negative prompt count and an infinite completion count.
 * Every request it received is kept in `requests`.
 */
export const SCRIPTED_MODEL = 'scripted:latest';

export class ScriptedBackend extends TestBackend {
  readonly id = 'scripted';
  readonly requests: (ChatRequest | CompletionRequest)[] = [];

  async listModels(): Promise<ModelInfo[]> {
    return [{ name: SCRIPTED_MODEL, family: 'scripted', format: 'gguf', capabilities: ['completion', 'tools'], loaded: true }];
  }

  private async *script(text: string): AsyncGenerator<StreamPart> {
    if (text.includes('CALL get_weather')) {
      yield* finish(3, 5, 3000, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
      return;
    }
    if (text.includes('BAD COUNTS')) {
      yield { type: 'token', text: 'Odd' };
      yield* finish(-4, Infinity, 3000);
      return;
    }
    yield { type: 'token', text: 'Partly' };
    if (text.includes('FAIL')) throw new BackendError('upstream connection lost', 502);
    yield { type: 'token', text: ' sunny' };
    yield* finish(3, 2, 3000);
  }

  chat(request: ChatRequest): AsyncIterable<StreamPart> {
    this.requests.push(request);
    return this.script(request.messages.at(-1)?.content ?? '');
  }

  override complete(request: CompletionRequest): AsyncIterable<StreamPart> {
    this.requests.push(request);
    return this.script(request.prompt);
  }
}
