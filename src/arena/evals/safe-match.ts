import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Runs a suite's regular expressions and JSON schemas (whose `pattern`s are regular expressions too)
 * in a worker thread, with a time limit per answer. JavaScript's backtracking engine can take
 * exponential time on a crafted pattern; in the worker such a match only costs the worker, which is
 * terminated at the limit and replaced, and the assertion fails with "timed out". The worker's code is
 * ours; the suite only gives it data.
 */

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Ajv } = require(workerData.ajv);
const ajv = new Ajv({ strict: false, allErrors: false });
const compiled = new Map();
parentPort.postMessage({ ready: true });
parentPort.on('message', ({ id, answer, checks }) => {
  try {
    const results = checks.map((check) => {
      if (check.regex !== undefined) return new RegExp(check.regex, check.flags).test(answer);
      const key = JSON.stringify(check.schema);
      let validate = compiled.get(key);
      if (!validate) {
        if (compiled.size > 500) compiled.clear();
        validate = ajv.compile(check.schema);
        compiled.set(key, validate);
      }
      return validate(JSON.parse(answer)) === true;
    });
    parentPort.postMessage({ id, results });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

export type GuardedCheck = { regex: string; flags: string } | { schema: Record<string, unknown> };

interface Pending {
  /** The worker asked: when it dies, only its own requests fail (a replacement may already have others). */
  worker: Worker;
  resolve: (outcome: boolean[] | { error: string }) => void;
  timer: NodeJS.Timeout;
}

const MATCH_TIME_LIMIT_MS = 1_000;
/** Answers up to this long may take the in-thread path for a pattern of bounded cost. */
const FAST_PATH_MAX_CHARS = 4_000;

/**
 * Whether a pattern's backtracking is bounded well enough to run in the server's own thread: no
 * quantified group (where exponential blow-ups live), no back-reference or lookaround, and at most
 * one unbounded quantifier, so a search costs at most about n² steps (16 M at FAST_PATH_MAX_CHARS).
 * Anything else goes to the worker. Most assertions (`\w`, `^Yes`, `\d+ apples`) pass; the
 * worker's round trip, several milliseconds on a machine busy generating, is then saved.
 */
export function isBoundedPattern(pattern: string): boolean {
  let unbounded = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(next) || next === 'k')) return false;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(' && pattern[i + 1] === '?' && pattern[i + 2] !== ':') return false;
    else if (c === ')' && /[*+?{]/.test(pattern[i + 1] ?? '')) return false;
    else if (c === '*' || c === '+') unbounded++;
    else if (c === '{') {
      const range = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (range && range[2] !== undefined && (range[3] === '' || Number(range[3]) > 16)) unbounded++;
    }
  }
  return unbounded <= 1;
}

function fastPath(answer: string, checks: GuardedCheck[]): boolean[] | undefined {
  if (answer.length > FAST_PATH_MAX_CHARS) return undefined;
  const results: boolean[] = [];
  for (const check of checks) {
    if (!('regex' in check) || !isBoundedPattern(check.regex)) return undefined;
    results.push(new RegExp(check.regex, check.flags).test(answer));
  }
  return results;
}

export class SafeMatcher {
  private worker?: Worker;
  /** Resolves once the current worker has loaded: its start-up is not counted against the limit. */
  private ready: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** One answer's checks at a time: a limit then measures that answer alone, never a queue. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly limitMs = MATCH_TIME_LIMIT_MS) {}

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ajv: createRequire(import.meta.url).resolve('ajv') } });
    worker.unref();
    let markReady!: () => void;
    this.ready = new Promise<void>((resolve) => (markReady = resolve));
    worker.on('message', (message: { ready?: boolean; id: number; results?: boolean[]; error?: string }) => {
      if (message.ready) return markReady();
      const entry = this.pending.get(message.id);
      if (!entry) return;
      this.pending.delete(message.id);
      clearTimeout(entry.timer);
      entry.resolve(message.results ?? { error: message.error ?? 'failed' });
    });
    const fail = (reason: string) => {
      markReady();
      if (this.worker === worker) this.worker = undefined;
      for (const [id, entry] of this.pending) {
        if (entry.worker !== worker) continue;
        clearTimeout(entry.timer);
        entry.resolve({ error: reason });
        this.pending.delete(id);
      }
    };
    worker.on('error', (error) => fail(error.message));
    worker.on('exit', () => fail('the matcher stopped'));
    this.worker = worker;
    return worker;
  }

  match(answer: string, checks: GuardedCheck[]): Promise<boolean[] | { error: string }> {
    const quick = fastPath(answer, checks);
    if (quick) return Promise.resolve(quick);
    const run = this.chain.then(async () => {
      const worker = this.start();
      await this.ready;
      return new Promise<boolean[] | { error: string }>((resolve) => {
        const id = this.nextId++;
        const timer = setTimeout(() => {
          this.pending.delete(id);
          resolve({ error: `timed out after ${this.limitMs} ms` });
          // The worker may be stuck in the match for good: it goes, and the next answer gets a new one.
          if (this.worker === worker) this.worker = undefined;
          void worker.terminate();
        }, this.limitMs);
        this.pending.set(id, { worker, resolve, timer });
        worker.postMessage({ id, answer, checks });
      });
    });
    this.chain = run;
    return run;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
