import type http from 'node:http';
import {
  BackendError,
  type Backend,
  type ChatMessage,
  type ChatRequest,
  type CompletionRequest,
  type DoneReason,
  type EmbedRequest,
  type EmbedResult,
  type GenerationEvent,
  type GenerationOptions,
  type ModelInfo,
  type PullProgress,
  type TokenLogprob,
  type ToolCall,
} from './types.js';
import { GENERATION_TIMEOUT_MS, METADATA_TIMEOUT_MS, ReachabilityLog, Upstream, generationStream, ndjsonBatches, type BackendLogger, type StreamPiece } from './http-stream.js';

export type { BackendLogger };
import { normaliseModelName } from '../shared/model-names.js';

/** The part of Ollama's response shapes this backend reads (https://github.com/ollama/ollama/blob/main/docs/api.md). */
interface OllamaModel {
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

interface OllamaChunk {
  error?: string;
  message?: { content?: string; thinking?: string; tool_calls?: { id?: string; function: { name: string; arguments: Record<string, unknown> } }[] };
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

export interface OllamaBackendOptions {
  /**
   * The default host (OLLAMA_HOSTS not set): it is used when it answers and otherwise stays silent and
   * costs nothing: it lists no models instead of failing, and after a refusal is asked again only
   * every `absentRetryMs`.
   */
  optional?: boolean;
  absentRetryMs?: number;
  /** How long a generation may wait for the server's first answer before another replica is tried. */
  responseTimeoutMs?: number;
  logger?: BackendLogger;
}

/** Ollama's keep_alive: seconds as a number, a Go duration for fractions, a negative number for ever. */
export function keepAliveValue(ms: number | undefined): number | string | undefined {
  if (ms === undefined) return undefined;
  if (ms < 0) return -1;
  return ms % 1000 === 0 ? ms / 1000 : `${Math.round(ms)}ms`;
}

/** Our normalised options in Ollama's `options` object; `extra` holds the rest of Ollama's keys. */
export function ollamaOptions(options: GenerationOptions): Record<string, unknown> {
  const { extra, seed, stop, ...known } = options;
  const out: Record<string, unknown> = { ...extra };
  for (const [key, value] of Object.entries(known)) if (value !== undefined) out[key] = value;
  if (seed !== undefined) out.seed = seed;
  if (stop?.length) out.stop = stop;
  return out;
}

/** Ollama's and OpenAI chat's request fields for log-probabilities: none unless asked. */
export function logprobsFields(top: number | undefined): Record<string, unknown> {
  return top === undefined ? {} : { logprobs: true, top_logprobs: top };
}

function doneReason(reason: string | undefined): DoneReason {
  return reason === 'length' || reason === 'load' || reason === 'unload' ? reason : 'stop';
}

function toolCallsOf(chunk: OllamaChunk): ToolCall[] | undefined {
  return chunk.message?.tool_calls?.map((call) => ({
    ...(typeof call.id === 'string' ? { id: call.id } : {}),
    function: { name: call.function.name, arguments: call.function.arguments ?? {} },
  }));
}

/** One streamed line of /api/chat or /api/generate as a piece; the final line carries Ollama's own stats. */
function pieceOf(chunk: OllamaChunk): StreamPiece {
  if (chunk.error !== undefined) return { error: chunk.error };
  const piece: StreamPiece = { text: chunk.message?.content ?? chunk.response, thinking: chunk.message?.thinking ?? chunk.thinking, toolCalls: toolCallsOf(chunk) };
  if (Array.isArray(chunk.logprobs) && chunk.logprobs.length > 0) piece.logprobs = chunk.logprobs;
  if (chunk.done) {
    piece.final = {
      promptTokens: chunk.prompt_eval_count,
      completionTokens: chunk.eval_count,
      loadDurationNs: chunk.load_duration,
      promptEvalDurationNs: chunk.prompt_eval_duration,
      evalDurationNs: chunk.eval_duration,
      totalDurationNs: chunk.total_duration,
      doneReason: doneReason(chunk.done_reason),
      context: Array.isArray(chunk.context) ? chunk.context : undefined,
    };
  }
  return piece;
}

async function* ollamaPieces(response: http.IncomingMessage): AsyncGenerator<StreamPiece[]> {
  for await (const chunks of ndjsonBatches<OllamaChunk>(response)) yield chunks.map(pieceOf);
}

function wireMessage(message: ChatMessage): Record<string, unknown> {
  return {
    role: message.role,
    content: message.content,
    ...(message.images?.length ? { images: message.images } : {}),
    ...(message.tool_calls?.length ? { tool_calls: message.tool_calls.map((call) => ({ function: call.function })) } : {}),
    ...(message.tool_name ? { tool_name: message.tool_name } : {}),
  };
}

/**
 * One Ollama server, driven over its HTTP API. Model names are Ollama's own (`name:tag`), so a model
 * several hosts serve merges into one routed model with several replicas.
 */
export class OllamaBackend implements Backend {
  readonly id: string;
  readonly kind = 'ollama' as const;
  private readonly upstream: Upstream;
  private absentUntil = 0;
  private answered = false;
  /** /api/show answers by model name and digest. */
  private readonly shown = new Map<string, Partial<ModelInfo>>();
  private readonly reachability: ReachabilityLog;

