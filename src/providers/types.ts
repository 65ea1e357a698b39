import type { ToolCall, ChatMessage, ToolDefinition, GenerationOptions } from '../domain/chat.js';
/**
 * The vocabulary providers and the gateway share: messages, options, requests, figures, model
 * metadata, errors. The provider contract itself, which re-exports all of this, is provider.ts.
 */

/** `json` for any JSON value, or a JSON schema the output must follow. */
export type OutputFormat = 'json' | Record<string, unknown>;

export type DoneReason = 'stop' | 'length' | 'load' | 'unload' | 'abort' | 'tool_calls';

export interface GenerationStats {
  promptTokens: number;
  completionTokens: number;
  /** Nanoseconds, as Ollama reports them. */
  loadDurationNs: number;
  promptEvalDurationNs: number;
  evalDurationNs: number;
  totalDurationNs: number;
  doneReason: DoneReason;
  toolCalls?: ToolCall[];
  /**
   * Ollama's `context` of /api/generate: the prompt's and the answer's token ids, which a client may
   * send back as `context` to continue. Only completions report it.
   */
  context?: number[];
}

/** One generated token's log-probability and the most likely alternatives (Ollama's and OpenAI's shape). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/**
 * A generation as the generation service hands it to the surfaces: text as it is produced (the
 * answer's `token`s, and the `thinking` of a reasoning model asked to think, which is not part of the
 * answer), then exactly one `done` whose stats carry the tool calls. Providers stream the finer
 * StreamPart (provider.ts); gateway/generation-events.ts folds one into the other.
 */
export type GenerationEvent =
  | { type: 'token'; text: string; logprobs?: TokenLogprob[] }
  | { type: 'thinking'; text: string }
  | { type: 'done'; stats: GenerationStats };

/** Ollama's `think`: on, off, or an effort level (models such as gpt-oss take levels). */
export type ThinkOption = boolean | 'high' | 'medium' | 'low';

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  options: GenerationOptions;
  format?: OutputFormat;
  tools?: ToolDefinition[];
  /** The answer must be a tool call (OpenAI's tool_choice); only backends that can enforce it do. */
  toolChoice?: 'required';
  /** Ask a reasoning model to think, its thoughts apart from the answer; absent = the backend's default. */
  think?: ThinkOption;
  /** Milliseconds to keep the model loaded after this request; undefined = backend default, <0 forever. */
  keepAliveMs?: number;
  /** Ollama's `truncate`: false refuses a prompt longer than the context instead of shortening it. */
  truncate?: boolean;
  /** Report each token's log-probability with this many alternatives (0: the token's own only); absent: none. */
  logprobs?: number;
  signal: AbortSignal;
}

export interface CompletionRequest {
  model: string;
  prompt: string;
  /** Ollama's `raw`: send the prompt as is, without the model's template. */
  raw?: boolean;
  system?: string;
  suffix?: string;
  options: GenerationOptions;
  format?: OutputFormat;
  think?: ThinkOption;
  keepAliveMs?: number;
  /** Ollama's `context`: token ids of an earlier generate, put before this prompt. */
  context?: number[];
  /** Ollama's `truncate`: false refuses a prompt longer than the context instead of dropping its oldest tokens. */
  truncate?: boolean;
  logprobs?: ChatRequest['logprobs'];
  signal: AbortSignal;
}

export interface EmbedRequest {
  model: string;
  input: string[];
  truncate?: boolean;
  keepAliveMs?: number;
  signal: AbortSignal;
}

export interface EmbedResult {
  embeddings: number[][];
  promptTokens: number;
  totalDurationNs: number;
  loadDurationNs: number;
}

/** What a backend knows about one of its models. Fields it cannot know stay undefined. */
export interface ModelInfo {
  /** Ollama-style `name:tag`, unique across backends. */
  name: string;
  family?: string;
  families?: string[];
  format?: string;
  parameterSize?: string;
  quantization?: string;
  sizeBytes?: number;
  contextSize?: number;
  template?: string;
  digest?: string;
  modifiedAt?: string;
  /** GGUF metadata (`general.architecture`, `llama.context_length`, ...) for /api/show's model_info. */
  modelInfo?: Record<string, unknown>;
  capabilities?: string[];
  loaded?: boolean;
  /** When it is loaded: bytes in memory and when it will be unloaded. */
  loadedSizeBytes?: number;
  expiresAt?: string;
}

export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** Raised by backends for problems the client caused or must know about; surfaces map `status`. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** True when another replica may succeed (connection refused, 5xx before anything streamed). */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

/**
 * A backend's refusal (400) of a prompt longer than the model's context. A conversation is fitted to
 * the context by leaving its oldest exchanges out for as long as its backend raises this.
 */
export class ContextOverflowError extends BackendError {
  constructor(
    message: string,
    /** The prompt's length in tokens, when the backend counted it. */
    readonly promptTokens?: number,
    /** The context the prompt did not fit, in tokens, when the backend knows it. */
    readonly contextSize?: number,
  ) {
    super(message, 400);
    this.name = 'ContextOverflowError';
  }
}
