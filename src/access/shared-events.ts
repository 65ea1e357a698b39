import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { PullJobs } from './pull-jobs.js';
import type { PullJob } from '../domain/models.js';
import type { ModelRouter } from '../gateway/router.js';

type Handler = (message: unknown) => void;

/** What SharedEvents reports about Redis: a failure, and the moments it goes away and comes back. */
export interface RedisLog {
  warn(object: Record<string, unknown>, message: string): void;
  info(object: Record<string, unknown>, message: string): void;
}

/** ioredis's reconnect delay: 100 ms doubling to 5 s, for as long as it takes. */
function reconnectDelay(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 5_000);
}

/** Where a Redis URL points, without its password, for logs and the health report. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'REDIS_URL';
  }
}

/**
 * What replicas tell each other: key and catalog changes, pull-job progress. With REDIS_URL it goes
 * through Redis pub/sub; without, the one process is the whole service and events stay in it. A
 * publisher's own handlers run at once, in process, so a change is in effect locally before the answer
 * goes out; Redis echoes of our own messages are dropped.
 *
 * Redis being away is a degraded state, not a fatal one: the server starts (or keeps serving) without
 * it, `unavailable` says why for the health report, rate limits fall back to this replica's own
 * counters, and ioredis keeps reconnecting. Once both connections are back, every channel is
 * subscribed again and the `onReconnect` handlers catch up on what the outage may have hidden.
 */
export class SharedEvents {
  /** Distinguishes this process's messages from other replicas'. */
  readonly replicaId = crypto.randomUUID();
  private readonly local = new EventEmitter();
  private readonly channels = new Set<string>();
  private readonly reconnectHandlers: (() => void)[] = [];
  /** Why Redis cannot be used now; undefined while both connections are ready (or without Redis). */
  private downReason: string | undefined;
  private lastError = 'not connected yet';
  /** Off until open() has seen the first connect attempts end, and again once closing. */
  private tracking = false;

  private constructor(
    /** The command connection (rate limits, epochs); undefined without REDIS_URL. */
    readonly redis: Redis | undefined,
    private readonly subscriber: Redis | undefined,
    /** Put before every Redis key and channel, so that several deployments (or tests) share a Redis. */
    readonly prefix: string,
    private readonly onError: (error: unknown) => void,
    private readonly log: RedisLog | undefined,
    private readonly where = '',
  ) {
    this.local.setMaxListeners(0);
    for (const connection of [redis, subscriber]) {
      // ioredis reports every failed reconnect: while Redis is known to be down those are expected and
      // only the first one (in the state change) is worth a line; a failure while up is reported.
      connection?.on('error', (error: Error) => {
        this.lastError = error.message || String(error);
        if (this.downReason === undefined && connection.status === 'ready') onError(error);
      });
      connection?.on('close', () => this.updateState());
      connection?.on('end', () => this.updateState());
      connection?.on('ready', () => this.updateState());
    }
    // Subscriptions are made here, on every (re)connect, rather than by ioredis's autoResubscribe,
    // which knows only the channels subscribed while connected: those asked for while Redis was away
    // would be lost.
    subscriber?.on('ready', () => {
      if (this.channels.size > 0) subscriber.subscribe(...[...this.channels].map((c) => this.prefix + c)).catch((e: unknown) => this.onError(e));
    });
    subscriber?.on('message', (channel: string, raw: string) => {
      let envelope: { origin: string; message: unknown };
      try {
        envelope = JSON.parse(raw) as typeof envelope;
      } catch {
        return;
      }
      if (envelope.origin === this.replicaId) return;
      this.local.emit(channel.slice(this.prefix.length), envelope.message);
    });
  }

