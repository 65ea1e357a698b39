import type { Readable } from 'node:stream';
import {
  BackendError,
  type ServerAnswer,
  type ChatRequest,
  type RelayRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type ModelInfo,
  type ModelProvider,
  type StreamPart,
} from '../provider.js';
import { GENERATION_TIMEOUT_MS, ReachabilityLog, Upstream, generationStream, sseBatches, type BackendLogger, type UpstreamPart } from '../http-stream.js';
import { OpenAiStreamState, fromOpenAiChunk, fromOpenAiModels, fromOpenAiStreamEnd, openAiClientError } from './from-openai.js';
import { toOpenAiChat, toOpenAiCompletion } from './to-openai.js';
import type { OpenAiChunk, OpenAiEmbeddings, OpenAiModelList } from './wire.js';

/**
 * The base URL as the OpenAI SDK takes it: a bare server (`http://host:8000`) gets `/v1`, a URL with a
 * path (`https://host/openai/v1`) is used as given.
 */
function apiBase(url: string): string {
  const parsed = new URL(url);
  return parsed.pathname === '/' || parsed.pathname === '' ? `${url.replace(/\/+$/, '')}/v1` : url.replace(/\/+$/, '');
}

/** Reads chat or completion events; what only the end completes (tool calls, the finish) comes last. */
export async function* openAiParts(body: Readable): AsyncGenerator<UpstreamPart[]> {
  const state = new OpenAiStreamState();
  for await (const events of sseBatches(body)) {
    const parts: UpstreamPart[] = [];
    for (const data of events) {
      const read = fromOpenAiChunk(JSON.parse(data) as OpenAiChunk, state);
      parts.push(...read);
      if (read[0]?.type === 'error') break;
    }
    if (parts.length > 0) yield parts;
  }
  const end = fromOpenAiStreamEnd(state);
  if (end.length > 0) yield end;
}

export interface OpenAICompatibleOptions {
  apiKey?: string;
  logger?: BackendLogger;
  /** How long a generation may wait for the server's first answer before another replica is tried. */
  responseTimeoutMs?: number;
}

/**
 * One OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, another gateway). A tagless model
 * id is listed as `name:latest` (a client may still use the bare name, which the router resolves to
 * it) and the server's own id is sent upstream. That also merges an Ollama host's `llama3:latest`
 * with the same model behind an OpenAI-compatible URL into one model with two replicas. Loading is the
 * server's business and pull, delete and copy are not part of the API: those abilities are absent.
 */
export class OpenAICompatibleBackend implements ModelProvider {
  readonly id: string;
  readonly baseUrl: string;
  protected readonly upstream: Upstream;
  /** Our `name:tag` → the id the server listed. */
  private readonly ids = new Map<string, string>();
  private readonly reachability: ReachabilityLog;

  constructor(
    baseUrl: string,
    options: OpenAICompatibleOptions = {},
    /** The id's first part: a server that adds to this API (llama.cpp's llama-server) names itself. */
    name = 'openai',
  ) {
    this.baseUrl = apiBase(baseUrl);
    this.id = `${name}:${this.baseUrl}`;
    // The key goes in a header only: ids, labels and errors name the URL, never the key.
    this.upstream = new Upstream(this.baseUrl, `OpenAI-compatible server at ${this.baseUrl}`, options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}, options.responseTimeoutMs, openAiClientError);
    this.reachability = new ReachabilityLog(this.id, 'OpenAI-compatible server', options.logger);
  }

  protected upstreamId(model: string): string {
    return this.ids.get(model) ?? model;
  }

  async listModels(): Promise<ModelInfo[]> {
    // A wrong API key (401) hides every model of the server: it is logged like an unreachable server.
    const result = await this.upstream.json<OpenAiModelList>('/models').catch((error: unknown) => {
      this.reachability.note(false, error);
      throw error;
    });
    this.reachability.note(true);
    this.ids.clear();
    return fromOpenAiModels(result, this.id, this.ids);
  }

  chat(request: ChatRequest): AsyncIterable<StreamPart> {
    return generationStream(this.upstream, '/chat/completions', toOpenAiChat(request, this.upstreamId(request.model)), request.signal, 'text/event-stream', openAiParts);
  }

  complete(request: CompletionRequest): AsyncIterable<StreamPart> {
    return generationStream(this.upstream, '/completions', toOpenAiCompletion(request, this.upstreamId(request.model)), request.signal, 'text/event-stream', openAiParts);
  }

  async relayOpenAi({ endpoint, model, body, signal }: RelayRequest): Promise<ServerAnswer> {
    const answer = await this.upstream.request(endpoint === 'chat' ? '/chat/completions' : '/completions', {
      method: 'POST',
      body: { ...body, model: this.upstreamId(model) },
      signal,
      accept: body.stream === true ? 'text/event-stream' : 'application/json',
    });
    // The server's own 4xx is about the client's request and is its answer; its 5xx, or a refusal of
    // the gateway's key, is the gateway's trouble (ensureOk throws those as retryable).
    const { status } = answer;
    if (status >= 500 || status === 401 || status === 403) await this.upstream.ensureOk(answer);
    return answer;
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const started = process.hrtime.bigint();
    const result = await this.upstream.json<OpenAiEmbeddings>('/embeddings', {
      method: 'POST',
      body: { model: this.upstreamId(request.model), input: request.input },
      signal: request.signal,
      timeoutMs: GENERATION_TIMEOUT_MS,
    });
    if (!Array.isArray(result?.data)) throw new BackendError(`${this.upstream.label} sent no embeddings`, 502, true);
    const ordered = [...result.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    return {
      embeddings: ordered.map((entry) => entry.embedding),
      promptTokens: result.usage?.prompt_tokens ?? 0,
      totalDurationNs: Number(process.hrtime.bigint() - started),
      loadDurationNs: 0,
    };
  }

  ping(): Promise<boolean> {
    return this.upstream.alive('/models', this.reachability);
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}

/** The servers of OPENAI_BACKENDS (`url` or `url|key`, comma-separated). */
export function openAiProviders(settings: { openaiBackends: { baseUrl: string; apiKey?: string }[] }, logger?: BackendLogger): ModelProvider[] {
  return settings.openaiBackends.map(({ baseUrl, apiKey }) => new OpenAICompatibleBackend(baseUrl, { apiKey, logger }));
}
