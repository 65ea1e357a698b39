import { BackendError, type Backend, type ChatRequest, type CompletionRequest, type EmbedResult, type GenerationEvent, type GenerationStats, type ModelInfo, type ToolCall } from '../../src/backends/types.js';

/**
 * The common part of the in-process backends tests put beside the real engine to show what the tiny
 * story model cannot (a model that writes chosen text, calls a tool, or fails): everything but
 * listing and generating is a no-op, and `stats()` builds the final event's figures.
 */
export abstract class TestBackend implements Backend {
  abstract readonly id: string;
  abstract readonly kind: Backend['kind'];
  abstract listModels(): Promise<ModelInfo[]>;
  abstract chat(request: ChatRequest): AsyncIterable<GenerationEvent>;

  complete(_request: CompletionRequest): AsyncIterable<GenerationEvent> {
    throw new BackendError(`${this.id} has no completions`, 400);
  }
  async embed(): Promise<EmbedResult> {
    throw new BackendError(`${this.id} has no embeddings`, 400);
  }
  async load(): Promise<void> {}
  async unload(): Promise<void> {}
  async ping(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}

export function testStats(promptTokens: number, completionTokens: number, durationNs: number, toolCalls?: ToolCall[]): GenerationStats {
  return {
    promptTokens,
    completionTokens,
    loadDurationNs: 0,
    promptEvalDurationNs: Math.round(durationNs / 3),
    evalDurationNs: durationNs - Math.round(durationNs / 3),
    totalDurationNs: durationNs,
    doneReason: toolCalls ? 'tool_calls' : 'stop',
    toolCalls,
  };
}
