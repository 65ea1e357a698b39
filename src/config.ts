import path from 'node:path';
import os from 'node:os';
import { DEFAULT_REGISTRY } from './providers/embedded/ollama-registry.js';

/** Every setting, read once from the environment. */
export interface Config {
  port: number;
  host: string;
  modelsDir: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Put before every Redis key and channel, so several deployments (or test runs) can share one Redis. */
  redisPrefix: string;
  ollamaHosts: string[];
  /** Each entry is a base URL, optionally followed by `|apiKey`. */
  openaiBackends: { baseUrl: string; apiKey?: string }[];
  webChatToken?: string;
  /** The key of the API-key hash (HMAC); unset, one is made and kept in the database. */
  apiKeySecret?: string;
  corsOrigins: string[];
  /** How long an idle model stays loaded, in milliseconds (Ollama's default is five minutes). */
  keepAliveMs: number;
  /** llama.cpp threads per context; 0 lets the engine decide. */
  threads: number;
  /** Parallel sequences per loaded model: how many requests generate at once on one model. */
  parallel: number;
  /** Requests that may generate at once on one model when they come together (an Arena's instances): those beyond `parallel` in a context made for them. */
  maxParallel: number;
  /** Idle time after which a server-side session is forgotten. */
  sessionTtlMs: number;
  logLevel: string;
  /** How long in-flight requests may run on after SIGTERM before their connections are cut. */
  shutdownGraceMs: number;
  /** Whether OLLAMA_HOSTS was set explicitly; if not, 127.0.0.1:11434 is used only when it answers. */
  ollamaHostsExplicit: boolean;
  /** Where the embedded engine pulls Ollama names from when no Ollama server is there to do it. */
  ollamaRegistry: string;
  /** Host names and IP addresses or CIDR ranges pulls may reach although they are refused by default. */
  pullAllowHosts: string[];
  /** The largest request body accepted, in bytes; larger ones get a 413 before they are read. */
  bodyLimitBytes: number;
  /** How often a replica renews the leases of the evaluations it runs, and looks for expired ones to resume. */
  evalLeaseRenewMs: number;
  /** How long an evaluation's lease holds unrenewed: a replica dead this long has its evaluations resumed elsewhere. */
  evalLeaseExpiryMs: number;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function int(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${value}`);
  return Math.trunc(n);
}

function withScheme(url: string, scheme = 'http'): string {
  return /^https?:\/\//.test(url) ? url.replace(/\/+$/, '') : `${scheme}://${url.replace(/\/+$/, '')}`;
}

/**
 * The embedded engine runs one generation per thread best on small CPUs: measured on a 2-core
 * machine, the test model ran at ~1,000 tokens/s with 1 thread and several times slower with 2 while
 * another generation or the event loop competed for the second core (see bench/RESULTS.md).
 */
function defaultThreads(): number {
  const cores = os.availableParallelism();
  return cores <= 2 ? 1 : Math.max(1, Math.floor(cores / 2));
}

/**
 * 50 MB by default: OpenAI's limit on a request's total size with images, so that a client sending
 * a 20 MB image as base64 (about 27 MB of JSON) is served here as it is there.
 */
function bodyLimit(value: string | undefined): number {
  const megabytes = value === undefined || value === '' ? 50 : Number(value);
  if (!Number.isFinite(megabytes) || megabytes <= 0) throw new Error(`BODY_LIMIT_MB must be a positive number of megabytes: ${value}`);
  return Math.floor(megabytes * 1024 * 1024);
}

/** Seconds, fractions allowed (tests use short leases), as milliseconds. */
function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds: ${value}`);
  return Math.round(n * 1000);
}

/** A lease must outlive a few renewals, or a single slow write would hand a live evaluation to another replica. */
function evalLease(env: NodeJS.ProcessEnv): { evalLeaseRenewMs: number; evalLeaseExpiryMs: number } {
  const evalLeaseRenewMs = seconds('EVAL_LEASE_RENEW_SECONDS', env.EVAL_LEASE_RENEW_SECONDS, 5);
  const evalLeaseExpiryMs = seconds('EVAL_LEASE_EXPIRY_SECONDS', env.EVAL_LEASE_EXPIRY_SECONDS, 30);
  if (evalLeaseExpiryMs < 2 * evalLeaseRenewMs) throw new Error('EVAL_LEASE_EXPIRY_SECONDS must be at least twice EVAL_LEASE_RENEW_SECONDS');
  return { evalLeaseRenewMs, evalLeaseExpiryMs };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env.DATA_DIR ?? 'data');
  return {
    port: int(env.PORT, 7860),
    host: env.HOST ?? '127.0.0.1',
    modelsDir: path.resolve(env.MODELS_DIR ?? path.join(dataDir, 'models')),
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX || 'ollama-arena:',
    ollamaHosts: env.OLLAMA_HOSTS !== undefined ? list(env.OLLAMA_HOSTS).map((host) => withScheme(host)) : ['http://127.0.0.1:11434'],
    ollamaHostsExplicit: env.OLLAMA_HOSTS !== undefined,
    // Registries speak https, as Ollama assumes for a host without a scheme.
    ollamaRegistry: env.OLLAMA_REGISTRY ? withScheme(env.OLLAMA_REGISTRY, 'https') : DEFAULT_REGISTRY,
    pullAllowHosts: list(env.PULL_ALLOW_HOSTS),
    openaiBackends: list(env.OPENAI_BACKENDS).map((entry) => {
      const [url, apiKey] = entry.split('|');
      return { baseUrl: withScheme(url!), apiKey: apiKey || undefined };
    }),
    webChatToken: env.WEB_CHAT_TOKEN || undefined,
    apiKeySecret: env.API_KEY_SECRET || undefined,
    corsOrigins: list(env.CORS_ORIGINS),
    keepAliveMs: int(env.KEEP_ALIVE_SECONDS, 300) * 1000,
    threads: int(env.LLAMA_THREADS, defaultThreads()),
    parallel: Math.max(1, int(env.LLAMA_PARALLEL, 4)),
    maxParallel: Math.max(1, int(env.LLAMA_MAX_PARALLEL, 8)),
    sessionTtlMs: int(env.SESSION_TTL_SECONDS, 24 * 3600) * 1000,
    logLevel: env.LOG_LEVEL ?? 'info',
    shutdownGraceMs: int(env.SHUTDOWN_GRACE_SECONDS, 10) * 1000,
    bodyLimitBytes: bodyLimit(env.BODY_LIMIT_MB),
    ...evalLease(env),
  };
}
