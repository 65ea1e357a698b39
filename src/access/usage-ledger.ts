import crypto from 'node:crypto';
import { UsageStore, type UsageFilter, type UsageRecord } from '../store/usage.js';
import type { Store } from '../store/database.js';
import type { SharedEvents } from './shared-events.js';
import { UsageBuffer, type ModelUse } from './usage-buffer.js';

/**
 * How often buffered records are written; an admin reading usage flushes first. A finished request's
 * record is in the database within this plus one write, which is the "within a second" a `kill -9`
 * is documented to respect (docs/admin-api.md, Durability): keep it well under 1 s.
 */
const FLUSH_MS = 500;
/** A batch this large is written at once instead of waiting for the timer. */
const FLUSH_AT = 1_000;
/**
 * While the database is unreachable records wait in memory, up to this many; past it new ones are
 * counted, reported and dropped (those waiting are the older, and keep their place).
 */
const MAX_BUFFERED = 1_000_000;
/** How long an admin's read waits for the other replicas to write their buffers. */
const PEER_FLUSH_WAIT_MS = 1_000;

/**
 * The usage ledger: one record per request and model, kept in memory and written in batches off the
 * hot path. A batch that fails to write stays buffered and is retried, and close() writes whatever is
 * left, so no record is lost while the process lives (and shuts down cleanly).
 */
export class UsageLedger {
  private readonly buffer = new UsageBuffer();
  /** Rows of a batch whose write failed: written first at the next attempt. */
  private failed: UsageRecord[] = [];
  /** Records refused since the last report, the buffer being full. */
  private dropped = 0;
  private flushing?: Promise<void>;
  private readonly timer: NodeJS.Timeout;
  private readonly store: UsageStore;
  private shared?: SharedEvents;
  /** Replica-wide flushes this replica asked for, by token: called once per replica that has written. */
  private readonly pendingAcks = new Map<string, () => void>();

  constructor(
    database: Pick<Store, 'db' | 'sqlite'>,
    private readonly onError: (error: unknown) => void,
  ) {
    this.store = new UsageStore(database);
    this.timer = setInterval(() => void this.flush().catch(() => undefined), FLUSH_MS);
    this.timer.unref();
  }

  /** A number for a new request, which each of its records gives (ModelUse.request). */
  nextRequest(): number {
    return this.buffer.nextRequest();
  }

  /** Takes a copy of `use`'s fields: the caller may reuse the object. */
  record(use: ModelUse): void {
    if (this.buffer.length + this.failed.length >= MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    this.buffer.push(use);
    if (this.buffer.length >= FLUSH_AT && !this.flushing) void this.flush().catch(() => undefined);
  }

  /** Writes everything recorded so far; concurrent callers share one write, then write the rest. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.dropped > 0) {
      this.onError(new Error(`usage buffer full: dropped ${this.dropped} records`));
      this.dropped = 0;
    }
    if (this.buffer.length === 0 && this.failed.length === 0) return;
    const batch = this.failed.concat(this.buffer.take());
    this.failed = [];
    this.flushing = this.store
      .insert(batch)
      .catch((error: unknown) => {
        this.failed = batch.concat(this.failed);
        this.onError(error);
        throw error;
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * With several replicas (REDIS_URL), lets an admin's read ask every replica to write its buffer
   * first, so usage recorded anywhere a moment ago is in the totals at once.
   */
  async shareFlushes(shared: SharedEvents): Promise<void> {
    this.shared = shared;
    await shared.on('usage-flush', (token) => {
      if (typeof token !== 'string') return;
      void this.flush()
        .catch(() => undefined)
        .finally(() => void shared.publish('usage-flushed', token));
    });
    await shared.on('usage-flushed', (token) => {
      if (typeof token === 'string') this.pendingAcks.get(token)?.();
    });
  }

  /**
   * Writes this replica's buffer and, with Redis, every other replica's: it waits for as many
   * acknowledgements as Redis delivered the request to, or at most PEER_FLUSH_WAIT_MS (a replica that
   * has just died does not hold an admin's page).
   */
  async flushEverywhere(): Promise<void> {
    const shared = this.shared;
    if (!shared?.redis) return this.flush();
    const token = crypto.randomUUID();
    let acknowledged = 0;
    let expected = Infinity;
    let allDone!: () => void;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    this.pendingAcks.set(token, () => {
      if (++acknowledged >= expected) allDone();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      // This replica's own handler runs (and acknowledges) during publish; Redis counts it among the receivers.
      expected = Math.max(1, await shared.publish('usage-flush', token));
      if (acknowledged >= expected) allDone();
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, PEER_FLUSH_WAIT_MS)))]);
    } finally {
      clearTimeout(timer);
      this.pendingAcks.delete(token);
    }
    await this.flush();
  }

  async summary(filter: UsageFilter) {
    await this.flushEverywhere();
    return this.store.summary(filter);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (let attempt = 0; attempt < 3 && this.buffer.length + this.failed.length > 0; attempt++) {
      try {
        await this.flush();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}
