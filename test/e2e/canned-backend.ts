import { BackendError, type Backend, type ChatRequest, type GenerationEvent, type ModelInfo } from '../../src/backends/types.js';

/**
 * A model server whose answers the test chooses, standing in for a remote backend (as an Ollama host
 * would be): the real model cannot be made to write HTML or to fail on demand. Its models:
 * - `canned:latest` streams `answer` word by word, `delayMs` apart;
 * - `broken:latest` fails before its first token.
 * `aborted` counts generations stopped by their signal (the client's stop reached the server).
 */
export class CannedBackend implements Backend {
  readonly id = 'canned';
  readonly kind = 'openai' as const;
  aborted = 0;
  completed = 0;

  constructor(
    public answer: string,
    public delayMs = 0,
  ) {}

  async listModels(): Promise<ModelInfo[]> {
    return [
      { name: 'canned:latest', family: 'canned', contextSize: 4096 },
      { name: 'broken:latest', family: 'canned', contextSize: 4096 },
    ];
  }

  async *chat(request: ChatRequest): AsyncGenerator<GenerationEvent> {
    if (request.model.startsWith('broken')) throw new BackendError('the canned backend is broken on purpose', 502);
    const started = process.hrtime.bigint();
    const words = this.answer.split(/(?<=\s)/);
    for (const word of words) {
      if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (request.signal.aborted) {
        this.aborted++;
        throw new Error('aborted');
      }
      yield { type: 'token', text: word };
    }
    this.completed++;
    const ns = Number(process.hrtime.bigint() - started);
    yield {
      type: 'done',
      stats: {
        promptTokens: request.messages.length,
        completionTokens: words.length,
        loadDurationNs: 0,
        promptEvalDurationNs: 0,
        evalDurationNs: ns,
        totalDurationNs: ns,
        doneReason: 'stop',
      },
    };
  }

  complete(): AsyncIterable<GenerationEvent> {
    throw new BackendError('completions are not canned', 400);
  }
  async embed(): Promise<never> {
    throw new BackendError('embeddings are not canned', 400);
  }
  async load(): Promise<void> {}
  async unload(): Promise<void> {}
  async ping(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}
