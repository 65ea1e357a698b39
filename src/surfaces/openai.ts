import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from './services.js';
import type { ChatMessage, GenerationEvent, GenerationStats, ToolCall } from '../backends/types.js';
import type { RoutedModel } from '../core/router.js';
import { ApiKeys } from '../core/api-keys.js';
import { GenerationService } from '../core/generation.js';
import { ShutdownError } from '../core/shutdown.js';
import { choiceCount, parseOpenAiOptions, parseOpenAiResponseFormat } from '../core/options.js';
import { isRecord } from '../shared/is-record.js';
import type { GenerationOptions, TokenLogprob } from '../backends/types.js';
import { applyToolChoice, openAiToolCalls, parseToolCalls, parseTools } from '../core/tools.js';
import { badRequest, HttpError } from '../core/errors.js';
import { clientGone, sendStream, sse } from './http.js';
import { PushStream } from '../shared/push-stream.js';
import { finishReason, parseLogprobs, primed, responseId, rejectImages, rejectSuffix, parseReasoningEffort, thinkOption, truncateDimensions, usageOf, visibleModels } from './single-model.js';

/**
 * The OpenAI API under /v1 (seed 003's OpenAI-compatible endpoints): chat completions, completions,
 * embeddings and models, streamed as SSE `data:` frames ending with `data: [DONE]`. Errors take
 * OpenAI's `{"error": {message, type, code}}` shape from the server's error handler (SPEC rule 5).
 */

type Body = Record<string, unknown>;

function bodyOf(request: FastifyRequest): Body {
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  return request.body;
}

function modelOf(body: Body): string {
  if (body.model === undefined || body.model === null || body.model === '') throw badRequest('you must provide a model parameter');
  if (typeof body.model !== 'string') throw badRequest('model must be a string');
  return body.model;
}

function streamOptions(body: Body): { stream: boolean; includeUsage: boolean } {
  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw badRequest('stream must be a boolean');
  const options = body.stream_options;
  if (options !== undefined && options !== null && !isRecord(options)) throw badRequest('stream_options must be an object');
  const includeUsage = isRecord(options) ? options.include_usage : undefined;
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') {
    throw badRequest('stream_options.include_usage must be a boolean');
  }
  return { stream, includeUsage: includeUsage === true };
}

/** Features this server cannot honour are refused by name rather than silently ignored. */
function refuseUnsupported(body: Body): void {
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1) throw badRequest('best_of must be 1');
}

/** The legacy completions' `logprobs`: how many alternatives per token (0-5), or undefined for none. */
function completionLogprobs(value: unknown): number | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 5) throw badRequest('logprobs must be an integer between 0 and 5');
  return value;
}

/** Chat completions' `logprobs` object: the tokens as they are. */
const chatLogprobs = (logprobs: TokenLogprob[]) => ({ content: logprobs, refusal: null });

/** Legacy completions' `logprobs` object: parallel arrays, alternatives as token → logprob maps. */
function completionLogprobsObject(logprobs: TokenLogprob[], offset = 0) {
  const textOffset: number[] = [];
  let at = offset;
  for (const entry of logprobs) {
    textOffset.push(at);
    at += entry.token.length;
  }
  return {
    tokens: logprobs.map((entry) => entry.token),
    token_logprobs: logprobs.map((entry) => entry.logprob),
    top_logprobs: logprobs.map((entry) => Object.fromEntries(entry.top_logprobs.map((alt) => [alt.token, alt.logprob]))),
    text_offset: textOffset,
  };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** An image part's data (`data:image/png;base64,...` → the base64 text); remote URLs are not fetched. */
function imageData(part: Record<string, unknown>, where: string): string {
  const url = isRecord(part.image_url) ? part.image_url.url : part.image_url;
  if (typeof url !== 'string') throw badRequest(`${where}.image_url.url must be a string`);
  const match = /^data:[^;,]*;base64,(.*)$/s.exec(url);
  if (!match) throw badRequest(`${where}: only base64 data: URLs are accepted for images`);
  return match[1]!;
}

/** OpenAI messages as chat messages: text parts joined, `developer` as `system`, tool results named. */
function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw badRequest('messages must be a non-empty array');
  const toolNames = new Map<string, string>();
  return value.map((raw, index) => {
    const where = `messages[${index}]`;
    if (!isRecord(raw) || typeof raw.role !== 'string' || !ROLES.has(raw.role)) {
      throw badRequest(`${where}.role must be one of system, developer, user, assistant, tool`);
    }
    let content = '';
    const images: string[] = [];
    if (typeof raw.content === 'string') content = raw.content;
    else if (Array.isArray(raw.content)) {
      raw.content.forEach((part, p) => {
        const at = `${where}.content[${p}]`;
        if (!isRecord(part)) throw badRequest(`${at} must be an object`);
        if (part.type === 'text' && typeof part.text === 'string') content += part.text;
        else if (part.type === 'image_url') images.push(imageData(part, at));
        else throw badRequest(`${at}: content part type '${String(part.type)}' is not supported (text and image_url are)`);
      });
    } else if (raw.content !== undefined && raw.content !== null) {
      throw badRequest(`${where}.content must be a string or an array of content parts`);
    }
    const role = raw.role === 'developer' ? 'system' : (raw.role as ChatMessage['role']);
    const message: ChatMessage = { role, content };
    if (images.length > 0) message.images = images;
    const toolCalls = parseToolCalls(raw.tool_calls, where, 'string');
    if (toolCalls) {
      message.tool_calls = toolCalls;
      for (const call of toolCalls) if (call.id) toolNames.set(call.id, call.function.name);
    }
    if (role === 'tool') {
      const name = typeof raw.name === 'string' ? raw.name : typeof raw.tool_call_id === 'string' ? toolNames.get(raw.tool_call_id) : undefined;
      if (name) message.tool_name = name;
    }
    return message;
  });
}

