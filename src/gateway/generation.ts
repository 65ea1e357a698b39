import type { ArenaMetrics } from '../domain/arena.js';
import type {
  ChatRequest,
  CompletionRequest,
  GenerationEvent,
  GenerationStats,
  ServerAnswer,
  RelayRequest,
  StreamPart,
  TokenLogprob,
} from '../providers/provider.js';
import { toGenerationEvents } from './generation-events.js';
import type { Metrics } from './metrics.js';
import type { ModelRouter, RoutedModel } from './router.js';
import { ShutdownError } from './shutdown.js';
import type { Stoppable } from '../shared/abort-switch.js';

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
  /** Whether `prepare` would refuse or change a request for this model. */
  changes(model: string): boolean;
}

/** What the caller of `relayOpenAi` read off the answer it passed through, for the accounting. */
interface RelayOutcome {
  /** Token counts as the server reported them. */
  usage?: { promptTokens: number; completionTokens: number } | undefined;
  /** OpenAI's `finish_reason` (of the last choice that had one). */
  finishReason?: string | undefined;
  /** Pieces of answer streamed: each counts as a token when the server reported no usage. */
  pieces: number;
  /** The answer stopped before its end (the client left, the server failed, the shutdown cut it). */
  incomplete: boolean;
}

/** A generation passed through in OpenAI's wire format: the server's answer and the accounting's calls. */
export interface RelayedGeneration {
  answer: ServerAnswer;
  /** True once the server's shutdown has cut it: the answer must end telling the client so. */
  cut(): boolean;
  /** The answer's first piece arrived (its time to first token). */
  firstPiece(): void;
  /** The answer ended: metrics and usage are taken once; later calls do nothing. */
  finish(outcome: RelayOutcome): void;
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
  private readonly running = new Set<Stoppable>();
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

  /**
   * Follows one generation from start to end: counts it as running (what the shutdown cuts), links
   * the client's departure (`client`, forwarded to `stop`; none when the caller aborts `stop` itself)
   * to its stop signal, and takes its metrics and usage once at the end.
   */
  private begin(model: string, client: AbortSignal | undefined, usage: UsageSink | undefined, stop: Stoppable) {
    const started = performance.now();
    const series = this.metrics.forModel(model);
    let firstAt: number | undefined;
    let ended = false;
    const forward = () => stop.abort(client?.reason);
    client?.addEventListener('abort', forward, { once: true });
    if (client?.aborted) forward();
    this.running.add(stop);
    if (this.stopping) stop.abort(new ShutdownError());
    this.metrics.generationsRunning++;
    return {
      cut: () => stop.signal.reason instanceof ShutdownError,
      firstPiece: () => {
        if (firstAt !== undefined) return;
        firstAt = performance.now();
        series.timeToFirstToken.observe((firstAt - started) / 1000);
      },
      /**
       * `reported`: the counts are the backend's own (charged even when zero); `evalSeconds`: how long
       * the answer took after its first piece, when the backend said.
       */
      end: (outcome: string, reportedPrompt: number, reportedCompletion: number, reported: boolean, evalSeconds?: number) => {
        if (ended) return;
        // A server's counts are its word: one that is negative or not finite counts as none, in the
        // metrics and the usage alike, rather than poisoning a total.
        const promptTokens = tokenCount(reportedPrompt);
        const completionTokens = tokenCount(reportedCompletion);
        ended = true;
        client?.removeEventListener('abort', forward);
        this.running.delete(stop);
        if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        series.tokensGenerated.count += completionTokens;
        series.promptTokens.count += promptTokens;
        const seconds = evalSeconds ?? (firstAt === undefined ? 0 : (performance.now() - firstAt) / 1000);
        if (outcome !== 'abort' && outcome !== 'error' && seconds > 0 && completionTokens > 0) {
          series.tokensPerSecond.observe(completionTokens / seconds);
        }
        if (reported || promptTokens > 0 || completionTokens > 0) usage?.add(model, promptTokens, completionTokens);
        this.metrics.generationsRunning--;
        this.metrics.generationEnded(model, outcome);
      },
    };
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
    const tracked = this.begin(model, client, usage, stop);
    /** Token events seen: what a generation that never reaches its final event is charged. */
    let streamed = 0;
    let final: GenerationStats | undefined;
    let outcome = 'abort';
    try {
      for await (const event of events) {
        if (event.type !== 'done') {
          streamed++;
          tracked.firstPiece();
        } else {
          final = event.stats;
          outcome = final.doneReason;
          // Its backend stopped it as it stops an abandoned one; the client is still there and is
          // told why its answer ends here.
          if (tracked.cut() && final.doneReason === 'abort') throw new ShutdownError(final);
        }
        yield event;
      }
      if (!final && tracked.cut()) throw new ShutdownError();
    } catch (error) {
      if (tracked.cut()) {
        outcome = 'shutdown';
        usage?.cut?.();
        throw error instanceof ShutdownError ? error : new ShutdownError();
      }
      outcome = 'error';
      throw error;
    } finally {
      // Stopped before its final event (client gone, error), the backend's counts never came: each
      // token event counts as one token, and the prompt as the backend told it (0 if it did not).
      if (final) tracked.end(outcome, final.promptTokens, final.completionTokens, true, final.evalDurationNs / 1e9);
      else tracked.end(outcome, prompt.tokens, streamed, false, 0);
    }
  }

  /** Whether a request for `model` may go to its server as the client wrote it: no policy changes or refuses it. */
  mayRelay(model: string): boolean {
    return this.policy?.changes(model) !== true;
  }

  /**
   * A generation in OpenAI's wire format passed on as it is (see ModelProvider.relayOpenAi), with the
   * same accounting as `chat`: the caller reads the figures off the answer and reports them to the
   * returned generation. Failing before the answer begins, it throws (a ShutdownError when cut). The
   * caller aborts `stop` when its client leaves; the shutdown aborts it with a ShutdownError.
   */
  async relayOpenAi(routed: RoutedModel, request: Omit<RelayRequest, 'signal' | 'model'>, stop: Stoppable, usage?: UsageSink): Promise<RelayedGeneration> {
    const tracked = this.begin(routed.name, undefined, usage, stop);
    const outcomeOf = (incomplete: boolean, finishReason: string | undefined) => {
      if (tracked.cut()) return 'shutdown';
      if (!incomplete) return finishReason === 'length' ? 'length' : 'stop';
      return stop.signal.aborted ? 'abort' : 'error';
    };
    let answer: ServerAnswer;
    try {
      answer = await this.router.relayOpenAi(routed, { endpoint: request.endpoint, model: routed.name, body: request.body, signal: stop.signal });
    } catch (error) {
      if (tracked.cut()) usage?.cut?.();
      tracked.end(outcomeOf(true, undefined), 0, 0, false);
      throw tracked.cut() ? new ShutdownError() : error;
    }
    return {
      answer,
      cut: tracked.cut,
      firstPiece: tracked.firstPiece,
      finish: ({ usage: counts, finishReason, pieces, incomplete }) => {
        if (tracked.cut()) usage?.cut?.();
        tracked.end(outcomeOf(incomplete, finishReason), counts?.promptTokens ?? 0, counts?.completionTokens ?? pieces, counts !== undefined);
      },
    };
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

/** A token count as a backend reported it, or 0 when it is negative or not a finite number. */
function tokenCount(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
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
