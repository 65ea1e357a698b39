import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  GeneralChatWrapper,
  LlamaChat,
  LlamaCompletion,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
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
  type TokenLogprob,
  type OutputFormat,
  type PullProgress,
  type ToolCall,
} from '../types.js';
import { PushStream } from '../../shared/push-stream.js';
import { withModelDefaults } from '../model-defaults.js';
import { contextOverflow, fitMessages, promptLimit, truncateTokens } from '../truncate-prompt.js';
import { GgufCatalog, fileNameForModel, isSafeModelName, type GgufEntry } from './gguf-catalog.js';
import { downloadModelFile } from './download.js';
import { boundMessages, couldFit, fewestTokens, prefixHolding, suffixHolding } from './input-bound.js';
import { generateWithLogprobs } from './logprobs.js';
import { DEFAULT_REGISTRY, fetchModelLayer, parseRegistryName } from './ollama-registry.js';
import { PullPolicy } from './pull-policy.js';
import { sweepPartials } from './partial-files.js';
import { LlamaStart, type LlamaLoader } from './llama-start.js';

export interface EmbeddedEngineOptions {
  modelsDir: string;
  threads: number;
  /** Sequences per context: requests that generate on one model at the same time. */
  parallel: number;
  keepAliveMs: number;
  /** Context per sequence when the request does not say (capped by the model's training context). */
  defaultContextSize?: number;
  /** The Ollama registry that names without a host are pulled from (OLLAMA_REGISTRY). */
  registryUrl?: string;
  /** Which hosts pulls may connect to (PULL_ALLOW_HOSTS); by default the built-in refusals only. */
  pullPolicy?: PullPolicy;
  /** Loads llama.cpp's binding (node-llama-cpp's getLlama, once per process); tests pass one that fails. */
  loadLlama?: LlamaLoader;
}

/** A model in memory with its shared context; sequences are handed out one per running request. */
interface LoadedModel {
  entry: GgufEntry;
  model: LlamaModel;
  context: LlamaContext;
  contextSizePerSequence: number;
  chatWrapper: ChatWrapper;
  embedding?: Promise<LlamaEmbeddingContext>;
  active: number;
  /** Waiters for a free sequence, in arrival order. */
  queue: (() => void)[];
  keepAliveMs: number;
  unloadTimer?: NodeJS.Timeout;
  expiresAt?: Date;
  loadedAt: number;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

/**
 * Runs GGUF models in-process with llama.cpp (node-llama-cpp's prebuilt CPU binaries). Models load on
 * first use, stay for a keep-alive time after their last request and are unloaded when idle. One
 * context per model holds `parallel` sequences, so concurrent requests are batched by llama.cpp in the
 * same decode rather than queued behind each other.
 */
/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Go's largest duration (math.MaxInt64 ns, about 292 years) in ms: Ollama's "forever". */
const FOREVER_MS = 9_223_372_036_854;

/**
 * The sampler's seed: llama.cpp takes 32 bits, so larger seeds wrap. With none we draw one, since
 * node-llama-cpp's own fallback is the current second: two "random" requests in one second would
 * otherwise answer alike.
 */
function samplingSeed(seed: number | undefined): number {
  return seed === undefined ? crypto.randomInt(0xffffffff) : seed >>> 0;
}

/** When a model with this keep-alive would unload if it went idle now ("Forever" as Ollama writes it). */
function expiryOf(keepAliveMs: number): Date {
  return new Date(Date.now() + (keepAliveMs < 0 ? FOREVER_MS : keepAliveMs));
}

export class EmbeddedEngine implements Backend {
  readonly id = 'embedded';
  readonly kind = 'embedded' as const;
  private readonly catalog: GgufCatalog;
  private readonly llamaStart: LlamaStart;
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private readonly changeListeners: (() => void)[] = [];
  /** The abort controller of every generation running, and who waits for the last request to let go. */
  private readonly inFlight = new Set<AbortController>();
  private idleWaiters: (() => void)[] = [];
  /** Tokens generated since start, and generations currently running: observable state for tests. */
  readonly stats = { generated: 0, running: 0, aborted: 0 };

