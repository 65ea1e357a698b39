import { BackendError, type ChatRequest, type ModelInfo, type StreamPart } from '../../src/providers/provider.js';
import { TestBackend, finish } from '../support/test-backend.js';

/**
 * A model server whose answers the test chooses, standing in for a remote backend (as an Ollama host
 * would be): the real model cannot be made to write HTML or to fail on demand. Its models:
 * - `canned:latest` streams `answer` word by word, `delayMs` apart;
 * - `broken:latest` fails before its first token.
 * `aborted` counts generations stopped by their signal (the client's stop reached the server).
 */
export class CannedBackend extends TestBackend {
  readonly id = 'canned';
  aborted = 0;
  completed = 0;

  constructor(
    public answer: string,
    public delayMs = 0,
  ) {
    super();
  }

  async listModels(): Promise<ModelInfo[]> {
    return [
      { name: 'canned:latest', family: 'canned', contextSize: 4096 },
      { name: 'broken:latest', family: 'canned', contextSize: 4096 },
    ];
  }

  async *chat(request: ChatRequest): AsyncGenerator<StreamPart> {
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
    yield* finish(request.messages.length, words.length, Number(process.hrtime.bigint() - started));
  }
}