  constructor(
    readonly baseUrl: string,
    private readonly options: OllamaBackendOptions = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.id = `ollama:${this.baseUrl}`;
    this.upstream = new Upstream(this.baseUrl, `Ollama at ${this.baseUrl}`, {}, options.responseTimeoutMs);
    this.reachability = new ReachabilityLog(this.id, 'Ollama server', options.logger, options.optional);
  }

  /** An optional host is there only once its listing has answered, and until one fails. */
  get absent(): boolean {
    return this.options.optional === true && !this.answered;
  }

  async listModels(): Promise<ModelInfo[]> {
    if (this.options.optional && Date.now() < this.absentUntil) return [];
    let tags: { models?: OllamaModel[] };
    let ps: { models?: OllamaModel[] } | undefined;
    try {
      [tags, ps] = await Promise.all([
        this.upstream.json<{ models?: OllamaModel[] }>('/api/tags'),
        // Older servers lack /api/ps; the loaded state is then unknown rather than an error.
        this.upstream.json<{ models?: OllamaModel[] }>('/api/ps').catch(() => undefined),
      ]);
    } catch (error) {
      this.reachability.note(false, error);
      this.answered = false;
      if (this.options.optional && error instanceof BackendError && error.retryable) {
        this.absentUntil = Date.now() + (this.options.absentRetryMs ?? 30_000);
        return [];
      }
      throw error;
    }
    this.reachability.note(true);
    this.answered = true;
    const running = new Map((ps?.models ?? []).map((m) => [m.name, m]));
    const models = tags.models ?? [];
    const shown = await Promise.all(models.map((m) => this.show(m)));
    return models.map((m, i) => {
      const live = running.get(m.name);
      return {
        ...shown[i],
        name: normaliseModelName(m.name),
        family: m.details?.family || undefined,
        families: m.details?.families ?? undefined,
        format: m.details?.format || undefined,
        parameterSize: m.details?.parameter_size || undefined,
        quantization: m.details?.quantization_level || undefined,
        sizeBytes: m.size,
        digest: m.digest,
        modifiedAt: m.modified_at,
        loaded: ps === undefined ? undefined : live !== undefined,
        loadedSizeBytes: live?.size,
        expiresAt: live?.expires_at,
      };
    });
  }

  /**
   * What only /api/show tells (context size, GGUF metadata, capabilities, template), asked once per
   * model version: the digest changes when the model does, so listings every few seconds cost nothing.
   */
  private async show(model: OllamaModel): Promise<Partial<ModelInfo>> {
    const key = `${model.name}@${model.digest ?? model.modified_at ?? ''}`;
    const cached = this.shown.get(key);
    if (cached) return cached;
    const info = await this.upstream
      .json<{ template?: string; model_info?: Record<string, unknown>; capabilities?: string[] }>('/api/show', { method: 'POST', body: { model: model.name } })
      .then((shown): Partial<ModelInfo> => {
        const metadata = shown?.model_info ?? {};
        const architecture = metadata['general.architecture'];
        const context = typeof architecture === 'string' ? metadata[`${architecture}.context_length`] : undefined;
        return {
          template: shown?.template || undefined,
          modelInfo: shown?.model_info,
          capabilities: shown?.capabilities,
          contextSize: typeof context === 'number' ? context : undefined,
        };
      })
      // A model /api/show cannot describe is still listed, with what /api/tags said; asked again next time.
      .catch(() => undefined);
    if (!info) return {};
    if (this.shown.size > 1_000) this.shown.clear();
    this.shown.set(key, info);
    return info;
  }

