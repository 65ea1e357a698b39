import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerationEvent, GenerationStats, TokenLogprob } from '../../../providers/types.js';
import type { GenerationOptions, ToolCall } from '../../../domain/chat.js';
import { GenerationService } from '../../../gateway/generation.js';
import { ShutdownError } from '../../../gateway/shutdown.js';
import { clientGone, sendStream, sse } from '../../streaming.js';
import { PushStream } from '../../../shared/push-stream.js';
import { primed, usageOf } from '../single-model.js';
import { finishReason } from './finish-reason.js';

/**
 * One or `n` generations answered in OpenAI's wire format: one object, or SSE `data:` frames ending
 * with `data: [DONE]`. Errors before the answer starts take OpenAI's `{"error": {message, type, code}}`
 * shape from the server's error handler, as every route under /v1 does.
 */

/** How the two generation endpoints differ: object names and where text goes in a choice. */
export interface Shape {
  id: string;
  object: string;
  chunkObject: string;
  /** A streamed choice carrying `text`, or the end of the choice with its finish reason. */
  chunkChoice(text: string | undefined, finish?: string, toolCalls?: ToolCall[]): Record<string, unknown>;
  /** A streamed choice carrying a reasoning model's thoughts (chat only). */
  reasoningChoice?(text: string): Record<string, unknown>;
  /** The choice of a non-streamed answer. */
  choice(text: string, stats: GenerationStats, reasoning?: string): Record<string, unknown>;
  /** Frames sent before the first token (the assistant role of a chat). */
  opening?: Record<string, unknown>;
  /** Text put before the answer (completions' `echo`). */
  prefix?: string;
  /** A choice's `logprobs` in this endpoint's shape. */
  logprobs(logprobs: TokenLogprob[]): Record<string, unknown>;
}

/** OpenAI's backend-configuration marker on every answer and chunk (Ollama's own /v1 sends `fp_ollama`). */
const SYSTEM_FINGERPRINT = 'fp_ollama_arena';

export function errorFrame(error: unknown): string {
  const status = (error as { status?: number; statusCode?: number }).status ?? (error as { statusCode?: number }).statusCode;
  const client = typeof status === 'number' && status >= 400 && status < 500;
  return sse({ error: { message: (error as Error).message, type: client ? 'invalid_request_error' : 'server_error', code: null } });
}

export async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  { stream, includeUsage }: { stream: boolean; includeUsage: boolean },
  start: (signal: AbortSignal) => AsyncGenerator<GenerationEvent>,
  shape: Shape,
): Promise<unknown> {
  const signal = clientGone(request, reply);
  const created = Math.floor(Date.now() / 1000);
  const head = { id: shape.id, object: shape.object, created, model, system_fingerprint: SYSTEM_FINGERPRINT };
  if (!stream) {
    const result = await GenerationService.collect(start(signal));
    const choice = shape.choice((shape.prefix ?? '') + result.text, result.stats, result.thinking);
    if (result.logprobs) choice.logprobs = shape.logprobs(result.logprobs);
    return { ...head, choices: [choice], usage: usageOf(result.stats) };
  }
  const events = await primed(start(signal), signal);
  const chunk = (choices: Record<string, unknown>[], usage?: ReturnType<typeof usageOf>) =>
    sse({ id: shape.id, object: shape.chunkObject, created, model, system_fingerprint: SYSTEM_FINGERPRINT, choices, ...(includeUsage ? { usage: usage ?? null } : {}) });
  async function* frames(): AsyncGenerator<string> {
    try {
      if (shape.opening) yield chunk([shape.opening]);
      if (shape.prefix) yield chunk([shape.chunkChoice(shape.prefix)]);
      for await (const event of events) {
        if (event.type === 'token') {
          yield chunk([{ ...shape.chunkChoice(event.text), ...(event.logprobs ? { logprobs: shape.logprobs(event.logprobs) } : {}) }]);
          continue;
        }
        if (event.type === 'thinking') {
          if (shape.reasoningChoice) yield chunk([shape.reasoningChoice(event.text)]);
          continue;
        }
        const { stats } = event;
        if (stats.doneReason === 'abort') return;
        if (stats.toolCalls?.length) yield chunk([shape.chunkChoice(undefined, undefined, stats.toolCalls)]);
        yield chunk([shape.chunkChoice(undefined, finishReason(stats))]);
        if (includeUsage) yield chunk([], usageOf(stats));
        yield 'data: [DONE]\n\n';
      }
    } catch (error) {
      if (error instanceof ShutdownError) {
        // The choice ends with a finish_reason ("error", as OpenRouter ends a stream that failed
        // mid-way) and the error beside it, which OpenAI's SDKs raise; then usage and [DONE] as usual.
        const { message, type, code } = error;
        yield sse({ id: shape.id, object: shape.chunkObject, created, model, system_fingerprint: SYSTEM_FINGERPRINT, choices: [shape.chunkChoice(undefined, 'error')], ...(includeUsage ? { usage: null } : {}), error: { message, type, code } });
        if (includeUsage && error.stats) yield chunk([], usageOf(error.stats));
        yield 'data: [DONE]\n\n';
        return;
      }
      request.log.warn({ err: error }, 'generation failed mid-stream');
      yield errorFrame(error);
    }
  }
  return sendStream(reply, 'text/event-stream', frames());
}

