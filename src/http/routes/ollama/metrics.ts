import type { GenerationStats } from '../../../providers/types.js';

/** Ollama's timing and token fields, in nanoseconds, as they appear on the final line. */
export function metricsOf(stats: GenerationStats) {
  return {
    total_duration: stats.totalDurationNs,
    load_duration: stats.loadDurationNs,
    prompt_eval_count: stats.promptTokens,
    prompt_eval_duration: stats.promptEvalDurationNs,
    eval_count: stats.completionTokens,
    eval_duration: stats.evalDurationNs,
  };
}
