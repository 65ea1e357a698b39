/**
 * The part of Ollama's HTTP API this provider reads and writes
 * (https://github.com/ollama/ollama/blob/main/docs/api.md).
 */
import type { TokenLogprob } from '../provider.js';

/** One entry of /api/tags or /api/ps. */
export interface OllamaModel {
  name: string;
  model?: string;
  modified_at?: string;
  size?: number;
  digest?: string;
  expires_at?: string;
  details?: {
    format?: string;
    family?: string;
    families?: string[] | null;
    parameter_size?: string;
    quantization_level?: string;
  };
}

/** What /api/show answers that /api/tags does not. */
export interface OllamaShow {
  template?: string;
  model_info?: Record<string, unknown>;
  capabilities?: string[];
}

interface OllamaToolCall {
  id?: string;
  function: { name: string; arguments: Record<string, unknown> };
}

/** One streamed line of /api/chat or /api/generate; the last has `done` and the figures. */
export interface OllamaChunk {
  error?: string;
  message?: { content?: string; thinking?: string; tool_calls?: OllamaToolCall[] };
  response?: string;
  /** /api/generate's thoughts (chat's are in `message.thinking`). */
  thinking?: string;
  done?: boolean;
  done_reason?: string;
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
  context?: number[];
  logprobs?: TokenLogprob[];
}

/** One streamed line of /api/pull. */
export interface OllamaPullLine {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

export interface OllamaEmbedResponse {
  embeddings: number[][];
  prompt_eval_count?: number;
  total_duration?: number;
  load_duration?: number;
}
