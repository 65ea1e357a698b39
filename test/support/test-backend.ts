import { BackendError, type ChatRequest, type CompletionRequest, type EmbedResult, type FinishStats, type ModelInfo, type ModelProvider, type StreamPart } from '../../src/providers/provider.js';
import { type ToolCall } from '../../src/domain/chat.js';

/**
 * The common part of the in-process backends tests put beside the real engine to show what the tiny
 * story model cannot (a model that writes chosen text, calls a tool, or fails): everything but
 * listing and generating is a no-op, and `finish()` builds the final parts.
 */
export abstract class TestBackend implements ModelProvider {
  abstract readonly id: string;
  abstract listModels(): Promise<ModelInfo[]>;
  abstract chat(request: ChatRequest): AsyncIterable<StreamPart>;

  complete(_request: CompletionRequest): AsyncIterable<StreamPart> {
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

function testStats(promptTokens: number, completionTokens: number, durationNs: number, toolCalls?: ToolCall[]): FinishStats {
  return {
    promptTokens,
    completionTokens,
    loadDurationNs: 0,
    promptEvalDurationNs: Math.round(durationNs / 3),
    evalDurationNs: durationNs - Math.round(durationNs / 3),
    totalDurationNs: durationNs,
    doneReason: toolCalls ? 'tool_calls' : 'stop',
  };
}

/** A generation's last parts: its tool calls, then the finish with `testStats`' figures. */
export function finish(promptTokens: number, completionTokens: number, durationNs: number, toolCalls?: ToolCall[]): StreamPart[] {
  return [
    ...(toolCalls ?? []).map((call): StreamPart => ({ type: 'tool-call', call })),
    { type: 'finish', stats: testStats(promptTokens, completionTokens, durationNs, toolCalls) },
  ];
}