  /** Removes downloads a crash left half-written in the models directory. */
  private readonly partialSweep: { stop(): void };
  private readonly pullPolicy: PullPolicy;

  constructor(private readonly options: EmbeddedEngineOptions) {
    this.catalog = new GgufCatalog(options.modelsDir);
    this.pullPolicy = options.pullPolicy ?? new PullPolicy();
    this.partialSweep = sweepPartials(options.modelsDir);
    this.llamaStart = new LlamaStart(options.loadLlama);
  }

  /** Why the engine cannot run models now (llama.cpp failed to start, retrying), for the health report. */
  get unavailable(): string | undefined {
    return this.llamaStart.unavailable;
  }

  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  private llama(): Promise<Llama> {
    return this.llamaStart.get();
  }

  async listModels(): Promise<ModelInfo[]> {
    const entries = await this.catalog.list();
    return entries.map((entry) => {
      const live = this.loaded.get(entry.name);
      return {
        ...entry.info,
        loaded: live !== undefined,
        loadedSizeBytes: live ? live.model.size : undefined,
        expiresAt: live?.expiresAt?.toISOString(),
      };
    });
  }

  private async findEntry(name: string): Promise<GgufEntry> {
    const entries = await this.catalog.list();
    const entry = entries.find((e) => e.name === name);
    if (!entry) throw new BackendError(`model '${name}' not found`, 404);
    return entry;
  }

  private async acquireModel(name: string, keepAliveMs: number | undefined): Promise<LoadedModel> {
    let live = this.loaded.get(name);
    if (!live) {
      let pending = this.loading.get(name);
      if (!pending) {
        pending = this.loadModel(name).finally(() => this.loading.delete(name));
        this.loading.set(name, pending);
      }
      live = await pending;
    }
    // As in Ollama, each request's keep_alive (or the default when it gives none) replaces the last one.
    const keepAlive = keepAliveMs ?? this.options.keepAliveMs;
    if (live.keepAliveMs !== keepAlive) {
      live.keepAliveMs = keepAlive;
      this.changed(); // listings (/api/ps) show the new expiry at once
    }
    clearTimeout(live.unloadTimer);
    live.unloadTimer = undefined;
    // While in use, the time it would go if this request were the last (what Ollama's /api/ps shows).
    live.expiresAt = expiryOf(live.keepAliveMs);
    return live;
  }

  private async loadModel(name: string): Promise<LoadedModel> {
    const entry = await this.findEntry(name);
    const llama = await this.llama();
    const model = await llama.loadModel({ modelPath: entry.filePath });
    const trained = model.trainContextSize;
    const contextSizePerSequence = Math.min(trained, this.options.defaultContextSize ?? 4096);
    let context: LlamaContext;
    try {
      context = await model.createContext({
        sequences: this.options.parallel,
        contextSize: contextSizePerSequence * this.options.parallel,
        threads: this.options.threads,
      });
    } catch (error) {
      await model.dispose();
      throw error;
    }
    const chatWrapper = entry.hasChatTemplate
      ? (resolveChatWrapper({
          bosString: model.tokens.bosString,
          filename: model.filename,
          fileInfo: model.fileInfo,
          tokenizer: model.tokenizer,
        }) ?? new GeneralChatWrapper())
      : // No template in the file: a plain "### User / ### Assistant" format every base model can follow.
        new GeneralChatWrapper();
    const live: LoadedModel = {
      entry,
      model,
      context,
      contextSizePerSequence: context.contextSize / this.options.parallel,
      chatWrapper,
      active: 0,
      queue: [],
      keepAliveMs: this.options.keepAliveMs,
      loadedAt: Date.now(),
    };
    this.loaded.set(name, live);
    this.changed();
    return live;
  }

