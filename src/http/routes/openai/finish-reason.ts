import type { GenerationStats } from '../../../providers/types.js';

/**
 * OpenAI's `finish_reason` of a generation: `tool_calls` when the model called tools, `length` when it
 * hit its token limit, else `stop`. The other APIs' OpenAI-style fields (the `choices` of a
 * non-streamed Ollama answer) use it too.
 */
export function finishReason(stats: GenerationStats): 'stop' | 'length' | 'tool_calls' {
  if (stats.toolCalls?.length) return 'tool_calls';
  return stats.doneReason === 'length' ? 'length' : 'stop';
}
