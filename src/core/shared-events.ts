import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { PullJob, PullJobs } from './pull-jobs.js';
import type { ModelRouter } from './router.js';

type Handler = (message: unknown) => void;

/**
 * What replicas tell each other: key and catalog changes, pull-job progress. With REDIS_URL it goes
 * through Redis pub/sub; without, the one process is the whole service and events stay in it. A
 * publisher's own handlers run at once, in process, so a change is in effect locally before the answer
 * goes out; Redis echoes of our own messages are dropped.
 */
export class SharedEvents {
  /** Distinguishes this process's messages from other replicas'. */
  readonly replicaId = crypto.randomUUID();
  private readonly local = new EventEmitter();

  private constructor(
    /** The command connection (rate limits, epochs); undefined without REDIS_URL. */
    readonly redis: Redis | undefined,
    private readonly subscriber: Redis | undefined,
    /** Put before every Redis key and channel, so that several deployments (or tests) share a Redis. */
    readonly prefix: string,
    private readonly onError: (error: unknown) => void,
  ) {
    this.local.setMaxListeners(0);
    // ioredis reconnects by itself (and resubscribes); meanwhile each failure is reported, not thrown.
    redis?.on('error', onError);
    subscriber?.on('error', onError);
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

  static async open(redisUrl: string | undefined, prefix: string, onError: (error: unknown) => void): Promise<SharedEvents> {
    if (!redisUrl) return new SharedEvents(undefined, undefined, prefix, onError);
    // Fail fast rather than queue: a request waiting on an unreachable Redis is worse than one
    // served without the shared limit (the rate limiter then falls back, see rate-limit.ts).
    const options = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000, enableAutoPipelining: true } as const;
    const redis = new Redis(redisUrl, options);
    const subscriber = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await Promise.all([redis.connect(), subscriber.connect()]);
    return new SharedEvents(redis, subscriber, prefix, onError);
  }

  /** Subscribes this replica to a channel; `handler` also runs for this replica's own publications. */
  async on(channel: string, handler: Handler): Promise<void> {
    if (this.subscriber && this.local.listenerCount(channel) === 0) await this.subscriber.subscribe(this.prefix + channel);
    this.local.on(channel, handler);
  }

  /**
   * Runs the local handlers now, then tells the other replicas. Never throws: if Redis is down, the
   * others catch up by their own means (the key epoch, the catalog's periodic reload). Resolves with
   * how many replicas' subscriptions Redis delivered it to (this one's included), 0 without Redis.
   */
  async publish(channel: string, message: unknown): Promise<number> {
    this.local.emit(channel, message);
    if (!this.redis) return 0;
    try {
      return await this.redis.publish(this.prefix + channel, JSON.stringify({ origin: this.replicaId, message }));
    } catch (error) {
      this.onError(error);
      return 0;
    }
  }

  async close(): Promise<void> {
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
