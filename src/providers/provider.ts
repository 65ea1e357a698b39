/**
 * The contract every model server implements: the embedded llama.cpp engine, Ollama hosts and
 * OpenAI-compatible servers today, any other server tomorrow. This file is all a newcomer needs to
 * read to write one; docs/providers.md walks through adding a provider.
 *
 * Surfaces never talk to a provider directly: they go through the generation service
 * (gateway/generation.ts), which goes through the router (gateway/router.ts), which picks a replica and
 * fails over. The router and the pull jobs ask a provider what it can do (an optional method is there
 * or not, a capability flag says what it means); nothing branches on which provider it is.
 */
import type { Readable } from 'node:stream';
import type { ChatRequest, CompletionRequest, EmbedRequest, EmbedResult, GenerationStats, ModelInfo, PullProgress, TokenLogprob } from './types.js';
import type { ToolCall } from '../domain/chat.js';
import type { AbortLike } from '../shared/abort-switch.js';

export * from './types.js';

/** The finish part's figures: token counts, timing in Ollama's nanoseconds, why it ended. */
export type FinishStats = Omit<GenerationStats, 'toolCalls'>;

/**
 * One piece of a generation, in the order the provider learns it:
 * - `prompt-tokens`: the prompt's size, as soon as it is known (the embedded engine: before the first
 *   token). A generation stopped before its `finish` is still charged for its prompt this way.
 * - `token`: answer text as it is produced, with its log-probabilities when the request asked for them.
 * - `thinking`: a reasoning model's thoughts, which are not part of the answer.
 * - `tool-call`: one complete call the model asks for (its arguments parsed).
 * - `finish`: exactly one, last, with usage and timing.
 * The stream may end early only by throwing; aborting the request's signal ends it with a `finish`
 * whose `doneReason` is `abort`.
 */
export type StreamPart =
  | { type: 'prompt-tokens'; count: number }
  | { type: 'token'; text: string; logprobs?: TokenLogprob[] }
  | { type: 'thinking'; text: string }
  | { type: 'tool-call'; call: ToolCall }
  | { type: 'finish'; stats: FinishStats };

/**
 * A request passed on in the wire format the client and the server share. The gateway reads only what
 * its accounting needs off the answer; translating each event in and out was most of its cost per
 * request against a bare proxy's.
 */
export interface RelayRequest {
  /** `chat`: /chat/completions; `completion`: the legacy /completions. */
  endpoint: 'chat' | 'completion';
  /** The model's name here: the provider sends its server's id for it in place of the body's `model`. */
  model: string;
  /** The client's JSON body as it was written. */
  body: Record<string, unknown>;
  signal: AbortLike;
}

/** A model server's answer once its headers are in, whatever its status: the body follows as it arrives. */
export interface ServerAnswer {
  status: number;
  contentType: string | undefined;
  /** The body as it arrives: 'data', 'end', 'error', and 'close' last however it ended. */
  body: Readable;
}

/** What a provider's `pull` accepts, and where the pulled model ends up. */
export interface PullCapability {
  /** Ollama registry names (`llama3.2:1b`, `host/namespace/model:tag`). */
  registryNames: boolean;
  /** Single GGUF files: http(s) URLs and `hf:owner/repo/file.gguf` references. */
  files: boolean;
  /**
   * The file lands in this gateway's own models directory, not in a model server's store. A registry
   * name goes to a server with a store of its own first, so the model sits beside its other models.
   */
  storesLocally: boolean;
}

/** Statements about a provider that the gateway acts on; absent means false. */
export interface ProviderCapabilities {
  /**
   * Runs in this process: a failure there is the request's, never a sign that the server is
   * unreachable, so the router never marks it down.
   */
  inProcess?: boolean;
  /** Present when the provider has `pull`. */
  pulls?: PullCapability;
}

export interface ModelProvider {
  /**
   * Stable and unique: the provider's name alone for a single one (`embedded`), or the name, a colon
   * and what tells instances apart (`ollama:http://host:11434`). Clients see the part before the first
   * colon as the backend's kind (/api/models, /v1/models' `owned_by`); ids never carry credentials.
   */
  readonly id: string;
  readonly capabilities?: ProviderCapabilities;
  /** True for an optional provider that is not there now (Ollama's default address, nothing answering). */
  readonly absent?: boolean;

  // ── inference ──
  /** Every model it serves now: what the router routes by. */
  listModels(): Promise<ModelInfo[]>;
  /** Stream parts; the iterator ends after `finish`. Aborting the request's signal stops generation. */
  chat(request: ChatRequest): AsyncIterable<StreamPart>;
  complete(request: CompletionRequest): AsyncIterable<StreamPart>;
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /**
   * Sends a request that is already in OpenAI's wire format on as the client wrote it (its `model`
   * replaced by the server's own id) and resolves with the response once its headers are in: a 2xx,
   * or a 4xx about the client's request. A failure of the server, or of the gateway's credentials
   * there, throws a retryable BackendError instead. Present where the server speaks OpenAI's wire
   * format, so that the gateway's /v1 needs no translation in between (see RelayRequest).
   */
  relayOpenAi?(request: RelayRequest): Promise<ServerAnswer>;
  /** A cheap liveness probe: what brings a replica the router marked down back. */
  ping(): Promise<boolean>;
  close(): Promise<void>;

  // ── model administration: each present only where the server can do it ──
  /** Loads a model ahead of use, kept for `keepAliveMs` (<0 forever); absent: loading is the server's business. */
  load?(model: string, keepAliveMs?: number): Promise<void>;
  unload?(model: string): Promise<void>;
  /** Yields progress until the model is present as `name` (absent: `pullName(source)`); throws on failure. See `capabilities.pulls`. */
  pull?(source: string, name: string | undefined, signal: AbortSignal): AsyncIterable<PullProgress>;
  /** The name a pull of `source` gives the model here; absent: the source itself. */
  pullName?(source: string): string;
  delete?(model: string): Promise<void>;
  copy?(source: string, destination: string): Promise<void>;
  /** Called when the model list or loaded state changes by itself (idle unload, a pull). */
  onChange?(listener: () => void): void;
}

/** The provider's name as clients see it: its id up to the first colon. */
export function providerKind(provider: Pick<ModelProvider, 'id'>): string {
  const colon = provider.id.indexOf(':');
  return colon === -1 ? provider.id : provider.id.slice(0, colon);
}
