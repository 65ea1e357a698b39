import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import type { GenerationEvent, GenerationStats } from '../../../providers/types.js';
import type { ToolCall } from '../../../domain/chat.js';
import type { RoutedModel } from '../../../gateway/router.js';
import { GenerationService } from '../../../gateway/generation.js';
import { keepAliveFor } from '../../../access/keep-alive.js';
import { MANAGE_REFUSED, mayManageModels } from '../../../access/auth.js';
import { ollamaToolCalls } from '../../../gateway/tools.js';
import { SHUTDOWN_DONE_REASON, ShutdownError } from '../../../gateway/shutdown.js';
import { HttpError } from '../../../gateway/errors.js';
import { clientGone, ndjson, sendStream, sse } from '../../streaming.js';
import { primed, responseId, usageOf, wantsEventStream } from '../single-model.js';
import type { Common } from './request.js';
import { doneReason } from './done-reason.js';
import { metricsOf } from './metrics.js';

/**
 * One generation answered in Ollama's wire format: NDJSON lines, or one object when `stream` is false.
 * A non-streamed answer also carries the OpenAI-style fields (`usage`, `id`, `object`, `created`,
 * `choices`) that clients of the product's other APIs read, so that one object serves them all. A
 * client that sends `Accept: text/event-stream` gets Server-Sent Events instead of NDJSON:
 * `{"token", "done": false}` events, then a final one with `full_text` (and `session_id` on chat).
 */

/**
 * An empty prompt (generate) or no messages (chat) loads the model, or unloads it with keep_alive 0,
 * and answers one final object with done_reason `load` / `unload`, as Ollama does.
 */
export async function loadOrUnload(
  services: Services,
  reply: FastifyReply,
  model: RoutedModel,
  common: Common,
  answer: Record<string, unknown>,
  accept: string | undefined,
): Promise<FastifyReply> {
  const unload = common.keepAliveMs === 0;
  const principal = reply.request.principal;
  if (unload && !mayManageModels(principal)) throw new HttpError(403, MANAGE_REFUSED, 'permission_error', 'insufficient_permissions');
  const keepAliveMs = keepAliveFor(principal, common.keepAliveMs);
  await services.router.onEveryReplica(model.name, (backend, name) => (unload ? backend.unload?.(name) : backend.load?.(name, keepAliveMs)));
  const reason = unload ? 'unload' : 'load';
  const body = { model: model.name, created_at: new Date().toISOString(), ...answer, done: true, done_reason: reason };
  if (!common.stream) return reply.send(body);
  if (wantsEventStream(accept)) return reply.header('content-type', 'text/event-stream').send(sse({ done: true, full_text: '', done_reason: reason }));
  return reply.header('content-type', 'application/x-ndjson').send(ndjson(body));
}

/** How chat and generate differ on the wire: where the text goes, the object names, sessions. */
export interface Shape {
  /** The field carrying text in a streamed line (`message` or `response`), with thoughts beside it. */
  piece(text: string, toolCalls?: ToolCall[], thinking?: string): Record<string, unknown>;
  /** The OpenAI-style fields beyond Ollama's (`usage`, `id`, `choices`...) on a non-streamed answer. */
  superset(text: string, stats: GenerationStats, toolCalls?: ToolCall[]): Record<string, unknown>;
  /** Runs when the generation finished normally, before the final line goes out (sessions record the turn). */
  finished?(text: string, stats: GenerationStats): Promise<void>;
  /** Fields of the final line and the SSE final event (session_id). */
  extra?: Record<string, unknown>;
  /** Fields of the final line that depend on the generation (generate's `context`). */
  final?(stats: GenerationStats): Record<string, unknown>;
}

export const chatMessage = (text: string, toolCalls?: ToolCall[], thinking?: string) => ({
  role: 'assistant',
  content: text,
  ...(thinking === undefined ? {} : { thinking }),
  ...(toolCalls?.length ? { tool_calls: ollamaToolCalls(toolCalls) } : {}),
});

