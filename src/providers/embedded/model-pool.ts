import type { ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { llamaCpp } from './llama-module.js';
import { BackendError } from '../types.js';
import type { GgufCatalog, GgufEntry } from './gguf-catalog.js';
import { SequenceLender } from './sequence-lender.js';

/** A model in memory with its contexts; sequences are handed out one per running request. */
export interface LoadedModel {
  entry: GgufEntry;
  model: LlamaModel;
  sequences: SequenceLender;
  contextSizePerSequence: number;
  chatWrapper: ChatWrapper;
  embedding?: Promise<LlamaEmbeddingContext>;
  active: number;
  keepAliveMs: number;
  unloadTimer?: NodeJS.Timeout;
  expiresAt?: Date;
  loadedAt: number;
}

export interface ModelPoolSettings {
  threads: number;
  /** Sequences of the context made at load: requests that generate on one model at the same time. */
  parallel: number;
  /** Requests that may generate on one model at once, in extra contexts made for a burst beyond `parallel` (none when not given). */
  maxParallel?: number;
  keepAliveMs: number;
  /** Context per sequence when the request does not say (capped by the model's training context). */
  defaultContextSize?: number;
}

/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Go's largest duration (math.MaxInt64 ns, about 292 years) in ms: Ollama's "forever". */
const FOREVER_MS = 9_223_372_036_854;

/** When a model with this keep-alive would unload if it went idle now ("Forever" as Ollama writes it). */
function expiryOf(keepAliveMs: number): Date {
  return new Date(Date.now() + (keepAliveMs < 0 ? FOREVER_MS : keepAliveMs));
}

/**
 * The models in memory: loaded on first use, kept for a keep-alive time after their last request and
 * unloaded when idle. Each model's context holds `parallel` sequences, so concurrent requests are
 * batched by llama.cpp in the same decode rather than queued behind each other; a burst beyond that
 * gets an extra context, up to `maxParallel` sequences in all, and a request beyond those waits for a
 * sequence in arrival order (sequence-lender.ts).
 */
export class ModelPool {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly settings: ModelPoolSettings,
    private readonly catalog: GgufCatalog,
    private readonly llama: () => Promise<Llama>,
    /** Told when the loaded set or a keep-alive changes (listings show both). */
    private readonly changed: () => void,
  ) {}

  get(name: string): LoadedModel | undefined {
    return this.loaded.get(name);
  }

  has(name: string): boolean {
    return this.loaded.has(name);
  }

  /** The model names currently in memory. */
  names(): string[] {
    return [...this.loaded.keys()];
  }

  async findEntry(name: string): Promise<GgufEntry> {
    const entries = await this.catalog.list();
    const entry = entries.find((e) => e.name === name);
    if (!entry) throw new BackendError(`model '${name}' not found`, 404);
    return entry;
  }

  /** The model in memory, loading it first if needed; `keepAliveMs` replaces its keep-alive. */
  async acquire(name: string, keepAliveMs: number | undefined): Promise<LoadedModel> {
    let live = this.loaded.get(name);
    if (!live) {
      let pending = this.loading.get(name);
      if (!pending) {
        pending = this.load(name).finally(() => this.loading.delete(name));
        this.loading.set(name, pending);
      }
      live = await pending;
    }
    // As in Ollama, each request's keep_alive (or the default when it gives none) replaces the last one.
    const keepAlive = keepAliveMs ?? this.settings.keepAliveMs;
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

  private async load(name: string): Promise<LoadedModel> {
    const entry = await this.findEntry(name);
    const llama = await this.llama();
    const model = await llama.loadModel({ modelPath: entry.filePath });
    const trained = model.trainContextSize;
    const contextSizePerSequence = Math.min(trained, this.settings.defaultContextSize ?? 4096);
    let context: LlamaContext;
    try {
      context = await model.createContext({
        sequences: this.settings.parallel,
        contextSize: contextSizePerSequence * this.settings.parallel,
        threads: this.settings.threads,
      });
    } catch (error) {
      await model.dispose();
      throw error;
    }
    const { GeneralChatWrapper, resolveChatWrapper } = await llamaCpp();
    const chatWrapper = entry.hasChatTemplate
      ? (resolveChatWrapper({
          bosString: model.tokens.bosString,
          filename: model.filename,
          fileInfo: model.fileInfo,
          tokenizer: model.tokenizer,
        }) ?? new GeneralChatWrapper())
      : // No template in the file: a plain "### User / ### Assistant" format every base model can follow.
        new GeneralChatWrapper();
    const sequences = new SequenceLender(context, context.contextSize / this.settings.parallel, {
      threads: this.settings.threads,
      maxSequences: Math.max(this.settings.parallel, this.settings.maxParallel ?? 0),
    });
    const live: LoadedModel = {
      entry,
      model,
      sequences,
      contextSizePerSequence: sequences.contextSizePerSequence,
      chatWrapper,
      active: 0,
      keepAliveMs: this.settings.keepAliveMs,
      loadedAt: Date.now(),
    };
    this.loaded.set(name, live);
    this.changed();
    return live;
  }

  /** A free sequence of the model, waiting for one when all are in use. */
  sequence(live: LoadedModel, signal: AbortSignal): Promise<LlamaContextSequence> {
    return live.sequences.lend(signal);
  }

  /** Ends one request's hold on the model (its sequence given back first, once llama.cpp has let go). */
  release(live: LoadedModel, sequence: LlamaContextSequence | undefined): void {
    const next = () => {
      live.active--;
      if (live.active === 0) this.scheduleUnload(live);
      if (this.busy() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
    if (sequence) void live.sequences.giveBack(sequence).finally(next);
    else next();
  }

  /** Starts the model's keep-alive countdown (called when its last request lets go). */
  scheduleUnload(live: LoadedModel): void {
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

  async unload(name: string): Promise<void> {
    const pending = this.loading.get(name);
    if (pending) await pending.catch(() => undefined);
    const live = this.loaded.get(name);
    if (!live) return;
    if (live.active > 0) {
      // Requests still running keep the model; it goes as soon as they end.
      live.keepAliveMs = 0;
      return;
    }
    this.loaded.delete(name);
    this.changed();
    clearTimeout(live.unloadTimer);
    const embedding = await live.embedding?.catch(() => undefined);
    await embedding?.dispose();
    await live.sequences.dispose();
    await live.model.dispose();
  }

  /** Requests holding a loaded model now (generations and embeddings). */
  busy(): number {
    let active = 0;
    for (const live of this.loaded.values()) active += live.active;
    return active;
  }

  /**
   * Unloads every model once no request holds it, never one under a live sequence: llama.cpp would
   * free the memory a running decode uses (node-llama-cpp's DisposedError, or worse). A model still
   * held after `waitMs` is left loaded; the process is ending anyway.
   */
  async drain(waitMs: number): Promise<void> {
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
