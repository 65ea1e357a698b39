import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import {
  BackendError,
  type ChatRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type ModelInfo,
  type ModelProvider,
  type OutputFormat,
  type ProviderCapabilities,
  type PullProgress,
  type StreamPart,
} from '../provider.js';
import { contextOverflow } from '../truncate-prompt.js';
import { chatPromptLength, runChat } from './chat.js';
import { completionPromptLength, runCompletion } from './completion.js';
import { embed } from './embeddings.js';
import { generate, type GenerationHost } from './generate.js';
import { GgufCatalog } from './gguf-catalog.js';
import { couldFit, fewestTokens } from './input-bound.js';
import { LlamaStart, type LlamaLoader } from './llama-start.js';
import { ModelFiles } from './model-files.js';
import { ModelPool } from './model-pool.js';
import { sweepPartials } from './partial-files.js';
import { PullPolicy } from './pull-policy.js';
import { pullTargetName } from './pull-source.js';

export interface EmbeddedEngineOptions {
  modelsDir: string;
  threads: number;
  /** Sequences of a model's context: requests that generate on one model at the same time. */
  parallel: number;
  /** Requests that may generate on one model at once, beyond `parallel` in a context made for the burst (none when not given). */
  maxParallel?: number;
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

/**
 * Runs GGUF models in-process with llama.cpp (node-llama-cpp's prebuilt CPU binaries). The models
 * directory is its store (model-files.ts), the pool keeps models in memory and hands out sequences
 * (model-pool.ts), and chat and completion share one generation loop (generate.ts).
 */
export class EmbeddedEngine implements ModelProvider, GenerationHost {
  readonly id = 'embedded';
  readonly capabilities: ProviderCapabilities = {
    inProcess: true,
    pulls: { registryNames: true, files: true, storesLocally: true },
  };
  readonly pool: ModelPool;
  /** Tokens generated since start, and generations currently running: observable state for tests. */
  readonly stats = { generated: 0, running: 0, aborted: 0 };
  /** The abort controller of every generation running. */
  readonly inFlight = new Set<AbortController>();
  private readonly catalog: GgufCatalog;
  private readonly files: ModelFiles;
  private readonly llamaStart: LlamaStart;
  private readonly changeListeners: (() => void)[] = [];
  /** Removes downloads a crash left half-written in the models directory. */
  private readonly partialSweep: { stop(): void };

  constructor(private readonly options: EmbeddedEngineOptions) {
    this.catalog = new GgufCatalog(options.modelsDir);
    this.files = new ModelFiles(options.modelsDir, options.pullPolicy ?? new PullPolicy(), options.registryUrl);
    this.partialSweep = sweepPartials(options.modelsDir);
    this.llamaStart = new LlamaStart(options.loadLlama);
    this.pool = new ModelPool(options, this.catalog, () => this.llama(), () => this.changed());
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
      const live = this.pool.get(entry.name);
      return {
        ...entry.info,
        loaded: live !== undefined,
        loadedSizeBytes: live ? live.model.size : undefined,
        expiresAt: live?.expiresAt?.toISOString(),
      };
    });
  }

  /**
   * Refuses, with the error a generation would give, a prompt of `length` code units that cannot fit
   * the model's context by its length alone; callers that do costly work with a prompt before they
   * generate (saving it, fanning it out) ask first. Loads the model as a request to it would.
   */
  async checkPromptLength(model: string, length: number): Promise<void> {
    const live = await this.pool.acquire(model, undefined);
    if (live.active === 0) this.pool.scheduleUnload(live);
    if (!couldFit(live.model, length, live.contextSizePerSequence)) {
      throw contextOverflow(fewestTokens(live.model, length), live.contextSizePerSequence, model, true);
    }
  }

  async load(model: string, keepAliveMs?: number): Promise<void> {
    const live = await this.pool.acquire(model, keepAliveMs);
    if (live.active === 0) this.pool.scheduleUnload(live);
  }

  unload(model: string): Promise<void> {
    return this.pool.unload(model);
  }

  /** The model names currently in memory. */
  loadedModels(): string[] {
    return this.pool.names();
  }

  async grammarFor(format: OutputFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (format === undefined) return undefined;
    const llama = await this.llama();
    if (format === 'json') return llama.getGrammarFor('json');
    try {
      return await llama.createGrammarForJsonSchema(format as never);
    } catch (error) {
      throw new BackendError(`invalid format schema: ${(error as Error).message}`, 400);
    }
  }

  chat(request: ChatRequest): AsyncIterable<StreamPart> {
    if (request.logprobs !== undefined && (request.tools?.length || request.format !== undefined)) return refuseLogprobs();
    return generate(this, request, chatPromptLength(request), (run) => runChat(request, run));
  }

  complete(request: CompletionRequest): AsyncIterable<StreamPart> {
    if (request.logprobs !== undefined && request.format !== undefined) return refuseLogprobs();
    return generate(this, request, completionPromptLength(request), (run) => runCompletion(request, run));
  }

  embed(request: EmbedRequest): Promise<EmbedResult> {
    return embed(this.pool, this.options.threads, request);
  }

  pullName(source: string): string {
    return pullTargetName(source);
  }

  async *pull(source: string, name: string | undefined, signal: AbortSignal): AsyncIterable<PullProgress> {
    yield* this.files.pull(source, name, signal);
    this.changed();
  }

  async delete(model: string): Promise<void> {
    const entry = await this.pool.findEntry(model);
    await this.unload(model);
    await this.files.remove(entry);
  }

  async copy(source: string, destination: string): Promise<void> {
    const entry = await this.pool.findEntry(source);
    if (this.files.isSelf(entry, destination)) return;
    await this.adopt(entry.filePath, destination);
  }

  /** Makes a GGUF file (an uploaded blob, another model's file) the model `name`. */
  async adopt(filePath: string, name: string): Promise<void> {
    await this.files.adopt(filePath, name);
    this.changed();
  }

  async ping(): Promise<boolean> {
    return true;
  }

  /** Stops what still runs and unloads every model once nothing holds it (see ModelPool.drain). */
  async close(waitMs = 10_000): Promise<void> {
    this.partialSweep.stop();
    this.llamaStart.close();
    for (const abort of this.inFlight) abort.abort(new Error('the engine is closing'));
    await this.pool.drain(waitMs);
  }
}

/**
 * Log-probabilities come from node-llama-cpp's sequence evaluation, which knows neither tool calling
 * nor grammars: asking for both is refused rather than answered without one of them.
 */
// eslint-disable-next-line require-yield
async function* refuseLogprobs(): AsyncGenerator<StreamPart> {
  throw new BackendError('logprobs cannot be combined with tools or a format on the embedded engine', 400);
}