export function completionId(): string {
  return responseId('cmpl');
}

/** Streams or collects one generation in Ollama's format (or SSE, for `Accept: text/event-stream`), as the request asks. */
export async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  stream: boolean,
  start: (signal: AbortSignal) => AsyncGenerator<GenerationEvent>,
  shape: Shape,
): Promise<unknown> {
  const signal = clientGone(request, reply);
  const createdAt = () => new Date().toISOString();
  if (!stream) {
    const result = await GenerationService.collect(start(signal));
    if (result.stats.doneReason !== 'abort') await shape.finished?.(result.text, result.stats);
    return {
      model,
      created_at: createdAt(),
      ...shape.piece(result.text, result.stats.toolCalls, result.thinking),
      done: true,
      done_reason: doneReason(result.stats),
      ...(result.logprobs ? { logprobs: result.logprobs } : {}),
      ...metricsOf(result.stats),
      ...shape.final?.(result.stats),
      ...shape.extra,
      ...shape.superset(result.text, result.stats, result.stats.toolCalls),
    };
  }
  const events = await primed(start(signal), signal);
  const eventStream = wantsEventStream(request.headers.accept);
  async function* lines(): AsyncGenerator<string> {
    let text = '';
    try {
      for await (const event of events) {
        if (event.type === 'token') {
          text += event.text;
          const logprobs = event.logprobs ? { logprobs: event.logprobs } : {};
          yield eventStream ? sse({ token: event.text, ...logprobs, done: false }) : ndjson({ model, created_at: createdAt(), ...shape.piece(event.text), ...logprobs, done: false });
          continue;
        }
        if (event.type === 'thinking') {
          // As Ollama streams thoughts: lines of their own, the answer's field empty.
          yield eventStream ? sse({ thinking: event.text, done: false }) : ndjson({ model, created_at: createdAt(), ...shape.piece('', undefined, event.text), done: false });
          continue;
        }
        const { stats } = event;
        if (stats.doneReason === 'abort') return;
        await shape.finished?.(text, stats);
        if (eventStream) {
          // The final SSE event, with the tool calls in Ollama's shape when the model made any.
          const toolCalls = stats.toolCalls?.length ? { tool_calls: ollamaToolCalls(stats.toolCalls) } : {};
          yield sse({ done: true, ...shape.extra, full_text: text, ...toolCalls, done_reason: doneReason(stats), usage: usageOf(stats) });
          return;
        }
        if (stats.toolCalls?.length) {
          // Ollama sends tool calls on a line of their own before the final one.
          yield ndjson({ model, created_at: createdAt(), ...shape.piece('', stats.toolCalls), done: false });
        }
        yield ndjson({ model, created_at: createdAt(), ...shape.piece(''), done: true, done_reason: doneReason(stats), ...shape.final?.(stats), ...metricsOf(stats), ...shape.extra });
      }
    } catch (error) {
      if (error instanceof ShutdownError) {
        // A final line as for any end, with done_reason "shutdown" and the tokens so far; its `error`
        // makes Ollama's clients raise rather than take the partial answer for a whole one.
        const end = { done: true, done_reason: SHUTDOWN_DONE_REASON, error: error.message };
        const counts = error.stats ? metricsOf(error.stats) : {};
        yield eventStream
          ? sse({ ...end, ...shape.extra, full_text: text, ...(error.stats ? { usage: usageOf(error.stats) } : {}) })
          : ndjson({ model, created_at: createdAt(), ...shape.piece(''), ...end, ...counts, ...shape.extra });
        return;
      }
      // The 200 went out with the first line: the failure travels as a line, as Ollama sends it.
      request.log.warn({ err: error }, 'generation failed mid-stream');
      const message = (error as Error).message;
      yield eventStream ? sse({ error: message, done: true }) : ndjson({ error: message });
    }
  }
  return sendStream(reply, eventStream ? 'text/event-stream' : 'application/x-ndjson', lines());
}