function completionPrompt(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  if (Array.isArray(value) && value.every((p) => typeof p === 'string')) throw badRequest('prompt: one prompt per request (n and batches of prompts are not supported)');
  throw badRequest('prompt must be a string');
}

/** How the two generation endpoints differ: object names and where text goes in a choice. */
interface Shape {
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

function errorFrame(error: unknown): string {
  const status = (error as { status?: number; statusCode?: number }).status ?? (error as { statusCode?: number }).statusCode;
  const client = typeof status === 'number' && status >= 400 && status < 500;
  return sse({ error: { message: (error as Error).message, type: client ? 'invalid_request_error' : 'server_error', code: null } });
}

async function respond(
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
async function respondMany(
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
function choiceOptions(options: GenerationOptions, index: number): GenerationOptions {
  return index === 0 || options.seed === undefined ? options : { ...options, seed: options.seed + index };
}

async function chatCompletions(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const name = modelOf(body);
  const messages = parseMessages(body.messages);
  const options = parseOpenAiOptions(body);
  const format = parseOpenAiResponseFormat(body.response_format);
  const streaming = streamOptions(body);
  refuseUnsupported(body);
  const { tools, toolChoice } = applyToolChoice(body.tool_choice, parseTools(body.tools));
  const logprobs = parseLogprobs(body.logprobs, body.top_logprobs);
  const model = await services.router.resolve(name);
  rejectImages(model, messages.some((m) => m.images !== undefined));
  const think = thinkOption(model, parseReasoningEffort(body.reasoning_effort));
  // Thoughts travel as `reasoning`, the field Ollama's own /v1 uses.
  const message = (text: string, toolCalls?: ToolCall[], reasoning?: string) => ({
    role: 'assistant',
    content: toolCalls?.length && text === '' ? null : text,
    ...(reasoning === undefined ? {} : { reasoning }),
    ...(toolCalls?.length ? { tool_calls: openAiToolCalls(toolCalls) } : {}),
    refusal: null,
  });
  const shape: Shape = {
    id: responseId('chatcmpl'),
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    opening: { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    chunkChoice: (text, finish, toolCalls) => ({
      index: 0,
      delta: toolCalls?.length
        ? { tool_calls: openAiToolCalls(toolCalls).map((call, i) => ({ index: i, ...call })) }
        : text === undefined
          ? {}
          : { content: text },
      logprobs: null,
      finish_reason: finish ?? null,
    }),
    reasoningChoice: (text) => ({ index: 0, delta: { reasoning: text }, logprobs: null, finish_reason: null }),
    choice: (text, stats, reasoning) => ({ index: 0, message: message(text, stats.toolCalls, reasoning), logprobs: null, finish_reason: finishReason(stats) }),
    logprobs: chatLogprobs,
  };
  const run = (signal: AbortSignal, index = 0) =>
    services.generation.chat({ model: model.name, messages, options: choiceOptions(options, index), format, tools, toolChoice, think, logprobs, signal }, request.usage);
  const n = choiceCount(body);
  return n > 1 ? respondMany(request, reply, model.name, n, streaming, run, shape) : respond(request, reply, model.name, streaming, run, shape);
}

async function completions(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const name = modelOf(body);
  const prompt = completionPrompt(body.prompt ?? '');
  const options = parseOpenAiOptions(body);
  const format = parseOpenAiResponseFormat(body.response_format);
  const streaming = streamOptions(body);
  refuseUnsupported(body);
  if (body.suffix !== undefined && body.suffix !== null && typeof body.suffix !== 'string') throw badRequest('suffix must be a string');
  if (body.echo !== undefined && body.echo !== null && typeof body.echo !== 'boolean') throw badRequest('echo must be a boolean');
  const suffix = (body.suffix as string | null | undefined) ?? undefined;
  const logprobs = completionLogprobs(body.logprobs);
  const model = await services.router.resolve(name);
  rejectSuffix(model, suffix);
  const shape: Shape = {
    id: responseId('cmpl'),
    object: 'text_completion',
    chunkObject: 'text_completion',
    prefix: body.echo === true ? prompt : undefined,
    chunkChoice: (text, finish) => ({ index: 0, text: text ?? '', logprobs: null, finish_reason: finish ?? null }),
    choice: (text, stats) => ({ index: 0, text, logprobs: null, finish_reason: finishReason(stats) }),
    logprobs: (entries) => completionLogprobsObject(entries, body.echo === true ? prompt.length : 0),
  };
  const run = (signal: AbortSignal, index = 0) =>
    services.generation.complete({ model: model.name, prompt, suffix, options: choiceOptions(options, index), format, logprobs, signal }, request.usage);
  const n = choiceCount(body);
  return n > 1 ? respondMany(request, reply, model.name, n, streaming, run, shape) : respond(request, reply, model.name, streaming, run, shape);
}

function embeddingInput(value: unknown): string[] {
  if (typeof value === 'string') {
    if (value === '') throw badRequest('input must not be empty');
    return [value];
  }
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item !== '')) return value as string[];
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number' || Array.isArray(item))) {
    throw badRequest('input as token arrays is not supported: send text');
  }
  throw badRequest('input must be a non-empty string or a non-empty array of non-empty strings');
}

/** OpenAI's `base64` encoding: the little-endian float32 bytes of the vector. */
function base64Vector(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

function modelObject(model: RoutedModel) {
  const modified = model.info.modifiedAt ? Date.parse(model.info.modifiedAt) : NaN;
  return {
    id: model.name,
    object: 'model',
    created: Number.isFinite(modified) ? Math.floor(modified / 1000) : 0,
    owned_by: model.replicas[0]?.kind ?? 'library',
  };
}

export function openAiRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const doc = (summary: string) => ({ tags: ['openai'], summary });

    app.post('/v1/chat/completions', { config: { access: 'model' }, schema: doc('Chat completion (OpenAI), streamed as chat.completion.chunk frames') }, (request, reply) =>
      chatCompletions(services, request, reply),
    );

    app.post('/v1/completions', { config: { access: 'model' }, schema: doc('Text completion (OpenAI legacy), streamed as text_completion frames') }, (request, reply) =>
      completions(services, request, reply),
    );

    app.post('/v1/embeddings', { config: { access: 'model' }, schema: doc('Embeddings (L2-normalised), as floats or base64') }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelOf(body);
      const input = embeddingInput(body.input);
      const encoding = body.encoding_format ?? 'float';
      if (encoding !== 'float' && encoding !== 'base64') throw badRequest("encoding_format must be 'float' or 'base64'");
      const model = await services.router.resolve(name);
      const result = await services.router.embed({ model: model.name, input, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      const vectors = truncateDimensions(result.embeddings, body.dimensions);
      return {
        object: 'list',
        data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: encoding === 'base64' ? base64Vector(vector) : vector })),
        model: model.name,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
    });

    app.get('/v1/models', { config: { access: 'model' }, schema: doc('Models available') }, async (request) => ({
      object: 'list',
      data: (await visibleModels(services, request.principal)).map(modelObject),
    }));

    // A wildcard: model names may hold slashes (hf.co/owner/repo:tag).
    app.get('/v1/models/*', { config: { access: 'model' }, schema: doc('One model') }, async (request) => {
      const id = (request.params as { '*': string })['*'];
      const model = await services.router.resolve(id).catch(() => undefined);
      const allowed = model && (request.principal?.kind !== 'key' || ApiKeys.allows(request.principal, model.name));
      if (!model || !allowed) throw new HttpError(404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found');
      return modelObject(model);
    });
  };
}