/**
 * `n` choices: as many generations at once (parallel sequences on the embedded engine), each with its
 * own seed when the request fixed one, so that the choices differ as OpenAI's do. The usage reports
 * the prompt once and the completions summed, as OpenAI does.
 */
export async function respondMany(
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  n: number,
  { stream, includeUsage }: { stream: boolean; includeUsage: boolean },
  start: (signal: AbortSignal, index: number) => AsyncGenerator<GenerationEvent>,
  shape: Shape,
): Promise<unknown> {
  const signal = clientGone(request, reply);
  const created = Math.floor(Date.now() / 1000);
  const indexes = Array.from({ length: n }, (_, i) => i);
  const usage = (all: GenerationStats[]) => {
    const prompt = all[0]?.promptTokens ?? 0;
    const completion = all.reduce((sum, stats) => sum + stats.completionTokens, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  };
  const head = { id: shape.id, object: shape.object, created, model, system_fingerprint: SYSTEM_FINGERPRINT };
  if (!stream) {
    const results = await Promise.all(indexes.map((i) => GenerationService.collect(start(signal, i))));
    return {
      ...head,
      choices: results.map((result, i) => ({
        ...shape.choice((shape.prefix ?? '') + result.text, result.stats, result.thinking),
        ...(result.logprobs ? { logprobs: shape.logprobs(result.logprobs) } : {}),
        index: i,
      })),
      usage: usage(results.map((result) => result.stats)),
    };
  }
  const streams = await Promise.all(indexes.map((i) => primed(start(signal, i), signal)));
  const chunk = (choices: Record<string, unknown>[], total?: ReturnType<typeof usage>) =>
    sse({ id: shape.id, object: shape.chunkObject, created, model, system_fingerprint: SYSTEM_FINGERPRINT, choices, ...(includeUsage ? { usage: total ?? null } : {}) });
  const queue = new PushStream<string>();
  const finals: GenerationStats[] = [];
  const pump = async (events: AsyncGenerator<GenerationEvent>, index: number) => {
    const at = (choice: Record<string, unknown>) => ({ ...choice, index });
    if (shape.opening) queue.push(chunk([at(shape.opening)]));
    if (shape.prefix) queue.push(chunk([at(shape.chunkChoice(shape.prefix))]));
    for await (const event of events) {
      if (event.type === 'token') queue.push(chunk([at({ ...shape.chunkChoice(event.text), ...(event.logprobs ? { logprobs: shape.logprobs(event.logprobs) } : {}) })]));
      else if (event.type === 'thinking') {
        if (shape.reasoningChoice) queue.push(chunk([at(shape.reasoningChoice(event.text))]));
      } else {
        if (event.stats.toolCalls?.length) queue.push(chunk([at(shape.chunkChoice(undefined, undefined, event.stats.toolCalls))]));
        queue.push(chunk([at(shape.chunkChoice(undefined, finishReason(event.stats)))]));
        finals.push(event.stats);
      }
    }
  };
  void Promise.all(streams.map(pump)).then(
    () => {
      if (finals.length === n && finals.every((stats) => stats.doneReason !== 'abort')) {
        if (includeUsage) queue.push(chunk([], usage(finals)));
        queue.push('data: [DONE]\n\n');
      }
      queue.end();
    },
    (error: unknown) => {
      request.log.warn({ err: error }, 'generation failed mid-stream');
      queue.push(errorFrame(error));
      queue.end();
    },
  );
  // A client that leaves aborts `signal`, which closes every choice's generation (see primed).
  return sendStream(reply, 'text/event-stream', queue);
}

/** The request's options for choice `index`: a fixed seed moves by the index so the choices differ. */
export function choiceOptions(options: GenerationOptions, index: number): GenerationOptions {
  return index === 0 || options.seed === undefined ? options : { ...options, seed: options.seed + index };
}
