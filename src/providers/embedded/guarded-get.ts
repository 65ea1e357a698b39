import http from 'node:http';
import https from 'node:https';
import { BackendError } from '../types.js';
import type { PullPolicy } from './pull-policy.js';

/** Registries answer a blob with a redirect to a CDN, which may redirect once more; ten is plenty. */
const MAX_REDIRECTS = 10;
/** A host that sends nothing for this long has stalled (the same limit fetch() applies by default). */
const IDLE_TIMEOUT_MS = 300_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface GuardedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body; read it to the end or destroy it. */
  body: http.IncomingMessage;
  /**
   * `X-Linked-Etag` of the first hop that sent one: Hugging Face announces a large file's sha256 there,
   * on the answer that redirects to its CDN rather than on the CDN's answer.
   */
  linkedEtag?: string;
}

/** Node's connection errors say what failed in their code and message; no URL is in them. */
export function connectionErrorText(error: unknown): string {
  const { message, code } = error as Error & { code?: string };
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

function request(url: URL, policy: PullPolicy, headers: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    // No shared agent: a pooled socket would skip the lookup, and with it the address check.
    const req = client.request(url, { headers, signal, agent: false, lookup: policy.lookupFor(url.hostname) }, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A GET for a pull: only http(s), each hop's host checked by `policy` (literal addresses before
 * connecting, names in the lookup of the connection itself), redirects followed here so that every
 * hop is checked, at most MAX_REDIRECTS of them. Errors never carry the URL, whose query may hold a
 * token; a refused host is a BackendError with status 400, anything else is thrown as it came.
 */
export async function guardedGet(
  start: string,
  policy: PullPolicy,
  signal: AbortSignal,
  headers: Record<string, string> = {},
): Promise<GuardedResponse> {
  let url = new URL(start);
  let linkedEtag: string | undefined;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BackendError(`download failed: redirected to a ${url.protocol} URL; only http(s) can be downloaded`, 502);
    }
    policy.checkLiteralHost(url.hostname);
    const response = await request(url, policy, headers, signal);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    const linked = response.headers['x-linked-etag'];
    linkedEtag ??= Array.isArray(linked) ? linked[0] : linked;
    if (!REDIRECTS.has(status) || location === undefined) return { status, headers: response.headers, body: response, linkedEtag };
    response.destroy();
    if (hop >= MAX_REDIRECTS) throw new BackendError(`download failed: more than ${MAX_REDIRECTS} redirects`, 502);
    try {
      url = new URL(location, url);
    } catch {
      throw new BackendError('download failed: redirected to an invalid URL', 502);
    }
  }
}

/** Reads a small body (a manifest) whole, refusing one larger than `limit` bytes. */
export async function readSmallBody(body: http.IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new BackendError(`answer larger than ${limit} bytes`, 502);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
