/**
 * What a conversation is made of and the settings a generation takes, as every API, every provider
 * and the web UI share them.
 */

type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id?: string;
  function: { name: string; arguments: Record<string, unknown> };
}

export interface ChatMessage {
  role: Role;
  content: string;
  images?: string[];
  tool_calls?: ToolCall[];
  tool_name?: string;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** Sampling and length settings, already normalised from whatever surface they came in on. */
export interface GenerationOptions {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  repeat_last_n?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** Tokens to generate; -1 (or absent) means until the end of text or a full context. */
  num_predict?: number;
  /** A fixed sampling seed (0 included, as in Ollama and OpenAI); absent means random. */
  seed?: number;
  stop?: string[];
  num_ctx?: number;
  /** Every other Ollama option, passed through to backends that understand it. */
  extra?: Record<string, unknown>;
}
