import { Worker } from 'node:worker_threads';
import { errorCodes, type FastifyRequest } from 'fastify';

/**
 * Request bodies read as JSON, large ones parsed on a worker thread. Joining, decoding and parsing
 * take time in proportion to the body (hundreds of ms for 8 MB on a busy small machine), and on the
 * main thread that time is stolen from every other request: a prompt of megabytes, or a base64 image,
 * would stall the server for everyone. A large body's chunks go to the worker as they arrive, and
 * the parsed value comes back by structured clone, which copies long strings in one piece.
 */

/** Bodies up to this size are parsed in place: below it, a round trip to the worker costs more than it saves. */
const OFF_THREAD_BYTES = 256 * 1024;

// Plain JavaScript, run with `eval`, so that it loads the same way under tsx, a build, and the test runner.
// The reviver refuses what Fastify's default parser refuses: `__proto__` keys and `constructor.prototype`.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const bodies = new Map();
function revive(key, value) {
  if (key === '__proto__') throw new Error('forbidden prototype property');
  if (key === 'constructor' && value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, 'prototype')) {
    throw new Error('forbidden constructor property');
  }
  return value;
}
parentPort.on('message', ({ id, chunk, end }) => {
  if (chunk) {
    const chunks = bodies.get(id) ?? [];
    chunks.push(chunk);
    bodies.set(id, chunks);
  }
  if (end === undefined) return;
  const chunks = bodies.get(id) ?? [];
  bodies.delete(id);
  if (!end) return;
  let reply;
  try {
    reply = { id, ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8'), revive) };
  } catch {
    reply = { id, ok: false };
  }
  try {
    parentPort.postMessage(reply);
  } catch {
    parentPort.postMessage({ id, ok: false });
  }
});
`;

type Done = (error: Error | null, value?: unknown) => void;

/** One worker, started on first use and never keeping the process alive while idle. */
class JsonWorker {
  private worker?: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, Done>();

  /** A body streamed to the worker: `push` its chunks, then `end` it (or `drop` it). */
  open(): { push(chunk: Buffer): void; end(done: Done): void; drop(): void } {
    const worker = this.start();
    const id = this.nextId++;
    return {
      // Socket chunks are views of shared buffers: posting copies each one, a few KB at a time.
      push: (chunk) => worker.postMessage({ id, chunk }),
      end: (done) => {
        this.waiting.set(id, done);
        worker.ref(); // a body being parsed keeps the process alive, as one read in place would
        worker.postMessage({ id, end: true });
      },
      drop: () => worker.postMessage({ id, end: false }),
    };
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (message: { id: number; ok: boolean; value?: unknown }) => {
      const done = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (this.waiting.size === 0) worker.unref();
      if (message.ok) done?.(null, message.value);
      else done?.(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
    });
    // A value too deep to rebuild here: no id can be read, so every body waiting is refused as bad JSON.
    const failAll = () => {
      for (const done of this.waiting.values()) done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
      this.waiting.clear();
    };
    worker.on('messageerror', failAll);
    worker.on('error', failAll);
    worker.on('exit', () => {
      this.worker = undefined;
      failAll();
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

const shared = new JsonWorker();

/**
 * A Fastify content-type parser (it reads the raw stream) for JSON bodies: Fastify's own limits and
 * errors (413 over `limit`, a length that does not match Content-Length), an empty body as no body,
 * small bodies parsed by `parseSmall`, large ones on the worker.
 */
export function jsonBodyParser(limit: number, parseSmall: (request: FastifyRequest, body: string, done: Done) => void) {
  return (request: FastifyRequest, payload: NodeJS.ReadableStream & { receivedEncodedLength?: number }, done: Done): void => {
    const declared = Number(request.headers['content-length']);
    if (declared > limit) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    let received = 0;
    let chunks: Buffer[] = [];
    let remote: ReturnType<JsonWorker['open']> | undefined;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(data: Buffer | string) {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      received += chunk.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        stop();
        remote?.drop();
        return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      }
      if (!remote && (received > OFF_THREAD_BYTES || declared > OFF_THREAD_BYTES)) {
        remote = shared.open();
        for (const earlier of chunks) remote.push(earlier);
        chunks = [];
      }
      if (remote) remote.push(chunk);
      else chunks.push(chunk);
    }
    function onEnd(error?: Error & { statusCode?: number }) {
      stop();
      if (error) {
        remote?.drop();
        if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
        return done(error);
      }
      if (!Number.isNaN(declared) && (payload.receivedEncodedLength || received) !== declared) {
        remote?.drop();
        return done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      }
      if (remote) return remote.end(done);
      if (received === 0) return done(null, undefined);
      // Most bodies come in one chunk: decoded where it lies, not copied first.
      parseSmall(request, (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received)).toString('utf8'), done);
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  };
}
