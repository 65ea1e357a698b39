import type { Redis } from 'ioredis';

/**
 * Per-key limits: requests per minute (rpm) and, optionally, tokens per minute (tpm). A window opens
 * with a key's first request and lasts a minute (as @fastify/rate-limit's stores do), so a burst is
 * never split across two windows.
 *
 * Why not @fastify/rate-limit: it counts requests only, each with weight 1 and decided before the
 * handler, while a token budget is charged after the answer (its size is known only then) and must
 * refuse the next request once spent. Bolting a separate token counter beside it would cost a second
 * (and third) Redis round trip per request; this one script does requests, tokens and the API-key
 * epoch (see access/api-keys.ts) in a single atomic round trip.
 */

const WINDOW_MS = 60_000;

export interface Decision {
  allowed: boolean;
  /** Why it was refused. */
  reason?: 'requests' | 'tokens';
  limit: number;
  remaining: number;
  /** Unix milliseconds when the window ends. */
  resetAt: number;
  tokensUsed: number;
  /** The shared API-key epoch read in the same round trip (Redis only). */
  epoch?: number;
}

export interface RateLimiter {
  take(keyId: string, rpm: number, tpm: number | undefined): Promise<Decision>;
  /** Charges tokens to the key's current window (after the answer, off the hot path). */
  addTokens(keyId: string, tokens: number): void;
  close(): void;
}

function decide(count: number, tokens: number, ttlMs: number, rpm: number, refusedForTokens: boolean, now: number): Decision {
  const allowed = !refusedForTokens && count <= rpm;
  return {
    allowed,
    reason: refusedForTokens ? 'tokens' : allowed ? undefined : 'requests',
    limit: rpm,
    remaining: Math.max(0, rpm - count),
    resetAt: now + Math.max(0, ttlMs),
    tokensUsed: tokens,
  };
}

/** One process: counters in a Map (exact, since the event loop runs one request at a time). */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { endsAt: number; requests: number; tokens: number }>();
  private readonly sweeper = setInterval(() => {
    const now = Date.now();
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key);
  }, WINDOW_MS);

  constructor() {
    this.sweeper.unref();
  }

  async take(keyId: string, rpm: number, tpm: number | undefined): Promise<Decision> {
    const now = Date.now();
    let window = this.windows.get(keyId);
    if (!window || window.endsAt <= now) {
      window = { endsAt: now + WINDOW_MS, requests: 0, tokens: 0 };
      this.windows.set(keyId, window);
    }
    const overTokens = tpm !== undefined && window.tokens >= tpm;
    if (!overTokens) window.requests += 1;
    return decide(window.requests, window.tokens, window.endsAt - now, rpm, overTokens, now);
  }

  addTokens(keyId: string, tokens: number): void {
    const window = this.windows.get(keyId);
    if (window && window.endsAt > Date.now()) window.tokens += tokens;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/**
 * KEYS: the key's window hash, the API-key epoch. ARGV: window ms, tpm (0 = none).
 * Returns {requests, ttl ms, tokens, epoch, refused for tokens 0|1}. A request refused for tokens is not
 * counted; one refused for requests is (as every attempt is, as in @fastify/rate-limit).
 */
const TAKE = `
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
local tpm = tonumber(ARGV[2])
if tpm > 0 and tokens >= tpm then
  return {tonumber(redis.call('HGET', KEYS[1], 'r') or '0'), redis.call('PTTL', KEYS[1]), tokens, epoch, 1}
end
local count = redis.call('HINCRBY', KEYS[1], 'r', 1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl, tokens, epoch, 0}
`;

/** Tokens go to the window that is open now; with none open (it ended) there is nothing to charge. */
const ADD_TOKENS = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 't', ARGV[1]) end
return 0
`;

type Scripted = Redis & {
  arenaTake(window: string, epoch: string, windowMs: number, tpm: number): Promise<[number, number, number, number, number]>;
  arenaAddTokens(window: string, tokens: number): Promise<number>;
};

/**
 * Shared by every replica: one atomic script per request. If Redis fails, each replica limits on its
 * own until it is back (a per-replica limit beats refusing every request or limiting none): a key's
 * limit then holds on each replica, so over N replicas it may get up to N times its rpm.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Scripted;
  private readonly fallback = new MemoryRateLimiter();

  constructor(
    redis: Redis,
    private readonly prefix: string,
    readonly epochKey: string,
    private readonly onError: (error: unknown) => void,
    /** Whether Redis is connected now; defaults to the command connection's own state. */
    private readonly isAvailable: () => boolean = () => redis.status === 'ready',
  ) {
    redis.defineCommand('arenaTake', { numberOfKeys: 2, lua: TAKE });
    redis.defineCommand('arenaAddTokens', { numberOfKeys: 1, lua: ADD_TOKENS });
    this.redis = redis as Scripted;
  }

  private windowKey(keyId: string): string {
    return `${this.prefix}rl:${keyId}`;
  }

  async take(keyId: string, rpm: number, tpm: number | undefined): Promise<Decision> {
    const now = Date.now();
    // Known to be away (SharedEvents reports it once): no failed round trip and no log line per request.
    if (!this.isAvailable()) return this.fallback.take(keyId, rpm, tpm);
    try {
      const [count, ttl, tokens, epoch, refusedForTokens] = await this.redis.arenaTake(this.windowKey(keyId), this.epochKey, WINDOW_MS, tpm ?? 0);
      return { ...decide(count, tokens, ttl, rpm, refusedForTokens === 1, now), epoch };
    } catch (error) {
      this.onError(error);
      return this.fallback.take(keyId, rpm, tpm);
    }
  }

  addTokens(keyId: string, tokens: number): void {
    if (tokens <= 0) return;
    this.fallback.addTokens(keyId, tokens);
    if (this.isAvailable()) this.redis.arenaAddTokens(this.windowKey(keyId), tokens).catch(this.onError);
  }

  close(): void {
    // The connection belongs to SharedEvents, which closes it.
    this.fallback.close();
  }
}
