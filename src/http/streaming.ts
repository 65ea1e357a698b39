import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * An AbortSignal that fires when the client goes away before the answer is complete: every generation
 * of the request listens to it, so a closed connection stops the work at once.
 */
export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  request.raw.on('aborted', () => controller.abort(new Error('client disconnected')));
  return controller.signal;
}

/**
 * Sends an async sequence of strings as a chunked response, each chunk written the moment it exists
 * (no buffering). When the client disconnects, the stream is destroyed and the generator's `finally`
 * blocks run, which stop the generation.
 */
export function sendStream(reply: FastifyReply, contentType: string, chunks: AsyncIterable<string>): FastifyReply {
  return sendStreamBody(reply, contentType, Readable.from(chunks, { objectMode: false }));
}

/**
 * Sends a stream as it is written, unbuffered by any proxy in between. The usage record waits for
 * `body` to close: whatever ends the answer accounts for it first.
 */
export function sendStreamBody(reply: FastifyReply, contentType: string, body: Readable): FastifyReply {
  reply.header('content-type', contentType);
  reply.header('cache-control', 'no-cache');
  reply.header('x-accel-buffering', 'no');
  streamedBodies.set(reply.request, body);
  return reply.send(body);
}

const streamedBodies = new WeakMap<FastifyRequest, Readable>();

/** The body sendStream gave a request, if any: it closes only once its generator has wound down. */
export function streamedBody(request: FastifyRequest): Readable | undefined {
  return streamedBodies.get(request);
}

export function ndjson(value: unknown): string {
  return JSON.stringify(value) + '\n';
}

export function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}
