import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { Pool, errors as undiciErrors } from 'undici';
import { BackendError, type DoneReason, type FinishStats, type ServerAnswer, type StreamPart } from './provider.js';
import { type ToolCall } from '../domain/chat.js';
import type { AbortLike } from '../shared/abort-switch.js';

/**
 * The HTTP client the Ollama and OpenAI-compatible backends share: one pool of keep-alive connections
 * per upstream, upstream failures turned into BackendErrors the router understands (connection
 * trouble and 5xx are retryable on another replica, 4xx are the client's), and NDJSON / SSE bodies
 * read as they arrive. It is undici's Pool: bodies are Node streams read straight from the socket (no
 * web-stream layer per chunk, as fetch has), and per request it costs about a quarter less CPU than
 * node:http's ClientRequest and agent (bench/RESULTS.md, Gateway overhead).
 */

export interface UpstreamRequest {
  method?: 'GET' | 'POST' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortLike;
  /** Time allowed until the response headers arrive (model loads happen before them on Ollama). */
  timeoutMs?: number;
  /** Servers may pick the stream format from it (ours sends SSE on /api/chat for text/event-stream). */
  accept?: string;
}

/** Long enough for a big model to load before its first token; Ollama's own load timeout is 5 minutes. */
export const GENERATION_TIMEOUT_MS = 5 * 60_000;
/** Listings, pings and other metadata calls must never hold a client's request for long. */
export const METADATA_TIMEOUT_MS = 5_000;

export class Upstream {
  /** The path every request's path is appended to (`/v1` of `http://host:8000/v1`). */
  private readonly basePath: string;
  private readonly pool: Pool;
  /** The headers of a request by what it accepts and whether it has a body, made once rather than per request. */
  private readonly headerSets = new Map<string, Record<string, string>>();

  constructor(
    baseUrl: string,
    /** Shown in error messages; never contains credentials. */
    readonly label: string,
    private readonly headers: Record<string, string> = {},
    /** Default time to the response headers of a generation (see GENERATION_TIMEOUT_MS). */
    private readonly responseTimeoutMs = GENERATION_TIMEOUT_MS,
    /**
     * The provider's reading of a client error its server answered (a 4xx): a typed error where the
     * wire format says what went wrong (a prompt longer than the context), else undefined.
     */
    private readonly clientError?: (status: number, message: string, body: string) => BackendError | undefined,
  ) {
    const base = new URL(baseUrl);
    this.basePath = base.pathname.replace(/\/+$/, '');
    // Room for many streams at once. No limit on a body's pauses: a generation may think for long
    // between two tokens, and a client's departure or the shutdown stops it instead.
    this.pool = new Pool(base.origin, { connections: 256, bodyTimeout: 0 });
  }

