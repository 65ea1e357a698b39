import type { Readable } from 'node:stream';
import {
  BackendError,
  type ChatRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type ModelInfo,
  type ModelProvider,
  type ProviderCapabilities,
  type PullProgress,
  type StreamPart,
} from '../provider.js';
import { GENERATION_TIMEOUT_MS, METADATA_TIMEOUT_MS, ReachabilityLog, Upstream, generationStream, ndjsonBatches, type BackendLogger, type UpstreamPart } from '../http-stream.js';
import { normaliseModelName } from '../../shared/model-names.js';
import { fromOllamaChunk, fromOllamaModel, fromOllamaShow, ollamaClientError } from './from-ollama.js';
import { keepAliveValue, toOllamaChat, toOllamaEmbed, toOllamaGenerate } from './to-ollama.js';
import type { OllamaChunk, OllamaEmbedResponse, OllamaModel, OllamaPullLine, OllamaShow } from './wire.js';

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

async function* ollamaParts(body: Readable): AsyncGenerator<UpstreamPart[]> {
  for await (const chunks of ndjsonBatches<OllamaChunk>(body)) yield chunks.flatMap(fromOllamaChunk);
}

/**
 * One Ollama server, driven over its HTTP API. Model names are Ollama's own (`name:tag`), so a model
 * several hosts serve merges into one routed model with several replicas.
 */
export class OllamaBackend implements ModelProvider {
  readonly id: string;
  /** Ollama keeps pulled models in its own store, and pulls registry names only. */
  readonly capabilities: ProviderCapabilities = { pulls: { registryNames: true, files: false, storesLocally: false } };
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
    this.upstream = new Upstream(this.baseUrl, `Ollama at ${this.baseUrl}`, {}, options.responseTimeoutMs, ollamaClientError);
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
    return models.map((m, i) => fromOllamaModel(m, shown[i]!, running.get(m.name), ps !== undefined));
  }

  /**
   * What only /api/show tells, asked once per model version: the digest changes when the model does,
   * so listings every few seconds cost nothing.
   */
  private async show(model: OllamaModel): Promise<Partial<ModelInfo>> {
    const key = `${model.name}@${model.digest ?? model.modified_at ?? ''}`;
    const cached = this.shown.get(key);
    if (cached) return cached;
    const info = await this.upstream
      .json<OllamaShow>('/api/show', { method: 'POST', body: { model: model.name } })
      .then(fromOllamaShow)
      // A model /api/show cannot describe is still listed, with what /api/tags said; asked again next time.
      .catch(() => undefined);
    if (!info) return {};
    if (this.shown.size > 1_000) this.shown.clear();
    this.shown.set(key, info);
    return info;
  }

  chat(request: ChatRequest): AsyncIterable<StreamPart> {
    return generationStream(this.upstream, '/api/chat', toOllamaChat(request), request.signal, 'application/x-ndjson', ollamaParts);
  }

  complete(request: CompletionRequest): AsyncIterable<StreamPart> {
    return generationStream(this.upstream, '/api/generate', toOllamaGenerate(request), request.signal, 'application/x-ndjson', ollamaParts);
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const result = await this.upstream.json<OllamaEmbedResponse>('/api/embed', {
      method: 'POST',
      body: toOllamaEmbed(request),
      signal: request.signal,
      // Embedding a batch may load the model first.
      timeoutMs: GENERATION_TIMEOUT_MS,
    });
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
    const answer = await this.upstream.request('/api/pull', { method: 'POST', body: { model: source, stream: true }, signal, accept: 'application/x-ndjson', timeoutMs: METADATA_TIMEOUT_MS * 6 });
    let succeeded = false;
    try {
      await this.upstream.ensureOk(answer);
      for await (const lines of ndjsonBatches<OllamaPullLine>(answer.body)) {
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
      if (!answer.body.readableEnded) answer.body.destroy();
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

  close(): Promise<void> {
    return this.upstream.close();
  }
}

/**
 * The Ollama hosts of OLLAMA_HOSTS. With it unset, Ollama's default address is tried as an optional
 * host: used when it answers, silent and free when it does not. Set to an empty string, Ollama is off.
 */
export function ollamaProviders(settings: { ollamaHosts: string[]; ollamaHostsExplicit: boolean }, logger?: BackendLogger): ModelProvider[] {
  return settings.ollamaHosts.map((host) => new OllamaBackend(host, { optional: !settings.ollamaHostsExplicit, logger }));
}
