import type { GenerationStats } from '../../../providers/types.js';

/** Ollama's done_reason: tool calls end a turn normally ("stop"), as Ollama reports them. */
export function doneReason(stats: GenerationStats): string {
  return stats.doneReason === 'length' || stats.doneReason === 'load' || stats.doneReason === 'unload' ? stats.doneReason : 'stop';
}
