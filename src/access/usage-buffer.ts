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

/**
 * Usage records waiting for their batch to be written, column by column: numbers in arrays of
 * numbers, names (keys, models, surfaces, a handful of distinct values) as one shared string each.
 * A record kept as an object of its own for the half second until the write outlived the heap's
 * young generation, and copying and promoting those objects cost the gateway more CPU per request
 * than the database write itself (bench/RESULTS.md, Gateway overhead). A request's id and time
 * become strings only when its batch is written.
 */
export class UsageBuffer {
  /** Makes the request ids of this process unique beside every other process's, before and after. */
  private readonly processId = crypto.randomUUID();
  private requestCount = 0;
  private readonly names = new Map<string, string>();
  private requests: number[] = [];
  private keyIds: (string | null)[] = [];
  private models: (string | null)[] = [];
  private surfaces: string[] = [];
  private promptTokens: number[] = [];
  private completionTokens: number[] = [];
  private durations: number[] = [];
  private statuses: number[] = [];
  private times: number[] = [];

  get length(): number {
    return this.requests.length;
  }

  /** A number for a new request, to give each of its rows. */
  nextRequest(): number {
    return ++this.requestCount;
  }

  push(use: ModelUse): void {
    this.requests.push(use.request);
    this.keyIds.push(use.keyId);
    this.models.push(use.model === null ? null : this.shared(use.model));
    this.surfaces.push(use.surface);
    this.promptTokens.push(use.promptTokens);
    this.completionTokens.push(use.completionTokens);
    this.durations.push(use.durationMs);
    this.statuses.push(use.status);
    this.times.push(use.at);
  }

  /** Empties the buffer into rows for the database, oldest first. */
  take(): UsageRecord[] {
    const rows: UsageRecord[] = [];
    for (let i = 0; i < this.requests.length; i++) {
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
    this.requests = [];
    this.keyIds = [];
    this.models = [];
    this.surfaces = [];
    this.promptTokens = [];
    this.completionTokens = [];
    this.durations = [];
    this.statuses = [];
    this.times = [];
    return rows;
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