  /** Sends a request and resolves with the answer once its headers are in, whatever its status. */
  async request(path: string, { method = 'GET', body, signal, timeoutMs = this.responseTimeoutMs, accept = 'application/json' }: UpstreamRequest = {}): Promise<ServerAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    try {
      const answer = await this.pool.request({
        path: this.basePath + path,
        method,
        headers: this.headersFor(accept, payload !== undefined),
        body: payload,
        signal,
        headersTimeout: timeoutMs,
      });
      const type = answer.headers['content-type'];
      return { status: answer.statusCode, contentType: Array.isArray(type) ? type[0] : type, body: answer.body };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof undiciErrors.HeadersTimeoutError) throw new BackendError(`${this.label} did not answer within ${Math.round(timeoutMs / 1000)} s`, 504, true);
      throw this.unreachable(error);
    }
  }

  private headersFor(accept: string, withBody: boolean): Record<string, string> {
    const key = withBody ? `${accept}\0json` : accept;
    let headers = this.headerSets.get(key);
    if (!headers) {
      headers = Object.freeze(withBody ? { ...this.headers, accept, 'content-type': 'application/json' } : { ...this.headers, accept });
      this.headerSets.set(key, headers);
    }
    return headers;
  }

  /** A network failure before any answer: another replica may well succeed. */
  unreachable(error: unknown): BackendError {
    return new BackendError(`${this.label} is unreachable: ${networkTrouble(error)}`, 502, true);
  }

  /** Sends a request and returns its JSON body, or throws the upstream's error as a BackendError. */
  async json<T>(path: string, options: UpstreamRequest = {}): Promise<T> {
    const answer = await this.request(path, { timeoutMs: METADATA_TIMEOUT_MS, ...options });
    const text = await readBody(answer.body).catch((error: unknown) => {
      throw options.signal?.aborted ? options.signal.reason : this.unreachable(error);
    });
    if (!isOk(answer)) throw this.failure(answer.status, text);
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new BackendError(`${this.label} sent a body that is not JSON`, 502, true);
    }
  }

  /** Throws the upstream's error unless the answer is a 2xx (consuming the error body). */
  async ensureOk(answer: ServerAnswer): Promise<void> {
    if (isOk(answer)) return;
    const text = await readBody(answer.body).catch(() => '');
    throw this.failure(answer.status, text);
  }

  /**
   * Maps an upstream error status to ours. 404 and other 4xx keep their status and the upstream's
   * message (they are about the client's request); 5xx becomes 502 and may be retried elsewhere. A 401
   * or 403 is about the gateway's own key for that server, not the client's: passed on as such it
   * would tell the client its credentials are wrong, so it is a 502 too (another replica may accept).
   */
  failure(status: number, body: string): BackendError {
    const message = errorMessage(body) ?? `${this.label} answered ${status}`;
    if (status >= 500) return new BackendError(`${this.label} failed: ${message}`, 502, true);
    if (status === 401 || status === 403) return new BackendError(`${this.label} refused the gateway's credentials (${status}): ${message}`, 502, true);
    return this.clientError?.(status, message, body) ?? new BackendError(message, status, false);
  }

  /** A liveness probe: a GET of `path` answered with a 2xx within two seconds; changes are logged. */
  async alive(path: string, reachability: ReachabilityLog): Promise<boolean> {
    try {
      await this.json(path, { timeoutMs: 2_000 });
      reachability.note(true);
      return true;
    } catch (error) {
      reachability.note(false, error);
      return false;
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/** The slice of pino the backends use, so tests and main.ts can pass any logger. */
export interface BackendLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/**
 * Logs when an upstream becomes reachable or unreachable: once per change, not on every failed call
 * (listings run every few seconds). A host that is optional and absent from the start stays silent.
 */
export class ReachabilityLog {
  private reachable?: boolean;

  constructor(
    private readonly backend: string,
    /** `Ollama server`, `OpenAI-compatible server`. */
    private readonly what: string,
    private readonly logger?: BackendLogger,
    private readonly optional = false,
  ) {}

  note(reachable: boolean, error?: unknown): void {
    if (this.reachable === reachable) return;
    const first = this.reachable === undefined;
    this.reachable = reachable;
    if (reachable) this.logger?.info({ backend: this.backend }, first ? `${this.what} found` : `${this.what} is back`);
    else if (!this.optional || !first) this.logger?.warn({ backend: this.backend, reason: (error as Error).message }, `${this.what} unreachable`);
  }
}

function isOk(answer: ServerAnswer): boolean {
  return answer.status >= 200 && answer.status < 300;
}

/** What went wrong on the network, shortest: the system's code (ECONNREFUSED), else undici's message ("other side closed"). */
function networkTrouble(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && !code.startsWith('UND_ERR') ? code : (error as Error).message;
}

/** `{"error": "..."}` (Ollama) or `{"error": {"message": "..."}}` (OpenAI); plain text as a fallback. */
function errorMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    const error = parsed.error;
    if (typeof error === 'string') return error;
    if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
      return (error as { message: string }).message;
    }
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  const text = body.trim().slice(0, 300);
  return text === '' ? undefined : text;
}

async function readBody(body: Readable): Promise<string> {
  body.setEncoding('utf8');
  let text = '';
  for await (const chunk of body) text += chunk as string;
  return text;
}

/*
 * Bodies are read in batches: everything one network chunk holds (often a whole short answer) is
 * split and parsed synchronously and handed on as one array, so each chunk crosses one async
 * boundary instead of one per line and per layer; on a streamed answer that was a measurable share
 * of the per-request cost.
 */

/** The body's complete lines, one array per network chunk (a line split across chunks, or a multi-byte character, is joined). */
async function* lineBatches(body: Readable): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.write(chunk as Buffer);
    const batch: string[] = [];
    let start = 0;
    let newline: number;
    while ((newline = buffer.indexOf('\n', start)) !== -1) {
      const end = newline > start && buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      batch.push(buffer.slice(start, end));
      start = newline + 1;
    }
    buffer = buffer.slice(start);
    if (batch.length > 0) yield batch;
  }
  buffer += decoder.end();
  if (buffer !== '') yield [buffer];
}

/** NDJSON: the JSON values of the non-empty lines, one array per network chunk. */
export async function* ndjsonBatches<T>(body: Readable): AsyncGenerator<T[]> {
  for await (const lines of lineBatches(body)) {
    const values: T[] = [];
    for (const line of lines) if (line.trim() !== '') values.push(JSON.parse(line) as T);
    if (values.length > 0) yield values;
  }
}

/**
 * Server-sent events: the `data` of each event (several `data:` lines joined by newlines), one array
 * per network chunk, ending at `[DONE]` or the end of the body. Comments, `event:` and `id:` lines
 * are skipped.
 */
