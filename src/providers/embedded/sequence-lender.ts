import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

export interface SequenceLenderSettings {
  /** llama.cpp threads of each context. */
  threads: number;
  /** The most sequences the model may have at once, over all its contexts. */
  maxSequences: number;
}

/**
 * The sequences of one loaded model. The context made at load stays as long as the model does. When
 * more generations want the model at once than its contexts have free sequences, the ones waiting get
 * a context of their own, sized to how many wait (up to `maxSequences` in all), instead of waiting for
 * others to end: the instances of an Arena request on one model start together. Such an extra context
 * is disposed as soon as its last sequence comes back, so its memory goes back too. When it cannot be
 * made (not enough memory), the generations wait for a sequence in arrival order as before.
 *
 * One context batches its sequences in one decode, but its sequence count is fixed when it is made,
 * and remaking the model's context would mean waiting for every generation on it to end. A context
 * for the whole burst instead of for those beyond the free sequences was measured slower: every
 * instance then waits for it to be made, and it holds more memory (bench/RESULTS.md). Each context
 * decodes on its own threads, so on a small machine the extra one also uses a core the model's own
 * context leaves idle.
 */
export class SequenceLender {
  private readonly extra: LlamaContext[] = [];
  /** Generations waiting for a sequence, in arrival order: each takes the one it is handed. */
  private readonly waiting: ((sequence: LlamaContextSequence) => void)[] = [];
  private growthScheduled = false;
  private growth: Promise<void> | undefined;
  private disposed = false;

  constructor(
    private readonly base: LlamaContext,
    /** Context every sequence has, in tokens (an extra context gives each of its sequences as much). */
    readonly contextSizePerSequence: number,
    private readonly settings: SequenceLenderSettings,
  ) {}

  /** The model's contexts now: the one made at load first. */
  get contexts(): readonly LlamaContext[] {
    return [this.base, ...this.extra];
  }

  /** Whether a context is being made (or about to be) for those waiting. */
  get growing(): boolean {
    return this.growthScheduled || this.growth !== undefined;
  }

  /** Sequences over all contexts, lent or free. */
  get totalSequences(): number {
    return this.contexts.reduce((sum, context) => sum + context.totalSequences, 0);
  }

  /** A free sequence, waiting in line (or for a new context) when all are lent. */
  lend(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    // Those already waiting come first: a free sequence here would be theirs.
    const free = this.waiting.length === 0 ? this.freeSequence() : undefined;
    if (free) return Promise.resolve(free);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(signal.reason);
      };
      const waiter = (sequence: LlamaContextSequence) => {
        signal.removeEventListener('abort', onAbort);
        resolve(sequence);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.scheduleGrowth();
    });
  }

  /** Takes back a lent sequence once llama.cpp has let go of it, for the next in line or to free memory. */
  async giveBack(sequence: LlamaContextSequence): Promise<void> {
    if (!sequence.disposed) await sequence.dispose().catch(() => undefined);
    this.handOut();
    await this.disposeIdle();
  }

  /** Disposes every context; only once nothing is lent and no one waits. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.growth; // a context being made is disposed with the others
    for (const context of this.extra.splice(0)) await context.dispose();
    await this.base.dispose();
  }

  /** The base context's sequences first, so that the extra ones empty and go. */
  private freeSequence(): LlamaContextSequence | undefined {
    return this.contexts.find((context) => context.sequencesLeft > 0)?.getSequence();
  }

  private handOut(): void {
    while (this.waiting.length > 0) {
      const sequence = this.freeSequence();
      if (!sequence) return;
      this.waiting.shift()!(sequence);
    }
  }

  /** Extra contexts with no sequence lent (nobody waits: handOut would have given them one). */
  private async disposeIdle(): Promise<void> {
    const idle = this.extra.filter((context) => context.sequencesLeft === context.totalSequences);
    for (const context of idle) this.extra.splice(this.extra.indexOf(context), 1);
    await Promise.all(idle.map((context) => context.dispose().catch(() => undefined)));
  }

  /**
   * The generations of one Arena request arrive one after another within the same turn of the event
   * loop: growing at its end sizes one context to all of them, rather than one per generation.
   */
  private scheduleGrowth(): void {
    if (this.growthScheduled || this.growth) return;
    this.growthScheduled = true;
    setImmediate(() => {
      this.growthScheduled = false;
      this.growth = this.grow()
        .catch(() => false)
        .then((grown) => {
          this.growth = undefined;
          // Those who came while the context was made get one too; after a failure they wait.
          if (grown && this.waiting.length > 0) this.scheduleGrowth();
        });
    });
  }

  /** Makes a context for those waiting; false when none could be made (or none was needed). */
  private async grow(): Promise<boolean> {
    const sequences = Math.min(this.waiting.length, this.settings.maxSequences - this.totalSequences);
    if (this.disposed || sequences <= 0) return false;
    let context: LlamaContext;
    try {
      context = await this.base.model.createContext({
        sequences,
        contextSize: Math.ceil(this.contextSizePerSequence * sequences),
        threads: this.settings.threads,
        // node-llama-cpp would otherwise retry with a smaller context when memory is short, giving
        // these sequences less room than the rest of the code counts on: waiting is better.
        failedCreationRemedy: false,
      });
    } catch {
      return false;
    }
    if (this.disposed) {
      await context.dispose();
      return false;
    }
    this.extra.push(context);
    this.handOut();
    await this.disposeIdle(); // those it was made for may have given up meanwhile
    return true;
  }
}