  private async acquireSequence(live: LoadedModel, signal: AbortSignal): Promise<LlamaContextSequence> {
    while (live.context.sequencesLeft === 0) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          live.queue.splice(live.queue.indexOf(wake), 1);
          reject(signal.reason);
        };
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        live.queue.push(wake);
      });
    }
    return live.context.getSequence();
  }

  private release(live: LoadedModel, sequence: LlamaContextSequence | undefined): void {
    const next = () => {
      live.active--;
      live.queue.shift()?.();
      if (live.active === 0) this.scheduleUnload(live);
      if (this.busy() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
    if (sequence && !sequence.disposed) void sequence.dispose().catch(() => undefined).finally(next);
    else next();
  }

  private scheduleUnload(live: LoadedModel): void {
    live.expiresAt = expiryOf(live.keepAliveMs);
    if (live.keepAliveMs < 0) return; // negative: stay loaded forever, as in Ollama
    if (live.keepAliveMs === 0) {
      void this.unload(live.entry.name);
      return;
    }
    this.unloadAt(live, live.expiresAt.getTime());
  }

  /** Node fires any timer longer than ~24.8 days at once, so a longer keep_alive waits in steps. */
  private unloadAt(live: LoadedModel, at: number): void {
    const wait = at - Date.now();
    live.unloadTimer = setTimeout(() => (wait > MAX_TIMER_MS ? this.unloadAt(live, at) : void this.unload(live.entry.name)), Math.min(wait, MAX_TIMER_MS));
    live.unloadTimer.unref();
  }

  /**
   * Refuses, with the error a generation would give, a prompt of `length` code units that cannot fit
   * the model's context by its length alone; callers that do costly work with a prompt before they
   * generate (saving it, fanning it out) ask first. Loads the model as a request to it would.
   */
  async checkPromptLength(model: string, length: number): Promise<void> {
    const live = await this.acquireModel(model, undefined);
    if (live.active === 0) this.scheduleUnload(live);
    if (!couldFit(live.model, length, live.contextSizePerSequence)) {
      throw contextOverflow(fewestTokens(live.model, length), live.contextSizePerSequence, model, true);
    }
  }

  async load(model: string, keepAliveMs?: number): Promise<void> {
    const live = await this.acquireModel(model, keepAliveMs);
    if (live.active === 0) this.scheduleUnload(live);
  }

  async unload(model: string): Promise<void> {
    const pending = this.loading.get(model);
    if (pending) await pending.catch(() => undefined);
    const live = this.loaded.get(model);
    if (!live) return;
    if (live.active > 0) {
      // Requests still running keep the model; it goes as soon as they end.
      live.keepAliveMs = 0;
      return;
    }
    this.loaded.delete(model);
    this.changed();
    clearTimeout(live.unloadTimer);
    const embedding = await live.embedding?.catch(() => undefined);
    await embedding?.dispose();
    await live.context.dispose();
    await live.model.dispose();
  }

  /** The model names currently in memory. */
  loadedModels(): string[] {
    return [...this.loaded.keys()];
  }

  private async grammarFor(format: OutputFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (format === undefined) return undefined;
    const llama = await this.llama();
    if (format === 'json') return llama.getGrammarFor('json');
    try {
      return await llama.createGrammarForJsonSchema(format as never);
    } catch (error) {
      throw new BackendError(`invalid format schema: ${(error as Error).message}`, 400);
    }
  }

  chat(request: ChatRequest): AsyncIterable<GenerationEvent> {
    if (request.logprobs !== undefined && (request.tools?.length || request.format !== undefined)) return refuseLogprobs();
    const length = request.messages.reduce((sum, message) => sum + message.content.length, 0);
    return this.generate(request, length, async (live, sequence, common, options, _generated, emit) => {
      const count = (messages: ChatMessage[]) =>
        live.chatWrapper
          .generateContextState({ chatHistory: [...toChatHistory(messages), { type: 'model', response: [] }] })
          .contextText.tokenize(live.model.tokenizer).length;
      const limit = promptLimit(live.contextSizePerSequence, options.num_predict);
      // What truncation would drop anyway is left out by length first, so that no more is tokenised
      // than the context can hold (an 8 MB message costs microseconds, not seconds of a blocked loop).
      let messages = request.truncate === false ? request.messages : boundMessages(live.model, request.messages, limit);
      let promptTokens = count(messages);
      if (promptTokens > limit && request.truncate !== false) {
        ({ messages, count: promptTokens } = fitMessages(messages, limit, {
          count,
          tokenize: (text) => live.model.tokenize(text, false),
          detokenize: (tokens) => live.model.detokenize(tokens),
        }));
      }
      const history = toChatHistory(messages);
      if (request.logprobs !== undefined) {
        const tokens = live.chatWrapper
          .generateContextState({ chatHistory: [...history, { type: 'model', response: [] }] })
          .contextText.tokenize(live.model.tokenizer);
        const generationOptions = common(tokens.length);
        if (generationOptions.maxTokens === 0) return { promptTokens: tokens.length, stopReason: 'maxTokens' };
        const result = await generateWithLogprobs(live.model, sequence, tokens, generationOptions, request.logprobs, emit);
        return { promptTokens: tokens.length, stopReason: result.stopReason };
      }
      const functions = request.tools?.length
        ? (Object.fromEntries(
            request.tools.map((tool) => [
              tool.function.name,
              { description: tool.function.description, params: tool.function.parameters },
            ]),
          ) as ChatModelFunctions)
        : undefined;
      const generationOptions = common(promptTokens);
      if (generationOptions.maxTokens === 0) return { promptTokens, stopReason: 'maxTokens' };
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: live.chatWrapper, autoDisposeSequence: false });
      try {
        // llama.cpp takes one grammar at a time: tool calling brings its own, so `format` yields to it.
        const result = await chat.generateResponse(
          [...history, { type: 'model', response: [] }],
          functions ? { ...generationOptions, grammar: undefined, functions } : { ...generationOptions, functions: undefined },
        );
        const toolCalls: ToolCall[] | undefined = result.functionCalls?.map((call) => ({
          function: { name: call.functionName, arguments: (call.params ?? {}) as Record<string, unknown> },
        }));
        return {
          promptTokens,
          stopReason: toolCalls?.length ? 'functionCalls' : result.metadata.stopReason,
          toolCalls,
        };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
  }

  complete(request: CompletionRequest): AsyncIterable<GenerationEvent> {
    if (request.logprobs !== undefined && request.format !== undefined) return refuseLogprobs();
    const promptLength = request.prompt.length + (request.raw ? 0 : (request.system?.length ?? 0));
    return this.generate(request, promptLength, async (live, sequence, common, options, generatedTokens, emit) => {
      const bos = live.model.tokens.bos !== null ? [live.model.tokens.bos] : [];
      // The system prompt is kept whole when the prompt is cut, as the beginning-of-text token is.
      const system = !request.raw && request.system ? live.model.tokenize(`${request.system}\n\n`, false) : [];
      const keep = Math.max(bos.length + system.length, numKeep(options));
      const limit = promptLimit(live.contextSizePerSequence, options.num_predict);
      // Only the end of an over-long prompt can survive truncation: the rest is not even tokenised.
      const text = request.truncate === false ? request.prompt : suffixHolding(live.model, request.prompt, limit);
      const all = [...bos, ...system, ...validTokens(live.model, request.context), ...live.model.tokenize(text, false)];
      const input = all.length > limit && request.truncate !== false ? truncateTokens(all, limit, keep) : all;
      const generationOptions = common(input.length);
      // Ollama's `context`: the prompt and the answer as token ids, without the beginning-of-text token.
      const contextOf = () => [...input.slice(bos.length), ...generatedTokens].map(Number);
      if (generationOptions.maxTokens === 0) return { promptTokens: input.length, stopReason: 'maxTokens', context: contextOf() };
      if (request.logprobs !== undefined) {
        const result = await generateWithLogprobs(live.model, sequence, input, generationOptions, request.logprobs, emit);
        return { promptTokens: input.length, stopReason: result.stopReason, context: contextOf() };
      }
      const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
      try {
        const result = await completion.generateCompletionWithMeta(input, generationOptions);
        return { promptTokens: input.length, stopReason: result.metadata.stopReason, context: contextOf() };
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
  }

  /**
   * The part chat and completion share: model and sequence acquisition, option mapping, streaming the
   * text through a PushStream, timing in Ollama's units, and cleanup whether the consumer finishes,
   * stops reading or aborts.
   */
  private async *generate(
    request: Pick<ChatRequest, 'model' | 'options' | 'format' | 'keepAliveMs' | 'onPromptTokens' | 'signal' | 'truncate'>,
    /** The prompt's text length in UTF-16 code units, for the check that needs no tokenising. */
    promptLength: number,
    run: (
      live: LoadedModel,
      sequence: LlamaContextSequence,
      common: (promptTokens: number) => CommonGenerationOptions,
      /** The request's options with the model's and Ollama's defaults filled in. */
      options: GenerationOptions,
      /** The answer's token ids so far (complete once `run` resolves). */
      generatedTokens: Token[],
      /** Sends text with its tokens' log-probabilities (generations that asked for them). */
      emit: (text: string, logprobs: TokenLogprob[]) => void,
    ) => Promise<{ promptTokens: number; stopReason: string; toolCalls?: ToolCall[]; context?: number[] }>,
  ): AsyncGenerator<GenerationEvent> {
    const started = nowNs();
    const abort = new AbortController();
    const onAbort = () => abort.abort(request.signal.reason);
    if (request.signal.aborted) return;
    request.signal.addEventListener('abort', onAbort, { once: true });
    const grammar = await this.grammarFor(request.format);
    const wasLoaded = this.loaded.has(request.model);
    const live = await this.acquireModel(request.model, request.keepAliveMs);
    live.active++;
    const loadDurationNs = wasLoaded ? 0 : Number(nowNs() - started);
    const overflow = (tokens: number, atLeast: boolean) => contextOverflow(tokens, live.contextSizePerSequence, request.model, atLeast);
    let sequence: LlamaContextSequence | undefined;
    const stream = new PushStream<{ text: string; logprobs?: TokenLogprob[] }>();
    let firstTokenAt: bigint | undefined;
    let generated = 0;
    let running: Promise<unknown> | undefined;
    let finished = false;
    this.stats.running++;
    this.inFlight.add(abort);
    try {
      // Before queueing for a sequence and before tokenising: a prompt too long by its length alone is
      // refused at once when the client asked for no truncation (else the run cuts it by length first).
      if (request.truncate === false && !couldFit(live.model, promptLength, live.contextSizePerSequence)) {
        throw overflow(fewestTokens(live.model, promptLength), true);
      }
      sequence = await this.acquireSequence(live, abort.signal);
      const options = withModelDefaults(request.options, live.entry.info.modelInfo);
      const generatedTokens: Token[] = [];
      const common = (promptTokens: number): CommonGenerationOptions => {
        request.onPromptTokens?.(promptTokens);
        const room = Math.max(1, live.contextSizePerSequence - promptTokens);
        if (promptTokens >= live.contextSizePerSequence) throw overflow(promptTokens, false);
        const wanted = options.num_predict === undefined || options.num_predict < 0 ? room : options.num_predict;
        return {
          signal: abort.signal,
          stopOnAbortSignal: true,
          maxTokens: Math.min(wanted, room),
          temperature: options.temperature,
          topK: options.top_k,
          topP: options.top_p,
          minP: options.min_p,
          seed: samplingSeed(options.seed),
          repeatPenalty:
            options.repeat_penalty !== undefined ||
            options.presence_penalty !== undefined ||
            options.frequency_penalty !== undefined
              ? {
                  penalty: options.repeat_penalty,
                  presencePenalty: options.presence_penalty,
                  frequencyPenalty: options.frequency_penalty,
                  lastTokens: options.repeat_last_n !== undefined && options.repeat_last_n > 0 ? options.repeat_last_n : undefined,
                }
              : undefined,
          customStopTriggers: options.stop?.filter((s) => s.length > 0),
          grammar,
          onTextChunk: (text: string) => {
            if (text === '') return;
            firstTokenAt ??= nowNs();
            stream.push({ text });
          },
          onToken: (tokens: Token[]) => {
            generatedTokens.push(...tokens);
            generated += tokens.length;
            this.stats.generated += tokens.length;
          },
        };
      };
      const emit = (text: string, logprobs: TokenLogprob[]) => {
        if (text === '' && logprobs.length === 0) return;
        firstTokenAt ??= nowNs();
        stream.push({ text, logprobs });
      };
      const generation = run(live, sequence, common, options, generatedTokens, emit).then(
        (result) => {
          stream.end();
          return result;
        },
        (error: unknown) => {
          stream.end(error);
          throw error;
        },
      );
      running = generation.catch(() => undefined); // errors surface through the stream
      for await (const piece of stream) yield { type: 'token', text: piece.text, ...(piece.logprobs ? { logprobs: piece.logprobs } : {}) };
      const result = await generation;
      finished = true;
      const end = nowNs();
      const evalStart = firstTokenAt ?? end;
      if (abort.signal.aborted) this.stats.aborted++;
      yield {
        type: 'done',
        stats: {
          promptTokens: result.promptTokens,
          completionTokens: generated,
          loadDurationNs,
          promptEvalDurationNs: Math.max(0, Number(evalStart - started) - loadDurationNs),
          evalDurationNs: Number(end - evalStart),
          totalDurationNs: Number(end - started),
          doneReason: mapStopReason(result.stopReason, abort.signal.aborted),
          toolCalls: result.toolCalls,
          ...(result.context ? { context: result.context } : {}),
        },
      };
    } finally {
      // Runs on normal end, on error, and when the consumer stops iterating (client disconnected):
      // then the generation is stopped at once and its sequence freed only after llama.cpp let go.
      if (!finished && !abort.signal.aborted) {
        abort.abort(new Error('consumer stopped'));
        this.stats.aborted++;
      }
      await running;
      request.signal.removeEventListener('abort', onAbort);
      this.inFlight.delete(abort);
      this.stats.running--;
      this.release(live, sequence);
    }
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const started = nowNs();
    const wasLoaded = this.loaded.has(request.model);
    const live = await this.acquireModel(request.model, request.keepAliveMs);
    const loadDurationNs = wasLoaded ? 0 : Number(nowNs() - started);
    live.active++;
    try {
      const embeddingContextSize = Math.min(live.model.trainContextSize, 2048);
      live.embedding ??= live.model.createEmbeddingContext({ contextSize: embeddingContextSize, threads: this.options.threads });
      const context = await live.embedding;
      const embeddings: number[][] = [];
      let promptTokens = 0;
      // node-llama-cpp adds the model's begin (and, for some vocabularies, end) token around the input
      // and needs the whole to be shorter than its context: what is left for the text itself.
      const room = embeddingContextSize - 1 - context.calculateInputLength([]);
      const tooLong = () => new BackendError('input length exceeds the context length', 400);
      for (const text of request.input) {
        if (request.signal.aborted) throw new BackendError('request aborted', 499);
        if (request.truncate === false && !couldFit(live.model, text.length, room + 1)) throw tooLong();
        // Truncating keeps the first tokens, which lie in a prefix of bounded length: only that is tokenised.
        let tokens = live.model.tokenize(request.truncate === false ? text : prefixHolding(live.model, text, room), false);
        if (tokens.length > room) {
          if (request.truncate === false) throw tooLong();
          tokens = tokens.slice(0, room);
        }
        promptTokens += tokens.length;
        const result = await context.getEmbeddingFor(tokens);
        embeddings.push(l2Normalise(result.vector));
      }
      return { embeddings, promptTokens, loadDurationNs, totalDurationNs: Number(nowNs() - started) };
    } finally {
      this.release(live, undefined);
    }
  }

  /** Downloads a URL, an hf: file or an Ollama registry name's model layer into the models directory. */
  async *pull(source: string, name: string | undefined, signal: AbortSignal): AsyncIterable<PullProgress> {
    const target = name ?? pullTargetName(source);
    if (!isSafeModelName(target)) throw new BackendError(`invalid model name '${target}'`, 400);
    await fs.mkdir(this.options.modelsDir, { recursive: true });
    const destination = path.join(this.options.modelsDir, fileNameForModel(target));
    yield { status: 'pulling manifest' };
    if (isFileSource(source)) {
      yield* downloadModelFile(resolveSource(source), destination, signal, this.pullPolicy);
    } else {
      const layer = await fetchModelLayer(parseRegistryName(source), this.options.registryUrl ?? DEFAULT_REGISTRY, signal, this.pullPolicy);
      yield* downloadModelFile(layer.url, destination, signal, this.pullPolicy, layer);
    }
    this.changed();
  }

  async delete(model: string): Promise<void> {
    const entry = await this.findEntry(model);
    await this.unload(model);
    await fs.rm(entry.filePath);
  }

  async copy(source: string, destination: string): Promise<void> {
    const entry = await this.findEntry(source);
    if (!isSafeModelName(destination)) throw new BackendError(`invalid model name '${destination}'`, 400);
    // A copy onto itself has nothing to do; removing the target first would delete the model.
    if (path.resolve(path.join(this.options.modelsDir, fileNameForModel(destination))) === path.resolve(entry.filePath)) return;
    await this.adopt(entry.filePath, destination);
  }

  /** Makes a GGUF file (an uploaded blob, another model's file) the model `name`. */
  async adopt(filePath: string, name: string): Promise<void> {
    if (!isSafeModelName(name)) throw new BackendError(`invalid model name '${name}'`, 400);
    await fs.mkdir(this.options.modelsDir, { recursive: true });
    const target = path.join(this.options.modelsDir, fileNameForModel(name));
    // A hard link costs no space and survives the deletion of the source, as an Ollama copy does.
    await fs.rm(target, { force: true });
    await fs.link(filePath, target).catch(() => fs.copyFile(filePath, target));
    this.changed();
  }

  async ping(): Promise<boolean> {
    return true;
  }

  /** Requests holding a loaded model now (generations and embeddings). */
  private busy(): number {
    let active = 0;
    for (const live of this.loaded.values()) active += live.active;
    return active;
  }

  /**
   * Stops what still runs and unloads every model, never one under a live sequence: llama.cpp would
   * free the memory a running decode uses (node-llama-cpp's DisposedError, or worse). A model still
   * held after `waitMs` is left loaded; the process is ending anyway.
   */
  async close(waitMs = 10_000): Promise<void> {
    this.partialSweep.stop();
    this.llamaStart.close();
    for (const abort of this.inFlight) abort.abort(new Error('the engine is closing'));
    await Promise.allSettled([...this.loading.values()]);
    if (this.busy() > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
      ]);
      clearTimeout(timer);
    }
    for (const [name, live] of [...this.loaded]) {
      if (live.active === 0) await this.unload(name);
    }
  }
}

type CommonGenerationOptions = {
  signal: AbortSignal;
  stopOnAbortSignal: true;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  repeatPenalty?: { penalty?: number; presencePenalty?: number; frequencyPenalty?: number; lastTokens?: number };
  customStopTriggers?: string[];
  grammar?: LlamaGrammar;
  onTextChunk: (text: string) => void;
  onToken: (tokens: Token[]) => void;
};

/**
 * Log-probabilities come from node-llama-cpp's sequence evaluation, which knows neither tool calling
 * nor grammars: asking for both is refused rather than answered without one of them.
 */
// eslint-disable-next-line require-yield
async function* refuseLogprobs(): AsyncGenerator<GenerationEvent> {
  throw new BackendError('logprobs cannot be combined with tools or a format on the embedded engine', 400);
}

/** Ollama's `num_keep` when the request sets it: leading prompt tokens that truncation never drops. */
function numKeep(options: GenerationOptions): number {
  const value = options.extra?.num_keep;
  return typeof value === 'number' && value > 0 ? value : 0;
}

/** A client's `context` ids that name tokens of this model; others would crash llama.cpp, so they are dropped. */
function validTokens(model: LlamaModel, context: number[] | undefined): Token[] {
  if (!context?.length) return [];
  const vocabulary = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer?.ggml?.tokens?.length ?? 0;
  return context.filter((id) => Number.isInteger(id) && id >= 0 && id < vocabulary) as Token[];
}

function mapStopReason(reason: string, aborted: boolean): DoneReason {
  if (aborted || reason === 'abort') return 'abort';
  if (reason === 'maxTokens') return 'length';
  if (reason === 'functionCalls') return 'tool_calls';
  return 'stop';
}

/** Chat messages in node-llama-cpp's history form; tool results travel as user turns. */
function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    if (message.role === 'system') history.push({ type: 'system', text: message.content });
    else if (message.role === 'assistant') history.push({ type: 'model', response: [message.content] });
    else if (message.role === 'tool')
      history.push({ type: 'user', text: `Result of ${message.tool_name ?? 'the tool'}: ${message.content}` });
    else history.push({ type: 'user', text: message.content });
  }
  return history;
}

function l2Normalise(vector: readonly number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
  return norm === 0 ? [...vector] : vector.map((v) => v / norm);
}

/** A URL or an `hf:` reference names one file; anything else is an Ollama registry name. */
export function isFileSource(source: string): boolean {
  return source.startsWith('hf:') || /^https?:\/\//.test(source);
}

/** The name a pull of `source` gives the model here; throws a 400 for a source that cannot be pulled. */
export function pullTargetName(source: string): string {
  if (!isFileSource(source)) return parseRegistryName(source).localName;
  resolveSource(source);
  return nameFromSource(source);
}

/** `hf:owner/repo/file.gguf` is a Hugging Face file; anything else must be an http(s) URL. */
export function resolveSource(source: string): string {
  if (source.startsWith('hf:')) {
    const parts = source.slice(3).split('/');
    if (parts.length < 3) throw new BackendError('hf: references look like hf:owner/repo/file.gguf', 400);
    const [owner, repo, ...file] = parts;
    return `https://huggingface.co/${owner}/${repo}/resolve/main/${file.join('/')}`;
  }
  if (/^https?:\/\//.test(source)) return source;
  throw new BackendError(`cannot pull '${source}': give an http(s) URL or an hf:owner/repo/file.gguf reference`, 400);
}

/** `https://host/path/My-Model.Q4_K_M.gguf` becomes `my-model.q4_k_m:latest`. */
export function nameFromSource(source: string): string {
  const last = source.split(/[/?#]/).filter(Boolean).reverse().find((part) => /\.gguf$/i.test(part)) ?? 'model.gguf';
  const stem = last.replace(/\.gguf$/i, '').replace(/[^A-Za-z0-9._-]/g, '-');
  return `${stem}:latest`;
}
