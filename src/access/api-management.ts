import type { Config } from '../config.js';
import { ApiKeys } from './api-keys.js';
import { Catalog } from './catalog.js';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit.js';
import { SharedEvents, type RedisLog } from './shared-events.js';
import { UsageLedger } from './usage-ledger.js';
import type { Store } from '../store/database.js';

/**
 * API management wired into the request cycle: API keys (auth.ts asks them), per-key rate limits,
 * model allow-lists, the catalog's inactive models and defaults, and the usage ledger, shared by
 * every replica through the database and Redis.
 */
export interface ApiManagement {
  shared: SharedEvents;
  keys: ApiKeys;
  catalog: Catalog;
  limiter: RateLimiter;
  usageLedger: UsageLedger;
}

export async function openApiManagement(config: Config, store: Store, log: (error: unknown, what: string) => void, redisLog?: RedisLog): Promise<ApiManagement> {
  const shared = await SharedEvents.open(config.redisUrl, config.redisPrefix, (error) => log(error, 'Redis failed'), redisLog);
  const keys = await ApiKeys.open(store.db, shared, (error) => log(error, 'API key bookkeeping (last use, shared epoch) failed'), config.apiKeySecret);
  const catalog = await Catalog.open(store.db, shared, (error) => log(error, 'catalog reload failed'));
  const limiter = shared.redis
    ? new RedisRateLimiter(shared.redis, shared.prefix, keys.epochKey, (error) => log(error, 'Redis rate limit failed; limiting per replica'), () => shared.connected)
    : new MemoryRateLimiter();
  const usageLedger = new UsageLedger(store, (error) => log(error, 'usage write failed; kept for retry'));
  await usageLedger.shareFlushes(shared);
  return { shared, keys, catalog, limiter, usageLedger };
}

/** Writes what is buffered and lets go of Redis; runs before the store closes. */
export async function closeApiManagement(management: ApiManagement): Promise<void> {
  management.catalog.close();
  management.limiter.close();
  await Promise.all([management.usageLedger.close(), management.keys.close()]);
  await management.shared.close();
}
