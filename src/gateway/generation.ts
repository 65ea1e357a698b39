import type { ArenaMetrics } from '../domain/arena.js';
import type {
  ChatRequest,
  CompletionRequest,
  GenerationEvent,
  GenerationStats,
  StreamPart,
  TokenLogprob,
} from '../providers/provider.js';
import { toGenerationEvents } from './generation-events.js';
import type { Metrics } from './metrics.js';
import type { ModelRouter } from './router.js';
import { ShutdownError } from './shutdown.js';

/** Where a request's token counts go (the usage ledger of the API-management layer listens here). */
export interface UsageSink {
  add(model: string, promptTokens: number, completionTokens: number): void;
  /** The server's shutdown stopped one of the request's generations before its end. */
  cut?(): void;
}

/** Admin policy applied to every generation before it reaches the router (the model catalog). */
export interface GenerationPolicy {
  /** Returns the request to run (e.g. with default options filled in), or throws to refuse it. */
  prepare<T extends ChatRequest | CompletionRequest>(request: T): T;
}

export interface GenerationResult {
  text: string;
  /** A reasoning model's thoughts, when it was asked to think; never part of `text`. */
  thinking?: string;
  /** Per token, when the request asked for log-probabilities. */
  logprobs?: TokenLogprob[];
  stats: GenerationStats;
  /** Milliseconds from the start of the request to the first token; undefined if none came. */
  ttftMs?: number;
  durationMs: number;
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

export function arenaMetrics(result: GenerationResult): ArenaMetrics {
  const tokens = result.stats.completionTokens;
  const seconds = result.durationMs / 1000;
  const evalSeconds = result.stats.evalDurationNs / 1e9;
  return {
    tokens,
    duration_s: round(seconds, 3),
    tokens_per_sec: seconds > 0 ? round(tokens / seconds, 2) : 0,
    eval_tokens_per_sec: evalSeconds > 0 ? round(tokens / evalSeconds, 2) : 0,
    ttft_s: result.ttftMs === undefined ? null : round(result.ttftMs / 1000, 3),
    prompt_tokens: result.stats.promptTokens,
  };
}

/**
 * The single path every generation takes from a surface to the router: it is where metrics are
 * recorded and usage is accounted, so no surface can forget either.
 */
export class GenerationService {
  private policy?: GenerationPolicy;
  /** One controller per generation running: what a shutdown aborts. */
  private readonly running = new Set<AbortController>();
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly router: ModelRouter,
    private readonly metrics: Metrics,
  ) {}

  usePolicy(policy: GenerationPolicy): void {
    this.policy = policy;
  }

  /**
   * The shutdown's cut: stops every generation running, and any started later, as a client
   * disconnect would; each then ends with a ShutdownError. Resolves once all have ended (their
   * backends have let go of them), or after `waitMs`.
   */
  async stopAll(waitMs: number): Promise<void> {
    this.stopping = true;
    for (const controller of this.running) controller.abort(new ShutdownError());
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
  }

  chat(request: ChatRequest, usage?: UsageSink): AsyncGenerator<GenerationEvent> {
    return this.run(request, (r) => this.router.chat(r), usage);
  }

  complete(request: CompletionRequest, usage?: UsageSink): AsyncGenerator<GenerationEvent> {
    return this.run(request, (r) => this.router.complete(r), usage);
  }

  private run<T extends ChatRequest | CompletionRequest>(
    request: T,
    start: (request: T) => AsyncGenerator<StreamPart>,
    usage: UsageSink | undefined,
  ): AsyncGenerator<GenerationEvent> {
    const prompt = { tokens: 0 };
    // The backend listens to a signal of its own, which the client's departure and the shutdown both abort.
    const stop = new AbortController();
    const events = toGenerationEvents(this.prepared({ ...request, signal: stop.signal }, start), (tokens) => (prompt.tokens = tokens));
    return this.observe(request.model, events, usage, prompt, request.signal, stop);
  }

  /** Applies the policy lazily, so that a refusal surfaces as the stream's error, like any other. */
  private async *prepared<T extends ChatRequest | CompletionRequest>(
    request: T,
    start: (request: T) => AsyncGenerator<StreamPart>,
  ): AsyncGenerator<StreamPart> {
    yield* start(this.policy ? this.policy.prepare(request) : request);
  }

