import { mayManageModels, type Principal } from './auth.js';

/**
 * Ollama's `keep_alive`: a number of seconds, or a Go duration string ("5m", "1h30m", "300ms", "-1m").
 * A bare numeric string ("-1", "30") is seconds too, as Ollama reads it. 0 unloads the model right
 * after the request; any negative value keeps it loaded forever.
 */

class KeepAliveError extends Error {
  readonly statusCode = 400;
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds to keep the model loaded; undefined when the request did not say; -1 for forever. */
export function parseKeepAlive(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new KeepAliveError('keep_alive must be a finite number of seconds or a duration like "5m"');
    return value < 0 ? -1 : Math.round(value * 1000);
  }
  if (typeof value !== 'string') throw new KeepAliveError('keep_alive must be a number of seconds or a duration string like "5m"');
  const text = value.trim();
  if (text === '') return undefined;
  if (/^[-+]?\d+(\.\d+)?$/.test(text)) return parseKeepAlive(Number(text));
  const match = /^([-+]?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (!match) throw new KeepAliveError(`keep_alive: invalid duration "${value}" (use seconds or a duration like "5m", "1h30m", "-1")`);
  let ms = 0;
  for (const [, amount, unit] of match[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  if (match[1] === '-' && ms > 0) return -1;
  return Math.round(ms);
}

/**
 * The keep_alive a caller may set. It decides how long a model stays in memory for every client, so
 * it is model management: for a caller who may not manage models (an API key without the `manage`
 * scope) it is ignored and the server's default applies. (Its explicit unload, keep_alive 0 with
 * nothing to generate, is refused where it is asked for.)
 */
export function keepAliveFor(principal: Principal | undefined, keepAliveMs: number | undefined): number | undefined {
  return mayManageModels(principal) ? keepAliveMs : undefined;
}
