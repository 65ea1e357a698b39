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
  type OutputFormat,
  type TokenLogprob,
  type ToolCall,
} from './types.js';
import { GENERATION_TIMEOUT_MS, ReachabilityLog, Upstream, generationStream, sseBatches, type BackendLogger, type StreamPiece } from './http-stream.js';
import { nameDigest } from './digests.js';
import { logprobsFields } from './ollama.js';
import { normaliseModelName } from '../shared/model-names.js';

/** The part of OpenAI's streamed chunk shapes this backend reads (chat and legacy completions). */
interface OpenAiChunk {
  error?: { message?: string } | string;
  choices?: {
    index?: number;
    text?: string;
    delta?: {
      content?: string | null;
      /** Thoughts: `reasoning_content` (vLLM, DeepSeek) or `reasoning` (Ollama's /v1, OpenRouter). */
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    /** Chat's `{content: [...]}`, or the legacy completions' parallel arrays. */
    logprobs?: { content?: TokenLogprob[] | null; tokens?: string[]; token_logprobs?: number[]; top_logprobs?: Record<string, number>[] | null } | null;
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

/**
 * The base URL as the OpenAI SDK takes it: a bare server (`http://host:8000`) gets `/v1`, a URL with a
 * path (`https://host/openai/v1`) is used as given.
 */
export function apiBase(url: string): string {
  const parsed = new URL(url);
  return parsed.pathname === '/' || parsed.pathname === '' ? `${url.replace(/\/+$/, '')}/v1` : url.replace(/\/+$/, '');
}

/** Sampling settings in the request body; the non-OpenAI ones (top_k, min_p...) are what vLLM, llama.cpp and LM Studio accept. */
export function openAiSampling(options: GenerationOptions, format: OutputFormat | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {
    temperature: options.temperature,
    top_p: options.top_p,
    top_k: options.top_k,
    min_p: options.min_p,
    repeat_penalty: options.repeat_penalty,
    presence_penalty: options.presence_penalty,
    frequency_penalty: options.frequency_penalty,
    max_tokens: options.num_predict !== undefined && options.num_predict > 0 ? options.num_predict : undefined,
    seed: options.seed,
    stop: options.stop?.length ? options.stop : undefined,
  };
  if (format === 'json') body.response_format = { type: 'json_object' };
  else if (format) body.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format, strict: true } };
  return body;
}

function finishReason(reason: string | null | undefined): DoneReason {
  if (reason === 'length') return 'length';
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'stop';
}

/** Messages in OpenAI's form: tool arguments as JSON strings, tool results tied to the call they answer. */
export function openAiMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  const callIds = new Map<string, string>();
  let counter = 0;
  return messages.map((message) => {
    if (message.role === 'assistant' && message.tool_calls?.length) {
      return {
        role: 'assistant',
        content: message.content || null,
        tool_calls: message.tool_calls.map((call) => {
          const id = call.id ?? `call_${counter++}`;
          callIds.set(call.function.name, id);
          return { id, type: 'function', function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments) } };
        }),
      };
    }
    if (message.role === 'tool') {
      return { role: 'tool', content: message.content, tool_call_id: callIds.get(message.tool_name ?? '') ?? message.tool_name ?? 'call' };
    }
    if (message.images?.length) {
      return {
        role: message.role,
        content: [
          { type: 'text', text: message.content },
          ...message.images.map((image) => ({ type: 'image_url', image_url: { url: image.startsWith('data:') ? image : `data:image/png;base64,${image}` } })),
        ],
      };
    }
    return { role: message.role, content: message.content };
  });
}

/** Reads chat or completion chunks; tool-call arguments arrive in fragments and are joined per call. */
async function* openAiPieces(response: http.IncomingMessage): AsyncGenerator<StreamPiece[]> {
  const calls = new Map<number, { id?: string; name: string; arguments: string }>();
  let reason: string | null | undefined;
  let usage: OpenAiChunk['usage'];
  for await (const events of sseBatches(response)) {
    const pieces: StreamPiece[] = [];
    for (const data of events) {
      const chunk = JSON.parse(data) as OpenAiChunk;
      if (chunk.error !== undefined) {
        pieces.push({ error: typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'upstream error') });
        break;
      }
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      for (const call of choice.delta?.tool_calls ?? []) {
        const index = call.index ?? 0;
        const entry = calls.get(index) ?? { name: '', arguments: '' };
        if (call.id) entry.id = call.id;
        if (call.function?.name) entry.name += call.function.name;
        if (call.function?.arguments) entry.arguments += call.function.arguments;
        calls.set(index, entry);
      }
      if (choice.finish_reason) reason = choice.finish_reason;
      const thinking = choice.delta?.reasoning_content ?? choice.delta?.reasoning;
      if (thinking) pieces.push({ thinking });
      const text = choice.delta?.content ?? choice.text;
      const logprobs = logprobsOf(choice.logprobs);
      if (text || logprobs) pieces.push({ text: text ?? '', ...(logprobs ? { logprobs } : {}) });
    }
    if (pieces.length > 0) yield pieces;
  }
  if (reason === undefined && !usage) return; // no final chunk: the caller reports a broken stream
  const toolCalls: ToolCall[] = [...calls.values()].map((call) => ({
    id: call.id,
    function: { name: call.name, arguments: parseArguments(call.arguments) },
  }));
  yield [
    {
      toolCalls: toolCalls.length ? toolCalls : undefined,
      final: {
        promptTokens: usage?.prompt_tokens,
        completionTokens: usage?.completion_tokens,
        doneReason: finishReason(reason),
      },
    },
  ];
}