export async function* sseBatches(body: Readable): AsyncGenerator<string[]> {
  let data: string[] = [];
  let finished = false;
  let linger: NodeJS.Timeout | undefined;
  // After [DONE] the body is still read to its end: leaving it early would destroy the socket and
  // cost a new connection (about a millisecond) on the next request instead of a keep-alive reuse.
  // A server that keeps the body open after [DONE] gets a second, then the connection is cut.
  try {
    for await (const lines of lineBatches(body)) {
      if (finished) continue;
      const events: string[] = [];
      for (const line of lines) {
        if (finished) break;
        if (line === '') {
          if (data.length > 0) {
            const event = data.join('\n');
            data = [];
            if (event === '[DONE]') {
              finished = true;
              linger = setTimeout(() => body.destroy(), 1_000);
            } else {
              events.push(event);
            }
          }
        } else if (line.startsWith('data:')) {
          data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
        }
      }
      if (events.length > 0) yield events;
    }
  } catch (error) {
    if (!finished) throw error; // cut after [DONE]: everything was read
  } finally {
    clearTimeout(linger);
  }
  if (!finished && data.length > 0 && data.join('\n') !== '[DONE]') yield [data.join('\n')];
}

/**
 * What a wire translator (from-ollama.ts, from-openai.ts) reads from the upstream's chunks: stream
 * parts, a finish whose figures the upstream may leave out (the loop below measures those), or an
 * error the upstream reported inside a stream that had already begun with a 200.
 */
export type UpstreamPart =
  | Exclude<StreamPart, { type: 'finish' }>
  | { type: 'finish'; stats: Partial<FinishStats> }
  | { type: 'error'; message: string };

/**
 * The generation loop both HTTP backends share: send the request, pass on the parts the wire format's
 * translator reads (`parts`), complete the finish with measured figures, and handle the three ways it
 * can go wrong: the client aborts (the upstream request is cut and the generation ends with `abort`,
 * as the embedded engine does), the consumer stops reading (the upstream connection is closed so it
 * stops generating), or the upstream fails (retryable only while no token has been passed on).
 */
export async function* generationStream(
  upstream: Upstream,
  path: string,
  body: unknown,
  signal: AbortSignal,
  accept: 'application/x-ndjson' | 'text/event-stream',
  /** The wire format's parts, one array per network chunk. */
  parts: (body: Readable) => AsyncIterable<UpstreamPart[]>,
): AsyncGenerator<StreamPart> {
  const label = upstream.label;
  const started = process.hrtime.bigint();
  let firstAt: bigint | undefined;
  let tokens = 0;
  let final: Partial<FinishStats> | undefined;
  // Tool calls go out with the finish: one passed on before a failure would forbid the router's
  // failover, though no client has seen anything of the answer yet.
  const toolCalls: ToolCall[] = [];
  const measured = (doneReason: DoneReason): FinishStats => {
    const end = process.hrtime.bigint();
    const first = firstAt ?? end;
    return {
      promptTokens: 0,
      completionTokens: tokens,
      loadDurationNs: 0,
      promptEvalDurationNs: Number(first - started),
      evalDurationNs: Number(end - first),
      totalDurationNs: Number(end - started),
      doneReason,
    };
  };
  if (signal.aborted) return;
  let answer: ServerAnswer;
  try {
    answer = await upstream.request(path, { method: 'POST', body, signal, accept });
  } catch (error) {
    if (signal.aborted) return yield { type: 'finish', stats: measured('abort') };
    throw error;
  }
  try {
    await upstream.ensureOk(answer);
    for await (const batch of parts(answer.body)) {
      for (const part of batch) {
        switch (part.type) {
          case 'error':
            throw new BackendError(`${label}: ${part.message}`, 502, tokens === 0);
          case 'tool-call':
            toolCalls.push(part.call);
            break;
          case 'finish':
            final = part.stats;
            break;
          case 'token':
          case 'thinking':
            firstAt ??= process.hrtime.bigint();
            tokens++;
            yield part;
            break;
          default:
            yield part;
        }
      }
    }
  } catch (error) {
    if (signal.aborted) return yield { type: 'finish', stats: measured('abort') };
    if (error instanceof BackendError) throw error;
    const reason = error instanceof SyntaxError ? 'sent a malformed stream' : `broke off the stream (${networkTrouble(error)})`;
    throw new BackendError(`${label} ${reason}`, 502, tokens === 0);
  } finally {
    // Closing the connection is how an HTTP upstream learns to stop generating.
    if (!answer.body.readableEnded) answer.body.destroy();
  }
  if (!final) throw new BackendError(`${label} ended the stream without a final message`, 502, tokens === 0);
  const stats = measured('stop');
  // Figures the upstream did not report (undefined) keep the measured values.
  for (const [key, value] of Object.entries(final)) if (value !== undefined) Object.assign(stats, { [key]: value });
  if (toolCalls.length > 0 && stats.doneReason === 'stop') stats.doneReason = 'tool_calls';
  for (const call of toolCalls) yield { type: 'tool-call', call };
  yield { type: 'finish', stats };
}
