import {
  BackendError,
  type Backend,
  type ChatRequest,
  type CompletionRequest,
  type EmbedResult,
  type GenerationEvent,
  type GenerationStats,
  type ModelInfo,
  type ToolCall,
} from '../../src/backends/types.js';

/**
 * A second backend beside the real engine, serving one model whose behaviour the test picks with the
 * last message: what a real tool-calling model or a failing upstream does, which the 260K-parameter
 * story model cannot show. The surfaces under test cannot tell it from an Ollama host.
 *
 * - a message containing `CALL get_weather` ends the turn with that tool call (`{"city": "Paris"}`);
 * - a message containing `FAIL` streams one token and then fails, as an upstream dropping mid-answer.
 * Every request it received is kept in `requests`.
 */
export const SCRIPTED_MODEL = 'scripted:latest';

export class ScriptedBackend implements Backend {
  readonly id = 'scripted';
  readonly kind = 'ollama' as const;
  readonly requests: (ChatRequest | CompletionRequest)[] = [];

  async listModels(): Promise<ModelInfo[]> {
    return [{ name: SCRIPTED_MODEL, family: 'scripted', format: 'gguf', capabilities: ['completion', 'tools'], loaded: true }];
  }

  private async *script(text: string): AsyncGenerator<GenerationEvent> {
    const stats = (completionTokens: number, toolCalls?: ToolCall[]): GenerationStats => ({
      promptTokens: 3,
      completionTokens,
      loadDurationNs: 0,
      promptEvalDurationNs: 1000,
      evalDurationNs: 2000,
      totalDurationNs: 3000,
      doneReason: toolCalls ? 'tool_calls' : 'stop',
      toolCalls,
    });
    if (text.includes('CALL get_weather')) {
      yield { type: 'done', stats: stats(5, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]) };
      return;
    }
    yield { type: 'token', text: 'Partly' };
    if (text.includes('FAIL')) throw new BackendError('upstream connection lost', 502);
    yield { type: 'token', text: ' sunny' };
    yield { type: 'done', stats: stats(2) };
  }

  chat(request: ChatRequest): AsyncIterable<GenerationEvent> {
    this.requests.push(request);
    return this.script(request.messages.at(-1)?.content ?? '');
  }

  complete(request: CompletionRequest): AsyncIterable<GenerationEvent> {
    this.requests.push(request);
    return this.script(request.prompt);
  }

  async embed(): Promise<EmbedResult> {
    throw new BackendError('scripted model has no embeddings', 400);
  }

  async load(): Promise<void> {}
  async unload(): Promise<void> {}
  async ping(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}
