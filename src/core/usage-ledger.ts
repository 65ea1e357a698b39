import { UsageStore, type UsageFilter, type UsageRecord } from '../store/usage.js';
import type { Db } from '../store/database.js';

/** How often buffered records are written; an admin reading usage flushes first. */
const FLUSH_MS = 500;
/** A batch this large is written at once instead of waiting for the timer. */
const FLUSH_AT = 1_000;
/** While the database is unreachable records wait in memory, up to this many. */
const MAX_BUFFERED = 1_000_000;

/**
 * The usage ledger: one record per request and model, kept in memory and written in batches off the
 * hot path. A batch that fails to write stays buffered and is retried, and close() writes whatever is
 * left, so no record is lost while the process lives (and shuts down cleanly).
 */
export class UsageLedger {
  private buffer: UsageRecord[] = [];
  private flushing?: Promise<void>;
  private readonly timer: NodeJS.Timeout;
  private readonly store: UsageStore;

  constructor(
    db: Db,
    private readonly onError: (error: unknown) => void,
  ) {
    this.store = new UsageStore(db);
    this.timer = setInterval(() => void this.flush().catch(() => undefined), FLUSH_MS);
    this.timer.unref();
  }

  record(records: UsageRecord[]): void {
    this.buffer.push(...records);
    if (this.buffer.length > MAX_BUFFERED) {
      const dropped = this.buffer.splice(0, this.buffer.length - MAX_BUFFERED);
      this.onError(new Error(`usage buffer full: dropped ${dropped.length} records`));
    }
    if (this.buffer.length >= FLUSH_AT && !this.flushing) void this.flush().catch(() => undefined);
  }

  /** Writes everything recorded so far; concurrent callers share one write, then write the rest. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.store
      .insert(batch)
      .catch((error: unknown) => {
        this.buffer = batch.concat(this.buffer);
        this.onError(error);
        throw error;
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async summary(filter: UsageFilter) {
    await this.flush();
    return this.store.summary(filter);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (let attempt = 0; attempt < 3 && this.buffer.length > 0; attempt++) {
      try {
        await this.flush();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}
