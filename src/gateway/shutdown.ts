import type { Server, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { GenerationStats } from '../providers/types.js';
import { HttpError } from './errors.js';

/**
 * Graceful shutdown: the listener closes at once (new connections are refused, and a request that
 * still arrives on an open keep-alive connection gets Fastify's 503), requests in flight may finish
 * within the grace period, and whatever still runs after it is cut: its generations are stopped the
 * way a client disconnect stops them, and each cut request ends with a complete answer in its own
 * wire format (see ShutdownError). Only then do the close hooks unload models and write usage.
 */

/** How a generation the shutdown stopped ends: an error every surface knows how to render. */
export class ShutdownError extends HttpError {
  constructor(
    /** What the generation had produced when it was stopped, when the backend told it. */
    readonly stats?: GenerationStats,
  ) {
    super(503, 'the server is shutting down: the generation was stopped before its end', 'server_error', 'server_shutting_down');
    this.name = 'ShutdownError';
  }
}

/** `done_reason` (Ollama) of a generation cut by the shutdown. */
export const SHUTDOWN_DONE_REASON = 'shutdown';

/**
 * How long cut requests get to write their last line, and then how long their connections get to
 * close once cut, before the shutdown goes on without them. Cutting a generation stops it within a
 * token; a client that stopped reading is what these bounds are for.
 */
const CUT_WAIT_MS = 5_000;

/** Counts the HTTP responses in flight, so that the shutdown knows when the last one has ended. */
export class Drain {
  private readonly open = new Set<ServerResponse>();
  private waiters: (() => void)[] = [];

  /** Follows every request the server receives (the 503s of a closing server too). */
  watch(server: Server): void {
    server.on('request', (_request, response: ServerResponse) => {
      this.open.add(response);
      response.once('close', () => {
        this.open.delete(response);
        if (this.open.size === 0) for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  get inFlight(): number {
    return this.open.size;
  }

  /** Resolves true once no response is in flight, or false after `ms`. */
  settled(ms: number): Promise<boolean> {
    if (this.open.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      this.waiters.push(wake);
    });
  }
}

export interface StopSteps {
  server: Server;
  drain: Drain;
  graceMs: number;
  log: FastifyBaseLogger;
  /** Stops whatever still runs (generations, pulls) and resolves once it has ended. */
  cut(waitMs: number): Promise<void>;
}

/** Runs before the server's close hooks: when it resolves, no request is in flight any more. */
export async function drainRequests({ server, drain, graceMs, log, cut }: StopSteps): Promise<void> {
  // Closing the listener refuses new connections and closes the idle keep-alive ones.
  if (server.listening) server.close();
  if (!(await drain.settled(graceMs))) {
    log.info({ requests: drain.inFlight, graceMs }, 'shutdown grace over: stopping the requests still running');
    await cut(CUT_WAIT_MS);
    if (!(await drain.settled(CUT_WAIT_MS))) {
      // A client that does not read its stream any more cannot be given a last line: its connection goes.
      log.warn({ requests: drain.inFlight }, 'closing the connections of requests that did not end');
      server.closeAllConnections();
      await drain.settled(CUT_WAIT_MS);
    }
  }
  // No response is in flight any more, yet the close would wait for every connection still open: those
  // whose last response ended after the listener closed (kept alive for a next request), and those a
  // client opened without sending a request on (HTTP clients open spare ones). Nothing more will be
  // answered on any of them.
  server.closeAllConnections();
}
