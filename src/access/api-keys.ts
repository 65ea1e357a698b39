import crypto from 'node:crypto';
import { type KeyVerifier, type Principal } from './auth.js';
import { SCOPES, type Scope } from '../domain/access.js';
import { normaliseModelName } from '../shared/model-names.js';
import type { SharedEvents } from './shared-events.js';
import { ApiKeyStore, type ApiKeyRow } from '../store/api-keys.js';
import type { UsageTotals } from '../domain/access.js';
import type { Db } from '../store/database.js';
import { sharedSetting } from '../store/settings.js';
import type { KeyView, Tier } from '../domain/access.js';

export type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** The management API's tiers: requests per minute. */
const TIER_RPM: Record<Tier, number> = { standard: 60, premium: 300 };

/** Every secret starts with this, so people (and secret scanners) recognise it. */
const KEY_PREFIX = 'oa-';
/** The management API's message for a key that does not open the API, whatever the reason. */
const INVALID_KEY = 'Invalid API key provided';

/**
 * How long a verified key is trusted from memory. With Redis, the shared epoch (read in the rate
 * limiter's round trip) invalidates at once anyway; without it this bounds how stale another replica
 * could be, and a single process invalidates its own cache at once.
 */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 10_000;
const LAST_USED_FLUSH_MS = 5_000;

export interface NewKey {
  name: string;
  tier: Tier;
  rpm?: number;
  tpm?: number;
  models?: string[];
  expiresAt?: string;
  scopes?: Scope[];
}

type Verdict = KeyPrincipal | { refused: string };

interface CacheEntry {
  verdict: Verdict;
  /** The key's expiry (ms), checked on every use since a key can expire while cached. */
  expiresAt?: number;
  staleAt: number;
  /** The key epoch known before the row was read: a later epoch means the row may be stale. */
  epoch: number;
}

function isTier(value: string): value is Tier {
  return value === 'standard' || value === 'premium';
}

/** A stored scopes column as the scopes this server knows (an unknown one grants nothing). */
function scopesOf(row: ApiKeyRow): Scope[] {
  const stored: unknown = JSON.parse(row.scopes);
  return Array.isArray(stored) ? SCOPES.filter((scope) => stored.includes(scope)) : [];
}

/**
 * API keys: issuing, listing, revoking and rotating them, and verifying them on every request.
 * Secrets are stored only as HMAC-SHA256 hashes under a server secret kept in the database (so every
 * replica computes the same hash) and are looked up by that hash: a keyed hash is the right tool for
 * 256-bit random secrets, and it costs microseconds where a password hash would cost milliseconds.
 */
