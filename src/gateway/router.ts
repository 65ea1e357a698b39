import { normaliseModelName } from '../shared/model-names.js';
import {
  BackendError,
  type ModelProvider,
  type ChatRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type ModelInfo,
  type ServerAnswer,
  type RelayRequest,
  type StreamPart,
} from '../providers/provider.js';
import type { AbortLike } from '../shared/abort-switch.js';

/** One model name as the gateway sees it: the union of every backend that serves it. */
export interface RoutedModel {
  name: string;
  /** Metadata from the first healthy replica (embedded first), with `loaded` true if any replica has it. */
  info: ModelInfo;
  replicas: ModelProvider[];
}

/** How long a listing of every backend's models is reused before backends are asked again. */
const LIST_TTL_MS = 2_000;
/** Up to this age an expired listing is still answered from while a fresh one is fetched. */
const STALE_SERVE_MS = 30_000;
/** How often a replica marked down is probed. */
const HEALTH_INTERVAL_MS = 5_000;

/**
 * Maps model names to the backends serving them and routes each request to the least busy healthy
 * replica. A replica that fails before anything was streamed is marked down, probed in the background
 * until it answers again, and the request is retried on the next replica.
 */
export class ModelRouter {
  private listing?: { at: number; models: Map<string, RoutedModel> };
  private refreshing?: Promise<Map<string, RoutedModel>>;
  private readonly inFlight = new Map<ModelProvider, number>();
  private readonly down = new Set<ModelProvider>();
  private healthTimer?: NodeJS.Timeout;
  /** Round-robin position among equally busy replicas. */
  private turn = 0;
  /** Which models listings show (the catalog hides inactive ones); resolve() still finds them all. */
  private listed: (name: string) => boolean = () => true;

  constructor(readonly backends: ModelProvider[]) {
    for (const backend of backends) backend.onChange?.(() => this.invalidate());
  }

  backend(id: string): ModelProvider | undefined {
    return this.backends.find((b) => b.id === id);
  }

  isDown(backend: ModelProvider): boolean {
    return this.down.has(backend);
  }

  /** Forget the cached listing: after a pull, delete, copy, load or unload. */
  invalidate(): void {
    this.listing = undefined;
  }

  useListFilter(listed: (name: string) => boolean): void {
    this.listed = listed;
  }

  /** The models clients may see: every surface's list (`/api/models`, `/api/tags`, `/v1/models`). */
  async models(): Promise<RoutedModel[]> {
    return [...(await this.modelMap()).values()].filter((model) => this.listed(model.name));
  }

  /** Every model, hidden ones too (the admin's catalog). */
  async allModels(): Promise<RoutedModel[]> {
    return [...(await this.modelMap()).values()];
  }

  private async modelMap(): Promise<Map<string, RoutedModel>> {
    const age = this.listing ? Date.now() - this.listing.at : Infinity;
    if (age < LIST_TTL_MS) return this.listing!.models;
    this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
    // A listing only a little out of date is served while the new one is fetched, so that no request
    // waits for every backend's listing; invalidate() drops it, so changes we make are seen at once.
    if (age < STALE_SERVE_MS) return this.listing!.models;
    return this.refreshing;
  }

  private async refresh(): Promise<Map<string, RoutedModel>> {
    const lists = await Promise.all(
      this.backends.map(async (backend) => {
        try {
          // A replica that lists fine may still fail to generate: only the health probe brings a
          // replica marked down back, so a failing one is not retried on every listing.
          const models = await backend.listModels();
          return { backend, models };
        } catch {
          this.markDown(backend);
          return { backend, models: [] as ModelInfo[] };
        }
      }),
    );
    const map = new Map<string, RoutedModel>();
    for (const { backend, models } of lists) {
      for (const info of models) {
        const existing = map.get(info.name);
        if (existing) {
          existing.replicas.push(backend);
          if (info.loaded) existing.info = { ...existing.info, loaded: true };
        } else {
          map.set(info.name, { name: info.name, info, replicas: [backend] });
        }
      }
    }
    this.listing = { at: Date.now(), models: map };
    return map;
  }

  /** The model a client means by `name` (`x` is `x:latest`; case is ignored as a last resort). */
  async resolve(name: string): Promise<RoutedModel> {
    const map = await this.modelMap();
    const wanted = normaliseModelName(name);
    const exact = map.get(wanted) ?? map.get(name);
    if (exact) return exact;
    const lower = wanted.toLowerCase();
    for (const model of map.values()) if (model.name.toLowerCase() === lower) return model;
    throw new BackendError(`model '${name}' not found`, 404);
  }

  /**
   * Healthy replicas, least busy first; the down ones last, as a final resort. Ties go round robin
   * (the list is rotated before the stable sort), so one request at a time still spreads over idle
   * replicas instead of always landing on the first.
   */
  private ranked(model: RoutedModel): readonly ModelProvider[] {
    const { replicas } = model;
    if (replicas.length === 1) return replicas;
    const load = (b: ModelProvider) => this.inFlight.get(b) ?? 0;
    const start = replicas.length > 1 ? this.turn++ % replicas.length : 0;
    const rotated = start === 0 ? [...replicas] : [...replicas.slice(start), ...replicas.slice(0, start)];
    return rotated.sort((a, b) => Number(this.down.has(a)) - Number(this.down.has(b)) || load(a) - load(b));
  }

