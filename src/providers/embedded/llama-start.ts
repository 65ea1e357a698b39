import type { Llama } from 'node-llama-cpp';
import { llamaCpp } from './llama-module.js';
import { BackendError } from '../types.js';

/** Loads llama.cpp's native binding; the engine takes another one in tests, to make it fail. */
export type LlamaLoader = () => Promise<Llama>;

/** The first retry waits this long, each next one twice as long, up to the maximum. */
export const START_RETRY_MIN_MS = 1_000;
const START_RETRY_MAX_MS = 60_000;

/**
 * node-llama-cpp's binding, loaded once per process: `build: "never"` uses only the prebuilt binaries
 * from npm (nothing is compiled at run time). Every engine of the process shares the one attempt:
 * before loading a binary, getLlama forks a child Node process (with this process's flags, so
 * `--import tsx` too) to test it. Run side by side those tests crawl (twelve at once took three
 * minutes on a busy 2-core machine) towards node-llama-cpp's five-minute limit, past which it reports
 * no usable binary.
 *
 * `progressLogs` stays on: with `build: "never"` node-llama-cpp writes only on failure, and those
 * lines (no glibc found, the prebuilt binary failed its test) are the only account of why.
 */
let processLlama: Promise<Llama> | undefined;
export const loadProcessLlama: LlamaLoader = () => {
  processLlama ??= llamaCpp()
    .then(({ getLlama, LlamaLogLevel }) => getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }))
    .catch((error: unknown) => {
    processLlama = undefined; // a later attempt tries again
    throw error;
  });
  return processLlama;
};

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message || error.name : String(error);
  return message.split('\n')[0]!.slice(0, 300);
}

/**
 * Starts llama.cpp for the embedded engine and keeps trying when it cannot: a failed start is retried
 * in the background after 1 s, then 2 s, 4 s... up to a minute between attempts, instead of leaving the
 * engine dead until a restart. Meanwhile every request fails at once with a 503 that says why, and
 * `unavailable` gives the same reason to the health report.
 */
export class LlamaStart {
  private pending?: Promise<Llama>;
  private failure?: { reason: string; retryAt: number };
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly load: LlamaLoader = loadProcessLlama) {}

  /** Why llama.cpp is not available now; undefined once started (or before the first attempt). */
  get unavailable(): string | undefined {
    return this.failure && `the embedded engine could not start llama.cpp: ${this.failure.reason}`;
  }

  /** The running llama.cpp; starts it on first use. Rejects with a 503 while it cannot be started. */
  get(): Promise<Llama> {
    if (this.pending) return this.pending;
    if (this.failure) return Promise.reject(this.refusal());
    return this.attempt();
  }

  private attempt(): Promise<Llama> {
    const pending = Promise.resolve().then(this.load).then(
      (llama) => {
        this.failure = undefined;
        this.failures = 0;
        return llama;
      },
      (error: unknown) => {
        this.pending = undefined;
        this.failures += 1;
        const delay = Math.min(START_RETRY_MIN_MS * 2 ** (this.failures - 1), START_RETRY_MAX_MS);
        this.failure = { reason: messageOf(error), retryAt: Date.now() + delay };
        if (!this.closed) {
          this.retryTimer = setTimeout(() => void this.attempt().catch(() => undefined), delay);
          this.retryTimer.unref();
        }
        throw this.refusal();
      },
    );
    this.pending = pending;
    return pending;
  }

  private refusal(): BackendError {
    const seconds = Math.max(1, Math.ceil(((this.failure?.retryAt ?? Date.now()) - Date.now()) / 1000));
    // Retryable: another backend serving the same model may still answer.
    return new BackendError(`${this.unavailable ?? 'the embedded engine is not available'}; next attempt in ${seconds} s`, 503, true);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }
}