export class ApiKeys implements KeyVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly epochs = new WeakMap<KeyPrincipal, number>();
  /** The highest key epoch this replica has seen; bumped on every revocation and rotation. */
  private epoch = 0;
  /** Bumped whenever the cache is cleared, so a lookup that raced a clear does not cache its result. */
  private generation = 0;
  private anyKeysKnown = false;
  /** When each key was last used (epoch ms): written as a date only when flushed, not on every request. */
  private readonly lastUsed = new Map<string, number>();
  private readonly flushTimer: NodeJS.Timeout;
  private flushing?: Promise<void>;

  private constructor(
    private readonly store: ApiKeyStore,
    private readonly hmacSecret: crypto.KeyObject,
    private readonly shared: SharedEvents,
    private readonly onError: (error: unknown) => void,
  ) {
    this.flushTimer = setInterval(() => void this.flushLastUsed(), LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  /**
   * `hmacSecret` (API_KEY_SECRET) keeps the hash's key out of the database, so that a copy of the
   * database alone cannot test guesses against the hashes; without it one is made and stored there
   * (shared by every replica). Changing it later invalidates every key.
   */
  static async open(db: Db, shared: SharedEvents, onError: (error: unknown) => void, hmacSecret?: string): Promise<ApiKeys> {
    const key = hmacSecret
      ? Buffer.from(hmacSecret, 'utf8')
      : Buffer.from(await sharedSetting(db, 'api_key_hmac_secret', () => crypto.randomBytes(32).toString('base64')), 'base64');
    const keys = new ApiKeys(new ApiKeyStore(db), crypto.createSecretKey(key), shared, onError);
    keys.anyKeysKnown = (await keys.store.count()) > 0;
    await keys.readSharedEpoch();
    await shared.on('keys', () => {
      keys.anyKeysKnown = true;
      keys.clearCache();
    });
    // Changes made while Redis was away reached no other replica: forget what was cached, and whether
    // any key exists (the first one may have been made meanwhile). The epoch is read afresh, even if
    // lower: a Redis restarted without its data starts counting again.
    shared.onReconnect(() => {
      keys.clearCache();
      void keys.readSharedEpoch();
      keys.store.count().then((count) => (keys.anyKeysKnown ||= count > 0), onError);
    });
    return keys;
  }

  private async readSharedEpoch(): Promise<void> {
    if (!this.shared.redis || !this.shared.connected) return;
    try {
      this.epoch = Number(await this.shared.redis.get(this.epochKey)) || 0;
    } catch (error) {
      this.onError(error);
    }
  }

  /** Where the shared key epoch lives in Redis (read by the rate limiter's script). */
  get epochKey(): string {
    return `${this.shared.prefix}keys:epoch`;
  }

  /** The keyed hash (HMAC-SHA-256) a key is stored under; the authenticator compares the admin token's too. */
  digest(secret: string): Buffer {
    return crypto.createHmac('sha256', this.hmacSecret).update(secret).digest();
  }

  private hash(secret: string): string {
    return this.digest(secret).toString('hex');
  }

  private clearCache(): void {
    this.cache.clear();
    this.generation += 1;
  }

  async anyKeys(): Promise<boolean> {
    return this.anyKeysKnown;
  }

  /** `digest`: the secret's digest when the caller has made it already. */
  async verify(secret: string, digest = this.digest(secret)): Promise<Verdict> {
    const hash = digest.toString('hex');
    const now = Date.now();
    let entry = this.cache.get(hash);
    if (!entry || entry.staleAt <= now) entry = await this.load(hash, secret);
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) return { refused: INVALID_KEY };
    return entry.verdict;
  }

  private async load(hash: string, secret: string): Promise<CacheEntry> {
    const epoch = this.epoch;
    const generation = this.generation;
    const row = await this.store.byHash(hash);
    const entry = this.entryFor(row, secret, epoch);
    if (generation === this.generation) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(hash, entry);
    }
    return entry;
  }

  private entryFor(row: ApiKeyRow | undefined, secret: string, epoch: number): CacheEntry {
    const staleAt = Date.now() + CACHE_TTL_MS;
    if (!row || row.revoked_at !== null) {
      // A token that does not look like one of our keys was meant as the admin token: keep seeds
      // 000/001's message for it.
      const refused = secret.startsWith(KEY_PREFIX) ? INVALID_KEY : 'Invalid authorization token';
      return { verdict: { refused }, staleAt, epoch };
    }
    const principal = ApiKeys.principalOf(row);
    this.epochs.set(principal, epoch);
    return { verdict: principal, expiresAt: row.expires_at === null ? undefined : Date.parse(row.expires_at), staleAt, epoch };
  }

  /**
   * Called with the shared epoch read during this request's rate-limit round trip: if a key changed
   * since this principal was read from the database, it must be read again (true), and every cached
   * key is dropped. This is what makes a revocation on one replica effective at once on the others,
   * without waiting for the pub/sub message.
   */
  isStale(principal: KeyPrincipal, sharedEpoch: number): boolean {
    if (sharedEpoch > this.epoch) {
      this.epoch = sharedEpoch;
      this.clearCache();
    }
    return (this.epochs.get(principal) ?? -1) < sharedEpoch;
  }

  private static principalOf(row: ApiKeyRow): KeyPrincipal {
    const tier = isTier(row.tier) ? row.tier : 'standard';
    return {
      kind: 'key',
      keyId: row.id,
      name: row.name,
      tier,
      rpm: row.rpm ?? TIER_RPM[tier],
      ...(row.tpm !== null ? { tpm: row.tpm } : {}),
      ...(row.models !== null ? { models: JSON.parse(row.models) as string[] } : {}),
      scopes: scopesOf(row),
    };
  }

  /**
   * The key as a caller holding it would be seen now, by id (a job resumed without the request that
   * started it); undefined if it is unknown, revoked or expired.
   */
  async principal(id: string): Promise<KeyPrincipal | undefined> {
    const row = await this.store.byId(id);
    if (!row || row.revoked_at !== null || (row.expires_at !== null && Date.parse(row.expires_at) <= Date.now())) return undefined;
    return ApiKeys.principalOf(row);
  }

  /** Whether the model is on the key's allow-list (a key without one may use every model). */
  static allows(principal: KeyPrincipal, model: string): boolean {
    if (!principal.models) return true;
    const wanted = normaliseModelName(model).toLowerCase();
    return principal.models.some((allowed) => normaliseModelName(allowed).toLowerCase() === wanted);
  }

  /** Remembers the key was used; written in batches, not per request. */
  noteUse(keyId: string): void {
    this.lastUsed.set(keyId, Date.now());
  }

  async flushLastUsed(): Promise<void> {
    if (this.flushing || this.lastUsed.size === 0) return this.flushing;
    const used = new Map(this.lastUsed);
    this.lastUsed.clear();
    this.flushing = this.store
      .touch(new Map([...used].map(([id, at]) => [id, new Date(at).toISOString()])))
      .catch((error: unknown) => {
        for (const [id, at] of used) if (!this.lastUsed.has(id)) this.lastUsed.set(id, at);
        this.onError(error);
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Tells every replica (and this one) that keys changed; with Redis, bumps the shared epoch first.
   * The database already holds the change: if Redis fails here, this replica still applies it at once
   * and the others within their cache lifetime.
   */
  private async changed(): Promise<void> {
    this.anyKeysKnown = true;
    if (this.shared.redis && this.shared.connected) {
      try {
        this.epoch = Math.max(this.epoch, await this.shared.redis.incr(this.epochKey));
      } catch (error) {
        this.onError(error);
      }
    }
    this.clearCache();
    await this.shared.publish('keys', null);
  }

  private newSecret(): { secret: string; hash: string; prefix: string } {
    const secret = KEY_PREFIX + crypto.randomBytes(32).toString('base64url');
    return { secret, hash: this.hash(secret), prefix: secret.slice(0, KEY_PREFIX.length + 6) };
  }

  async create(input: NewKey): Promise<KeyView & { key: string }> {
    const { secret, hash, prefix } = this.newSecret();
    const row: ApiKeyRow = {
      id: crypto.randomUUID(),
      name: input.name,
      hash,
      prefix,
      tier: input.tier,
      rpm: input.rpm ?? null,
      tpm: input.tpm ?? null,
      models: input.models ? JSON.stringify(input.models.map(normaliseModelName)) : null,
      scopes: JSON.stringify(input.scopes ?? []),
      expires_at: input.expiresAt ?? null,
      created_at: new Date().toISOString(),
      last_used_at: null,
      revoked_at: null,
    };
    await this.store.insert(row);
    await this.changed();
    return { ...ApiKeys.view(row), key: secret };
  }

  async list(): Promise<(KeyView & { usage: UsageTotals })[]> {
    await this.flushLastUsed();
    const [rows, usage] = await Promise.all([this.store.list(), this.store.usageByKey()]);
    const none: UsageTotals = { requests: 0, prompt_tokens: 0, completion_tokens: 0 };
    return rows.map((row) => ({ ...ApiKeys.view(row), usage: usage.get(row.id) ?? none }));
  }

  async get(id: string): Promise<KeyView | undefined> {
    const row = await this.store.byId(id);
    return row && ApiKeys.view(row);
  }

  /** Revokes the key everywhere before answering; undefined for an unknown id. */
  async revoke(id: string): Promise<KeyView | undefined> {
    if (!(await this.store.byId(id))) return undefined;
    await this.store.revoke(id, new Date().toISOString());
    await this.changed();
    return this.get(id);
  }

  /** A new secret for the same key (same id, limits and history); the old one stops working at once. */
  async rotate(id: string): Promise<(KeyView & { key: string }) | 'revoked' | undefined> {
    const existing = await this.store.byId(id);
    if (!existing) return undefined;
    const { secret, hash, prefix } = this.newSecret();
    if (!(await this.store.replaceSecret(id, hash, prefix))) return 'revoked';
    await this.changed();
    return { ...ApiKeys.view({ ...existing, hash, prefix }), key: secret };
  }

  /** Gives a key new scopes, at once on every replica; undefined for an unknown id. */
  async setScopes(id: string, scopes: Scope[]): Promise<KeyView | 'revoked' | undefined> {
    const existing = await this.store.byId(id);
    if (!existing) return undefined;
    if (existing.revoked_at !== null) return 'revoked';
    await this.store.setScopes(id, JSON.stringify(scopes));
    await this.changed();
    return this.get(id);
  }

  static view(row: ApiKeyRow): KeyView {
    const tier = isTier(row.tier) ? row.tier : 'standard';
    const expired = row.expires_at !== null && Date.parse(row.expires_at) <= Date.now();
    return {
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      tier: row.tier,
      rpm: row.rpm ?? TIER_RPM[tier],
      tpm: row.tpm,
      models: row.models === null ? null : (JSON.parse(row.models) as string[]),
      scopes: scopesOf(row),
      expires_at: row.expires_at,
      created_at: row.created_at,
      last_used_at: row.last_used_at,
      revoked_at: row.revoked_at,
      status: row.revoked_at !== null ? 'revoked' : expired ? 'expired' : 'active',
    };
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    await this.flushLastUsed();
  }
}