  private async *observe(
    model: string,
    events: AsyncGenerator<GenerationEvent>,
    usage: UsageSink | undefined,
    /** The prompt's size once the backend has told it (its `prompt-tokens` part). */
    prompt: { tokens: number },
    client: AbortSignal,
    stop: AbortController,
  ): AsyncGenerator<GenerationEvent> {
    const started = performance.now();
    let first = true;
    let outcome = 'abort';
    /** Token events seen: what a generation that never reaches its final event is charged. */
    let streamed = 0;
    let accounted = false;
    const forward = () => stop.abort(client.reason);
    client.addEventListener('abort', forward, { once: true });
    if (client.aborted) forward();
    this.running.add(stop);
    if (this.stopping) stop.abort(new ShutdownError());
    const cut = () => stop.signal.reason instanceof ShutdownError;
    this.metrics.generationsRunning.inc();
    try {
      for await (const event of events) {
        if (event.type !== 'done') {
          streamed++;
          if (first) {
            first = false;
            this.metrics.timeToFirstToken.observe({ model }, (performance.now() - started) / 1000);
          }
        } else {
          const { stats } = event;
          outcome = stats.doneReason;
          this.metrics.tokensGenerated.inc({ model }, stats.completionTokens);
          this.metrics.promptTokens.inc({ model }, stats.promptTokens);
          if (stats.evalDurationNs > 0 && stats.completionTokens > 0) {
            this.metrics.tokensPerSecond.observe({ model }, stats.completionTokens / (stats.evalDurationNs / 1e9));
          }
          usage?.add(model, stats.promptTokens, stats.completionTokens);
          accounted = true;
          // Its backend stopped it as it stops an abandoned one; the client is still there and is
          // told why its answer ends here.
          if (cut() && stats.doneReason === 'abort') throw new ShutdownError(stats);
        }
        yield event;
      }
      if (!accounted && cut()) throw new ShutdownError();
    } catch (error) {
      if (cut()) {
        outcome = 'shutdown';
        usage?.cut?.();
        throw error instanceof ShutdownError ? error : new ShutdownError();
      }
      outcome = 'error';
      throw error;
    } finally {
      client.removeEventListener('abort', forward);
      this.running.delete(stop);
      if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      if (!accounted && (streamed > 0 || prompt.tokens > 0)) {
        // Stopped before its final event (client gone, error): the backend's counts never came, so
        // each token event counts as one token, and the prompt as the backend told it (0 if it did not).
        this.metrics.tokensGenerated.inc({ model }, streamed);
        this.metrics.promptTokens.inc({ model }, prompt.tokens);
        usage?.add(model, prompt.tokens, streamed);
      }
      this.metrics.generationsRunning.dec();
      this.metrics.generations.inc({ model, outcome });
    }
  }

  /**
   * Runs a generation to its end and returns the whole text with its timing. Thinking counts as output
   * for the time to first token (the model has started answering) but stays out of the text. Takes the
   * service's events or a provider's stream parts alike.
   */
  static async collect(events: AsyncIterable<GenerationEvent | StreamPart>, onToken?: (text: string) => void): Promise<GenerationResult> {
    const started = performance.now();
    let text = '';
    let thinking: string | undefined;
    let logprobs: TokenLogprob[] | undefined;
    let ttftMs: number | undefined;
    for await (const event of toGenerationEvents(events)) {
      if (event.type === 'done') {
        return { text, ...(thinking === undefined ? {} : { thinking }), ...(logprobs ? { logprobs } : {}), stats: event.stats, ttftMs, durationMs: performance.now() - started };
      }
      if (event.type === 'token' && event.logprobs) (logprobs ??= []).push(...event.logprobs);
      ttftMs ??= performance.now() - started;
      if (event.type === 'thinking') {
        thinking = (thinking ?? '') + event.text;
        continue;
      }
      text += event.text;
      onToken?.(event.text);
    }
    throw new Error('generation ended without a final event');
  }
}

/** The tokens one HTTP request used, per model; the usage ledger persists it when the response ends. */
export class RequestUsage implements UsageSink {
  readonly byModel = new Map<string, { promptTokens: number; completionTokens: number }>();
  /** A generation of the request was stopped by the server's shutdown (recorded as 499, like a client that left). */
  cutByShutdown = false;

  cut(): void {
    this.cutByShutdown = true;
  }

  add(model: string, promptTokens: number, completionTokens: number): void {
    const entry = this.byModel.get(model) ?? { promptTokens: 0, completionTokens: 0 };
    entry.promptTokens += promptTokens;
    entry.completionTokens += completionTokens;
    this.byModel.set(model, entry);
  }

  get promptTokens(): number {
    let sum = 0;
    for (const entry of this.byModel.values()) sum += entry.promptTokens;
    return sum;
  }

  get completionTokens(): number {
    let sum = 0;
    for (const entry of this.byModel.values()) sum += entry.completionTokens;
    return sum;
  }
}