  chat(request: ChatRequest): AsyncIterable<GenerationEvent> {
    const body = {
      model: request.model,
      messages: request.messages.map(wireMessage),
      stream: true,
      options: ollamaOptions(request.options),
      format: request.format,
      tools: request.tools?.length ? request.tools : undefined,
      think: request.think,
      truncate: request.truncate,
      ...logprobsFields(request.logprobs),
      keep_alive: keepAliveValue(request.keepAliveMs),
    };
    return generationStream(this.upstream, '/api/chat', body, request.signal, 'application/x-ndjson', ollamaPieces);
  }

  complete(request: CompletionRequest): AsyncIterable<GenerationEvent> {
    const body = {
      model: request.model,
      prompt: request.prompt,
      raw: request.raw || undefined,
      system: request.system,
      suffix: request.suffix,
      stream: true,
      options: ollamaOptions(request.options),
      format: request.format,
      think: request.think,
      context: request.context,
      truncate: request.truncate,
      ...logprobsFields(request.logprobs),
      keep_alive: keepAliveValue(request.keepAliveMs),
    };
    return generationStream(this.upstream, '/api/generate', body, request.signal, 'application/x-ndjson', ollamaPieces);
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const result = await this.upstream.json<{ embeddings: number[][]; prompt_eval_count?: number; total_duration?: number; load_duration?: number }>(
      '/api/embed',
      {
        method: 'POST',
        body: { model: request.model, input: request.input, truncate: request.truncate, keep_alive: keepAliveValue(request.keepAliveMs) },
        signal: request.signal,
        // Embedding a batch may load the model first.
        timeoutMs: GENERATION_TIMEOUT_MS,
      },
    );
    if (!Array.isArray(result?.embeddings)) throw new BackendError(`Ollama at ${this.baseUrl} sent no embeddings`, 502, true);
    return {
      embeddings: result.embeddings,
      promptTokens: result.prompt_eval_count ?? 0,
      totalDurationNs: result.total_duration ?? 0,
      loadDurationNs: result.load_duration ?? 0,
    };
  }

  /** Ollama loads a model on an empty generate request and unloads it on one with keep_alive 0. */
  async load(model: string, keepAliveMs?: number): Promise<void> {
    await this.upstream.json('/api/generate', {
      method: 'POST',
      body: { model, stream: false, keep_alive: keepAliveValue(keepAliveMs) },
      timeoutMs: GENERATION_TIMEOUT_MS,
    });
  }

  async unload(model: string): Promise<void> {
    await this.upstream.json('/api/generate', { method: 'POST', body: { model, stream: false, keep_alive: 0 } });
  }

  /**
   * Ollama pulls registry names (`llama3.2:1b`); its progress lines are passed on as they come. When a
   * different local name is wanted, the pulled model is copied to it and the original name removed.
   */
  async *pull(source: string, name: string | undefined, signal: AbortSignal): AsyncIterable<PullProgress> {
    const response = await this.upstream.request('/api/pull', { method: 'POST', body: { model: source, stream: true }, signal, accept: 'application/x-ndjson', timeoutMs: METADATA_TIMEOUT_MS * 6 });
    let succeeded = false;
    try {
      await this.upstream.ensureOk(response);
      for await (const lines of ndjsonBatches<PullProgress & { error?: string }>(response)) {
        for (const line of lines) {
          if (line.error !== undefined) throw new BackendError(line.error, 502);
          if (line.status === 'success') succeeded = true;
          else yield { status: line.status, digest: line.digest, total: line.total, completed: line.completed };
        }
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof BackendError) throw error;
      throw new BackendError(`pull from Ollama at ${this.baseUrl} broke off: ${(error as Error).message}`, 502);
    } finally {
      if (!response.complete) response.destroy();
    }
    if (!succeeded) throw new BackendError(`pull from Ollama at ${this.baseUrl} ended without success`, 502);
    if (name && normaliseModelName(name) !== normaliseModelName(source)) {
      yield { status: `copying to ${name}` };
      await this.copy(source, name);
      await this.delete(source);
    }
  }

  async delete(model: string): Promise<void> {
    await this.upstream.json('/api/delete', { method: 'DELETE', body: { model } });
  }

  async copy(source: string, destination: string): Promise<void> {
    await this.upstream.json('/api/copy', { method: 'POST', body: { source, destination } });
  }

  ping(): Promise<boolean> {
    return this.upstream.alive('/api/version', this.reachability);
  }

  async close(): Promise<void> {
    this.upstream.close();
  }
}
