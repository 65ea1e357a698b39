import type { Principal } from '../../access/auth.js';
import type { UsageSink } from '../../gateway/generation.js';
import type { RateLimiter } from '../../access/rate-limit.js';
import { normaliseModelName } from '../../shared/model-names.js';
import type { UsageLedger } from '../../access/usage-ledger.js';

/**
 * What an evaluation's generations owe to its owner's API key: each one is a request under the key's
 * rate limit (an evaluation waits for the next window rather than failing when the key is at its
 * limit), and each one's tokens go to the usage ledger under the surface `evals`.
 */

export const EVALS_SURFACE = 'evals';

/** A counter of slots; `run` waits for a free one. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

export class KeyPacing {
  constructor(
    private readonly principal: Principal | null,
    private readonly limiter: RateLimiter,
    private readonly ledger: UsageLedger,
  ) {}

  private get key() {
    return this.principal?.kind === 'key' ? this.principal : undefined;
  }

  /** Waits until the key may make one more request (at once without a key). */
  async admit(signal: AbortSignal): Promise<void> {
    const key = this.key;
    if (!key) return;
    for (;;) {
      const decision = await this.limiter.take(key.keyId, key.rpm, key.tpm);
      if (decision.allowed) return;
      const wait = Math.max(50, decision.resetAt - Date.now());
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, wait);
        signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason as Error)), { once: true });
      });
    }
  }

  /** A sink that records one generation's tokens the moment it ends (the job has no response to wait for). */
  usage(started: number): UsageSink {
    const keyId = this.key?.keyId ?? null;
    return {
      add: (model, promptTokens, completionTokens) => {
        this.ledger.record({
          request: this.ledger.nextRequest(),
          keyId,
          model: normaliseModelName(model),
          surface: EVALS_SURFACE,
          promptTokens,
          completionTokens,
          durationMs: Math.round(performance.now() - started),
          status: 200,
          at: Date.now(),
        });
        if (keyId !== null && promptTokens + completionTokens > 0) this.limiter.addTokens(keyId, promptTokens + completionTokens);
      },
    };
  }
}