  static async open(redisUrl: string | undefined, prefix: string, onError: (error: unknown) => void, log?: RedisLog): Promise<SharedEvents> {
    if (!redisUrl) return new SharedEvents(undefined, undefined, prefix, onError, log);
    // Fail fast rather than queue: a request waiting on an unreachable Redis is worse than one
    // served without the shared limit (the rate limiter then falls back, see rate-limit.ts).
    const common = { lazyConnect: true, retryStrategy: reconnectDelay } as const;
    const redis = new Redis(redisUrl, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000, enableAutoPipelining: true });
    const subscriber = new Redis(redisUrl, { ...common, enableOfflineQueue: false, autoResubscribe: false });
    const shared = new SharedEvents(redis, subscriber, prefix, onError, log, describeUrl(redisUrl));
    // Waits for the first outcome only: a failed first connect keeps retrying in the background.
    await Promise.allSettled([redis.connect(), subscriber.connect()]);
    shared.tracking = true;
    shared.updateState();
    return shared;
  }

  /** Why Redis is not in use now (for the health report), or undefined when it is (or is not configured). */
  get unavailable(): string | undefined {
    return this.downReason;
  }

  /** Whether shared state can be read now: false while Redis is configured but away. */
  get connected(): boolean {
    return this.redis !== undefined && this.redis.status === 'ready' && this.subscriber?.status === 'ready';
  }

  private updateState(): void {
    if (!this.redis || !this.tracking) return;
    if (this.connected) {
      if (this.downReason === undefined) return;
      this.downReason = undefined;
      this.log?.info({ redis: this.where }, 'Redis is back: rate limits and events are shared again');
      for (const handler of this.reconnectHandlers) handler();
      return;
    }
    if (this.downReason !== undefined) return;
    this.downReason = `Redis at ${this.where} is unreachable (${this.lastError}); rate limits are per replica until it is back`;
    this.log?.warn({ redis: this.where }, `${this.downReason}; retrying`);
  }

  /**
   * Runs `handler` each time Redis comes back after being away: messages published meanwhile were
   * lost, so whoever caches shared state reloads it.
   */
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  /** Subscribes this replica to a channel; `handler` also runs for this replica's own publications. */
  async on(channel: string, handler: Handler): Promise<void> {
    const fresh = !this.channels.has(channel);
    this.channels.add(channel);
    this.local.on(channel, handler);
    // While Redis is away the channel is subscribed on reconnect (see the constructor).
    if (fresh && this.subscriber?.status === 'ready') await this.subscriber.subscribe(this.prefix + channel).catch((e: unknown) => this.onError(e));
  }

  /**
   * Runs the local handlers now, then tells the other replicas. Never throws: if Redis is down, the
   * others catch up by their own means (the key epoch, the catalog's periodic reload, the reconnect
   * handlers). Resolves with how many replicas' subscriptions Redis delivered it to (this one's
   * included), 0 without Redis.
   */
  async publish(channel: string, message: unknown): Promise<number> {
    this.local.emit(channel, message);
    if (!this.redis || !this.connected) return 0;
    try {
      return await this.redis.publish(this.prefix + channel, JSON.stringify({ origin: this.replicaId, message }));
    } catch (error) {
      this.onError(error);
      return 0;
    }
  }

  async close(): Promise<void> {
    this.tracking = false;
    this.local.removeAllListeners();
    // A graceful QUIT only when connected: while Redis is unreachable it would wait for a reconnect.
    const end = (connection: Redis | undefined) =>
      connection?.status === 'ready' ? connection.quit().catch(() => connection.disconnect()) : connection?.disconnect();
    await Promise.all([end(this.redis), end(this.subscriber)]);
  }
}

/**
 * Makes pull jobs visible on every replica: each replica publishes its own jobs' updates and mirrors
 * the others' into its PullJobs, so `GET /api/pulls` anywhere lists them all. A cancel of a mirrored
 * job is forwarded to the replica running it.
 */
export async function sharePullJobs(shared: SharedEvents, pulls: PullJobs, router: ModelRouter): Promise<void> {
  if (!shared.redis) return;
  pulls.events.on('update', (job: PullJob) => {
    if (!pulls.isMirrored(job.id)) void shared.publish('pulls', job);
  });
  pulls.events.on('cancel-mirrored', (id: string) => void shared.publish('pull-cancel', id));
  await shared.on('pulls', (message) => {
    const job = message as PullJob;
    if (pulls.isMirrored(job.id) || !pulls.get(job.id)) {
      pulls.mirror(job);
      // The model may now exist on a shared backend (an Ollama server, a shared models directory).
      if (job.state === 'success') router.invalidate();
    }
  });
  await shared.on('pull-cancel', (id) => {
    if (typeof id === 'string' && !pulls.isMirrored(id)) pulls.cancel(id);
  });
}
