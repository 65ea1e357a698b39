import crypto from 'node:crypto';
import type { UsageRecord } from '../store/usage.js';

/** One request's use of one model, as the usage ledger takes it. */
export interface ModelUse {
  /** The request's number (UsageBuffer.nextRequest): the rows of one request share it. */
  request: number;
  keyId: string | null;
  model: string | null;
  surface: string;
  promptTokens: number;
  completionTokens: number;
  durationMs: number;
  status: number;
  /** When it ended, in Unix milliseconds. */
  at: number;
}

/** Distinct model names remembered for sharing; past this the memory starts afresh. */
const MAX_SHARED_NAMES = 4096;

/** Records the buffer has room for from the start: more than a batch (UsageLedger writes 1,000 at once). */
const INITIAL_CAPACITY = 1024;
/** Past this many (the database was away a while), the room is given back once the records are written. */
const KEPT_CAPACITY = 16 * INITIAL_CAPACITY;

/**
 * Usage records waiting for their batch to be written, column by column, in columns made once and
 * written over from batch to batch: numbers in typed arrays, names (keys, models, surfaces, a handful
 * of distinct values) as one shared string each. Whatever a record leaves in the heap until its batch
 * is written outlives the young generation and is copied, then promoted, by the collector: as objects
 * (one per record), that cost more CPU per request than the database write itself; as growing arrays
 * of numbers, about as much again as the rest of the collection's work under load (bench/RESULTS.md,
 * Gateway overhead). A record now adds nothing to the heap. A request's id and time become strings
 * only when its batch is written.
 */
export class UsageBuffer {
  /** Makes the request ids of this process unique beside every other process's, before and after. */
  private readonly processId = crypto.randomUUID();
  private requestCount = 0;
  private readonly names = new Map<string, string>();
  private count = 0;
  private capacity = 0;
  private requests = new Float64Array(0);
  private keyIds: (string | null)[] = [];
  private models: (string | null)[] = [];
  private surfaces: string[] = [];
  private promptTokens = new Float64Array(0);
  private completionTokens = new Float64Array(0);
  private durations = new Float64Array(0);
  private statuses = new Float64Array(0);
  private times = new Float64Array(0);

  constructor() {
    this.resize(INITIAL_CAPACITY);
  }

  get length(): number {
    return this.count;
  }

  /** A number for a new request, to give each of its rows. */
  nextRequest(): number {
    return ++this.requestCount;
  }

  push(use: ModelUse): void {
    if (this.count === this.capacity) this.resize(this.capacity * 2);
    const i = this.count++;
    this.requests[i] = use.request;
    this.keyIds[i] = use.keyId;
    this.models[i] = use.model === null ? null : this.shared(use.model);
    this.surfaces[i] = use.surface;
    this.promptTokens[i] = use.promptTokens;
    this.completionTokens[i] = use.completionTokens;
    this.durations[i] = use.durationMs;
    this.statuses[i] = use.status;
    this.times[i] = use.at;
  }

  /** Empties the buffer into rows for the database, oldest first. */
  take(): UsageRecord[] {
    const rows: UsageRecord[] = [];
    for (let i = 0; i < this.count; i++) {
      rows.push({
        request_id: `${this.processId}-${this.requests[i]!}`,
        key_id: this.keyIds[i]!,
        model: this.models[i]!,
        surface: this.surfaces[i]!,
        prompt_tokens: this.promptTokens[i]!,
        completion_tokens: this.completionTokens[i]!,
        duration_ms: this.durations[i]!,
        status: this.statuses[i]!,
        created_at: new Date(this.times[i]!).toISOString(),
      });
    }
    this.count = 0;
    if (this.capacity > KEPT_CAPACITY) this.resize(INITIAL_CAPACITY);
    return rows;
  }

  /** Makes the columns `capacity` records long, keeping the records they hold. */
  private resize(capacity: number): void {
    const numbers = (old: Float64Array) => {
      const column = new Float64Array(capacity);
      column.set(old.subarray(0, this.count));
      return column;
    };
    const names = <T>(old: T[], empty: T) => {
      const column = new Array<T>(capacity).fill(empty);
      for (let i = 0; i < this.count; i++) column[i] = old[i]!;
      return column;
    };
    this.requests = numbers(this.requests);
    this.keyIds = names(this.keyIds, null);
    this.models = names(this.models, null);
    this.surfaces = names(this.surfaces, '');
    this.promptTokens = numbers(this.promptTokens);
    this.completionTokens = numbers(this.completionTokens);
    this.durations = numbers(this.durations);
    this.statuses = numbers(this.statuses);
    this.times = numbers(this.times);
    this.capacity = capacity;
  }

  /**
   * One string per distinct name: a model named in a request body is a new string each time, and
   * kept as such it would be as costly as the object this buffer avoids.
   */
  private shared(name: string): string {
    const known = this.names.get(name);
    if (known !== undefined) return known;
    if (this.names.size >= MAX_SHARED_NAMES) this.names.clear();
    this.names.set(name, name);
    return name;
  }
}
