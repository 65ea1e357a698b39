import { PassThrough, type Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import type { RoutedModel } from '../../../gateway/router.js';
import type { RelayRequest } from '../../../providers/provider.js';
import { BackendError } from '../../../providers/types.js';
import { ShutdownError } from '../../../gateway/shutdown.js';
import { OpenAiStreamMeter, meterOpenAiAnswer } from '../../../providers/openai/relay-meter.js';
import { isRecord } from '../../../shared/is-record.js';
import { AbortSwitch } from '../../../shared/abort-switch.js';
import { sendStreamBody, sse } from '../../streaming.js';
import { errorFrame } from './respond.js';
import { usageOf } from '../single-model.js';
import { bodyOf, modelOf, refuseUnsupported, streamOptions, type Body } from './request.js';
import { checkOpenAiOptions } from '../../../gateway/options.js';

/**
 * A /v1 request for a model whose every server speaks OpenAI's wire format goes on as the client wrote
 * it, and the answer comes back as the server wrote it, a network chunk per write: no event is parsed
 * and rebuilt on the way, which was most of what the gateway cost per request beyond a bare proxy.
 * The gateway checks what it checks on every path (the model, `stream`, the sampling ranges and the
 * number of choices); the server validates the rest (messages, tools, its own fields). Off the answer
 * the gateway reads only what its accounting needs (see OpenAiStreamMeter).
 */

/** Whether this request can go on as written: every replica relays it and no catalog setting changes it. */
function relays(services: Services, model: RoutedModel): boolean {
  return services.router.relaysOpenAi(model) && services.generation.mayRelay(model.name);
}

type Streaming = ReturnType<typeof streamOptions>;

/** How a /v1 route answers a request that does not go on as written: it reads it and runs a generation. */
export type Translated = (services: Services, request: FastifyRequest, reply: FastifyReply, body: Body, model: RoutedModel, streaming: Streaming) => Promise<unknown>;

/**
 * A /v1 generation route: the body's model and `stream` are read, then the request goes on as written
 * when it may (see `relays`), else to `translated`. The route's own reading of the request lives in a
 * function of its own, so that the suspended state of this one stays small on the busiest path.
 */
export async function relayOrTranslate(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  endpoint: RelayRequest['endpoint'],
  translated: Translated,
): Promise<unknown> {
  const body = bodyOf(request);
  const name = modelOf(body);
  const streaming = streamOptions(body);
  const model = await services.router.resolve(name);
  if (relays(services, model)) return relayOpenAi(services, request, reply, model, endpoint, body, streaming);
  return translated(services, request, reply, body, model, streaming);
}

async function relayOpenAi(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  model: RoutedModel,
  endpoint: RelayRequest['endpoint'],
  body: Body,
  streaming: Streaming,
): Promise<unknown> {
  // The limits the gateway sets on every generation hold here too (ranges, at most 8 choices): the
  // server would accept what the gateway refuses on its other paths.
  checkOpenAiOptions(body);
  refuseUnsupported(body);
  // One switch for both ends of the generation: the client's departure aborts it here, the shutdown
  // aborts it with a ShutdownError in the generation service. (A stream's 'close' and 'end' come once:
  // `on` spares the wrapper `once` makes, here and below.)
  const stop = new AbortSwitch();
  reply.raw.on('close', () => reply.raw.writableFinished || stop.abort(new Error('client disconnected')));
  // A stream's token counts come only when asked for: the gateway always asks, for its own accounting,
  // and keeps the usage event from a client that did not.
  const sent = streaming.stream && !streaming.includeUsage ? { ...body, stream_options: { ...(isRecord(body.stream_options) ? body.stream_options : {}), include_usage: true } } : body;
  const relayed = await services.generation.relayOpenAi(model, { endpoint, body: sent }, stop, request.usage);
  const { body: upstream, status } = relayed.answer;
  const type = relayed.answer.contentType ?? 'application/json';
  reply.code(status);
  if (!streaming.stream || status !== 200 || !type.startsWith('text/event-stream')) {
    let answer: Buffer;
    try {
      answer = await wholeBody(upstream);
    } catch (error) {
      relayed.finish({ pieces: 0, incomplete: true });
      if (relayed.cut()) throw new ShutdownError();
      throw stop.aborted ? error : new BackendError(`the model server's answer broke off: ${(error as Error).message}`, 502);
    }
    const ok = status >= 200 && status < 300;
    if (ok) relayed.firstPiece();
    // One shape of object whatever was read: this runs on every relayed answer.
    const read = ok ? meterOpenAiAnswer(answer) : undefined;
    relayed.finish({ usage: read?.usage, finishReason: read?.finishReason, pieces: 0, incomplete: !ok });
    return reply.header('content-type', type).send(answer);
  }

  const meter = new OpenAiStreamMeter(!streaming.includeUsage);
  const finish = (incomplete: boolean) => relayed.finish({ usage: meter.usage, finishReason: meter.finishReason, pieces: meter.pieces, incomplete });
  // The usage record is taken when the client's connection closes: a client that leaves is charged
  // for what it was sent, before anything else runs.
  reply.raw.on('close', () => finish(!reply.raw.writableFinished));
  // What has come is held until the event loop turns: a whole answer in hand by then (a short one, or
  // a fast server's) goes out as one write with its length, as a JSON answer does; otherwise it
  // streams from then on, each network chunk as it comes.
  return new Promise<FastifyReply>((resolve) => {
    // The stream to the client is made only once the answer streams: most short answers never need it.
    let out: PassThrough | undefined;
    let held: Buffer[] = [];
    let ended = false;
    const stream = (): PassThrough => {
      if (out) return out;
      out = new PassThrough();
      out.write(Buffer.concat(held));
      held = [];
      resolve(sendStreamBody(reply, type, out));
      return out;
    };
    upstream.on('data', (chunk: Buffer) => {
      relayed.firstPiece();
      const pass = meter.read(chunk);
      if (!out) {
        if (held.length === 0) setImmediate(() => ended || stream());
        held.push(pass);
      } else if (pass.length > 0 && !out.write(pass)) {
        upstream.pause();
        out.once('drain', () => upstream.resume());
      }
    });
    upstream.on('end', () => {
      ended = true;
      const rest = meter.end();
      finish(false);
      if (out) return void out.end(rest);
      resolve(reply.header('content-type', type).header('cache-control', 'no-cache').send(Buffer.concat([...held, rest])));
    });
    upstream.on('error', () => undefined); // its 'close' below ends the answer
    upstream.on('close', () => {
      if (ended) return;
      ended = true;
      // Cut short: by the shutdown (the client is told so in the wire format), by the client leaving
      // (nobody to tell), or by the server failing mid-way (an error event, as a stream that began with
      // a 200 can only say it).
      const client = stream();
      const rest = meter.end();
      finish(true);
      if (relayed.cut()) client.end(Buffer.concat([rest, Buffer.from(shutdownFrames(endpoint, streaming.includeUsage ? meter : undefined))]));
      else if (stop.aborted) client.destroy();
      else client.end(Buffer.concat([rest, Buffer.from(errorFrame(new BackendError("the model server's answer broke off", 502)) + 'data: [DONE]\n\n')]));
    });
  });
}

/**
 * The last events of a stream the shutdown cut: the choice ends with finish_reason `error` and the error
 * beside it; then, for a client that asked for usage, what it was sent (the server never reported it).
 */
function shutdownFrames(endpoint: RelayRequest['endpoint'], sent: OpenAiStreamMeter | undefined): string {
  const { message, type, code } = new ShutdownError();
  const object = endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const created = Math.floor(Date.now() / 1000);
  const choice = endpoint === 'chat' ? { index: 0, delta: {}, logprobs: null, finish_reason: 'error' } : { index: 0, text: '', logprobs: null, finish_reason: 'error' };
  let frames = sse({ object, created, choices: [choice], error: { message, type, code } });
  if (sent) frames += sse({ object, created, choices: [], usage: usageOf(sent.usage ?? { promptTokens: 0, completionTokens: sent.pieces }) });
  return frames + 'data: [DONE]\n\n';
}

/** The body read whole, with plain listeners: an async iterator costs promises per chunk on the busiest path. */
function wholeBody(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (chunk: Buffer) => chunks.push(chunk));
    body.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    body.once('error', reject);
    body.on('close', () => body.readableEnded || reject(new Error('the connection closed before the end of the answer')));
  });
}
