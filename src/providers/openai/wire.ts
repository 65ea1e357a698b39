/** The part of the OpenAI API's shapes this provider reads (chat completions and legacy completions). */
import type { TokenLogprob } from '../provider.js';

interface OpenAiToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/** The legacy completions' parallel arrays of log-probabilities. */
interface OpenAiLegacyLogprobs {
  tokens?: string[];
  token_logprobs?: number[];
  top_logprobs?: Record<string, number>[] | null;
}

export interface OpenAiChoiceChunk {
  index?: number;
  text?: string;
  delta?: {
    content?: string | null;
    /** Thoughts: `reasoning_content` (vLLM, DeepSeek) or `reasoning` (Ollama's /v1, OpenRouter). */
    reasoning_content?: string | null;
    reasoning?: string | null;
    tool_calls?: OpenAiToolCallDelta[];
  };
  /** Chat's `{content: [...]}`, or the legacy completions' parallel arrays. */
  logprobs?: ({ content?: TokenLogprob[] | null } & OpenAiLegacyLogprobs) | null;
  finish_reason?: string | null;
}

/** One server-sent event's data of a streamed /chat/completions or /completions. */
export interface OpenAiChunk {
  error?: { message?: string } | string;
  choices?: OpenAiChoiceChunk[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

export interface OpenAiModelList {
  data?: { id: string; created?: number }[];
}

export interface OpenAiEmbeddings {
  data?: { embedding: number[]; index?: number }[];
  usage?: { prompt_tokens?: number };
}