  private markDown(backend: ModelProvider): void {
    if (backend.capabilities?.inProcess) return;
    // The listing is kept: ranking reads the down set, and dropping the listing would make the next
    // requests wait for a fresh one, which a stalled host can hold up to its listing timeout.
    this.down.add(backend);
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => void this.probeDown(), HEALTH_INTERVAL_MS);
    this.healthTimer.unref();
  }

  private async probeDown(): Promise<void> {
    for (const backend of [...this.down]) {
      if (await backend.ping().catch(() => false)) {
        this.down.delete(backend);
        this.invalidate();
      }
    }
    if (this.down.size === 0 && this.healthTimer) {
      clearInterval(this.healthTimer);
      this.healthTimer = undefined;
    }
  }

  private track<T>(backend: ModelProvider, work: () => T): T {
    this.inFlight.set(backend, (this.inFlight.get(backend) ?? 0) + 1);
    return work();
  }

  private untrack(backend: ModelProvider): void {
    this.inFlight.set(backend, Math.max(0, (this.inFlight.get(backend) ?? 1) - 1));
  }

  /**
   * Streams a chat or completion from the best replica. Failover happens only while nothing has been
   * yielded: once a token went out, switching replicas would splice two different answers. The
   * prompt's size is no part of the answer: the next replica's own count replaces it.
   */
  private async *stream(
    name: string,
    signal: AbortSignal,
    start: (backend: ModelProvider, model: string) => AsyncIterable<StreamPart>,
  ): AsyncGenerator<StreamPart> {
    const model = await this.resolve(name);
    let lastError: unknown;
    for (const backend of this.ranked(model)) {
      let yielded = false;
      this.track(backend, () => undefined);
      try {
        for await (const part of start(backend, model.name)) {
          if (part.type !== 'prompt-tokens') yielded = true;
          yield part;
        }
        return;
      } catch (error) {
        lastError = error;
        const retryable = error instanceof BackendError ? error.retryable : true;
        // A client that went away is no sign of a broken replica, and needs no second one.
        if (yielded || !retryable || signal.aborted) throw error;
        this.markDown(backend);
      } finally {
        this.untrack(backend);
      }
    }
    throw lastError ?? new BackendError(`model '${name}' not found`, 404);
  }

  chat(request: ChatRequest): AsyncGenerator<StreamPart> {
    return this.stream(request.model, request.signal, (backend, model) => backend.chat({ ...request, model }));
  }

  complete(request: CompletionRequest): AsyncGenerator<StreamPart> {
    return this.stream(request.model, request.signal, (backend, model) => backend.complete({ ...request, model }));
  }

  /** Every replica of the model takes OpenAI's wire format as it is (see relayOpenAi). */
  relaysOpenAi(model: RoutedModel): boolean {
    return model.replicas.every((backend) => backend.relayOpenAi !== undefined);
  }

  /**
   * Passes a request in OpenAI's wire format to the best replica, failing over as `stream` does while
   * no answer has begun. The replica counts as busy until the response has closed.
   */
  relayOpenAi(model: RoutedModel, request: RelayRequest): Promise<ServerAnswer> {
    return this.firstAnswering(
      model,
      request.signal,
      (backend) => backend.relayOpenAi!(request),
      (answer, release) => answer.body.on('close', release),
    );
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const model = await this.resolve(request.model);
    return this.firstAnswering(model, request.signal, (backend) => backend.embed({ ...request, model: model.name }));
  }

  /**
   * The answer of the best replica that gives one: a replica that fails retryably (unreachable, failing,
   * refusing the gateway's key) is marked down and the next one tried; a failure of the request itself,
   * or the client's departure, ends the search. The replica counts as busy while `attempt` runs, and
   * after it for as long as `hold` keeps the answer (until it calls the release it is given).
   */
  private async firstAnswering<T>(
    model: RoutedModel,
    signal: AbortLike,
    attempt: (backend: ModelProvider) => Promise<T>,
    hold?: (answer: T, release: () => void) => void,
  ): Promise<T> {
    let lastError: unknown;
    for (const backend of this.ranked(model)) {
      let held = false;
      this.track(backend, () => undefined);
      try {
        const answer = await attempt(backend);
        if (hold) {
          hold(answer, () => this.untrack(backend));
          held = true;
        }
        return answer;
      } catch (error) {
        lastError = error;
        const retryable = error instanceof BackendError ? error.retryable : true;
        if (!retryable || signal.aborted) throw error;
        this.markDown(backend);
      } finally {
        if (!held) this.untrack(backend);
      }
    }
    throw lastError ?? new BackendError(`model '${model.name}' not found`, 404);
  }

  /**
   * Runs `action` on every replica of the model (load, unload, delete act on all of them); an action
   * may be undefined where a replica lacks the ability and has nothing to do (loading on a server that
   * loads by itself).
   */
  async onEveryReplica(name: string, action: (backend: ModelProvider, model: string) => Promise<void> | undefined): Promise<RoutedModel> {
    const model = await this.resolve(name);
    await Promise.all(model.replicas.map((backend) => action(backend, model.name)));
    this.invalidate();
    return model;
  }

  async close(): Promise<void> {
    clearInterval(this.healthTimer);
    await Promise.all(this.backends.map((b) => b.close()));
  }
}