const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

/** A chunk's log-probabilities in the chat shape, whichever of OpenAI's two shapes the server sent. */
function logprobsOf(value: NonNullable<OpenAiChunk['choices']>[number]['logprobs']): TokenLogprob[] | undefined {
  if (!value) return undefined;
  if (Array.isArray(value.content)) return value.content.length > 0 ? value.content : undefined;
  if (!Array.isArray(value.tokens) || value.tokens.length === 0) return undefined;
  return value.tokens.map((token, i) => ({
    token,
    logprob: value.token_logprobs?.[i] ?? 0,
    bytes: bytesOf(token),
    top_logprobs: Object.entries(value.top_logprobs?.[i] ?? {}).map(([alt, logprob]) => ({ token: alt, logprob, bytes: bytesOf(alt) })),
  }));
}

function parseArguments(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text || '{}') as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  } catch {
    // A model that wrote broken JSON: keep what it wrote rather than lose the call.
    return { arguments: text };
  }
}

export interface OpenAICompatibleOptions {
  apiKey?: string;
  logger?: BackendLogger;
  /** How long a generation may wait for the server's first answer before another replica is tried. */
  responseTimeoutMs?: number;
}

/**
 * One OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, another gateway). Such servers
 * name models freely (`gpt-4o`, `Qwen/Qwen2.5-7B-Instruct`); SPEC rule 8 wants `name:tag`, so a name
 * without a tag is listed with `:latest` (a client may still use the bare name, which the router
 * resolves to it) and the server's own id is sent upstream. That also merges an Ollama host's
 * `llama3:latest` with the same model behind an OpenAI-compatible URL into one model with two replicas.
 * Loading is the server's business, so load and unload succeed without doing anything; pull, delete and
 * copy are not part of the API and are left out.
 */
export class OpenAICompatibleBackend implements Backend {
  readonly id: string;
  readonly kind = 'openai' as const;
  readonly baseUrl: string;
  private readonly upstream: Upstream;
  /** Our `name:tag` → the id the server listed. */
  private readonly ids = new Map<string, string>();
  private readonly reachability: ReachabilityLog;

  constructor(baseUrl: string, options: OpenAICompatibleOptions = {}) {
    this.baseUrl = apiBase(baseUrl);
    this.id = `openai:${this.baseUrl}`;
    // The key goes in a header only: ids, labels and errors name the URL, never the key.
    this.upstream = new Upstream(this.baseUrl, `OpenAI-compatible server at ${this.baseUrl}`, options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}, options.responseTimeoutMs);
    this.reachability = new ReachabilityLog(this.id, 'OpenAI-compatible server', options.logger);
  }

  private upstreamId(model: string): string {
    return this.ids.get(model) ?? model;
  }

  async listModels(): Promise<ModelInfo[]> {
    // A wrong API key (401) hides every model of the server: it is logged like an unreachable server.
    const result = await this.upstream.json<{ data?: { id: string; created?: number }[] }>('/models').catch((error: unknown) => {
      this.reachability.note(false, error);
      throw error;
    });
    this.reachability.note(true);
    this.ids.clear();
    return (result?.data ?? []).map((entry) => {
      const name = normaliseModelName(entry.id);
      this.ids.set(name, entry.id);
      return {
        name,
        modifiedAt: entry.created ? new Date(entry.created * 1000).toISOString() : undefined,
        digest: nameDigest(this.id, entry.id),
      };
    });
  }

  chat(request: ChatRequest): AsyncIterable<GenerationEvent> {
    const body = {
      model: this.upstreamId(request.model),
      messages: openAiMessages(request.messages),
      stream: true,
      stream_options: { include_usage: true },
      ...openAiSampling(request.options, request.format),
      tools: request.tools?.length ? request.tools : undefined,
      tool_choice: request.tools?.length ? request.toolChoice : undefined,
      // Only an effort level has an OpenAI spelling; on/off is the server's own choice there.
      reasoning_effort: typeof request.think === 'string' ? request.think : undefined,
      ...logprobsFields(request.logprobs),
    };
    return generationStream(this.upstream, '/chat/completions', body, request.signal, 'text/event-stream', openAiPieces);
  }

  complete(request: CompletionRequest): AsyncIterable<GenerationEvent> {
    // The legacy completions API has no system prompt; it goes before the prompt as the engine does it.
    const prompt = !request.raw && request.system ? `${request.system}\n\n${request.prompt}` : request.prompt;
    const body = {
      model: this.upstreamId(request.model),
      prompt,
      suffix: request.suffix,
      stream: true,
      stream_options: { include_usage: true },
      ...openAiSampling(request.options, request.format),
      // The legacy API's spelling: the number of alternatives (0 for the chosen tokens' own only).
      logprobs: request.logprobs,
    };
    return generationStream(this.upstream, '/completions', body, request.signal, 'text/event-stream', openAiPieces);
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const started = process.hrtime.bigint();
    const result = await this.upstream.json<{ data?: { embedding: number[]; index?: number }[]; usage?: { prompt_tokens?: number } }>('/embeddings', {
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

  async load(): Promise<void> {}

  async unload(): Promise<void> {}

  ping(): Promise<boolean> {
    return this.upstream.alive('/models', this.reachability);
  }

  async close(): Promise<void> {
    this.upstream.close();
  }
}
