import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from './services.js';
import { BackendError, type ChatMessage, type GenerationEvent, type GenerationOptions, type GenerationStats, type ModelInfo, type ThinkOption, type ToolCall } from '../backends/types.js';
import type { RoutedModel } from '../core/router.js';
import { normaliseModelName } from '../shared/model-names.js';
import { GenerationService } from '../core/generation.js';
import { keepAliveFor, parseKeepAlive } from '../core/keep-alive.js';
import { MANAGE_REFUSED, mayManageModels } from '../core/auth.js';
import { parseOllamaFormat, parseOllamaOptions } from '../core/options.js';
import { isRecord } from '../shared/is-record.js';
import { ollamaToolCalls, parseToolCalls, parseTools } from '../core/tools.js';
import type { OpenSession } from '../core/sessions.js';
import { generateFitting } from '../core/context-fit.js';
import { SHUTDOWN_DONE_REASON, ShutdownError } from '../core/shutdown.js';
import { badRequest, HttpError } from '../core/errors.js';
import { clientGone, ndjson, sendStream, sse } from './http.js';
import { finishReason, parseLogprobs, primed, rejectImages, rejectSuffix, parseThink, thinkOption, responseId, truncateDimensions, usageOf, visibleModels, wantsEventStream } from './single-model.js';

/**
 * The native Ollama API (seed 003) with Ollama's wire format, plus SPEC rule 2's superset fields on
 * non-streamed answers and rule 3's SSE for clients that ask for `text/event-stream`. `/api/chat` with
 * `messages` arrives here through chat-dispatch.ts; it also keeps seed 004's server-side sessions.
 */

/** The Ollama API level these routes follow, for clients that check `/api/version` before using a feature. */
export const OLLAMA_API_VERSION = '0.12.0';

type Body = Record<string, unknown>;

function bodyOf(request: FastifyRequest): Body {
  if (request.body === undefined || request.body === null) return {};
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  return request.body;
}

/** `model` (or the older `name`) as Ollama requires it. */
function modelName(body: Body, required = 'model is required'): string {
  const value = body.model ?? body.name;
  if (value === undefined || value === null || value === '') throw badRequest(required);
  if (typeof value !== 'string' || value.trim() === '') throw badRequest('model must be a non-empty string');
  return value.trim();
}

function optionalString(body: Body, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${key} must be a string`);
  return value;
}

function optionalBoolean(body: Body, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw badRequest(`${key} must be a boolean`);
  return value;
}

function parseImages(value: unknown, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((image) => typeof image !== 'string')) {
    throw badRequest(`${where} must be an array of base64-encoded images`);
  }
  return value.length > 0 ? (value as string[]) : undefined;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

export function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) throw badRequest('messages must be an array');
  return value.map((raw, index) => {
    const where = `messages[${index}]`;
    if (!isRecord(raw)) throw badRequest(`${where} must be an object`);
    if (typeof raw.role !== 'string' || !ROLES.has(raw.role)) {
      throw badRequest(`${where}.role must be system, user, assistant or tool`);
    }
    if (raw.content !== undefined && raw.content !== null && typeof raw.content !== 'string') {
      throw badRequest(`${where}.content must be a string`);
    }
    const message: ChatMessage = { role: raw.role as ChatMessage['role'], content: (raw.content as string | undefined) ?? '' };
    const images = parseImages(raw.images, `${where}.images`);
    if (images) message.images = images;
    const toolCalls = parseToolCalls(raw.tool_calls, where, 'object');
    if (toolCalls) message.tool_calls = toolCalls;
    const toolName = raw.tool_name ?? raw.name;
    if (typeof toolName === 'string') message.tool_name = toolName;
    return message;
  });
}

/** What chat and generate share: model, stream, keep_alive, options and format. */
interface Common {
  model: string;
  stream: boolean;
  keepAliveMs?: number;
  options: GenerationOptions;
  format: ReturnType<typeof parseOllamaFormat>;
  /** Checked against the model by `thinkOption` once it is resolved. */
  think: ThinkOption | undefined;
  /** Ollama's `truncate`: false refuses a prompt longer than the context instead of shortening it. */
  truncate: boolean | undefined;
  /** `logprobs: true` with `top_logprobs` alternatives (0 when not given); undefined when not asked. */
  logprobs: number | undefined;
}

function parseCommon(body: Body): Common {
  const model = modelName(body);
  return {
    model,
    stream: optionalBoolean(body, 'stream') ?? true,
    keepAliveMs: parseKeepAlive(body.keep_alive),
    options: parseOllamaOptions(body.options, { temperature: body.temperature, max_tokens: body.max_tokens }),
    format: parseOllamaFormat(body.format),
    think: parseThink(body.think),
    truncate: optionalBoolean(body, 'truncate'),
    logprobs: parseLogprobs(optionalBoolean(body, 'logprobs'), body.top_logprobs),
  };
}

/** Ollama's `context` from an earlier generate: token ids, sent back to continue from them. */
function parseContext(value: unknown): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 0)) {
    throw badRequest('context must be an array of token ids (non-negative integers)');
  }
  return value.length > 0 ? (value as number[]) : undefined;
}

/** Ollama's timing and token fields, in nanoseconds, as they appear on the final line. */
function metricsOf(stats: GenerationStats) {
  return {
    total_duration: stats.totalDurationNs,
    load_duration: stats.loadDurationNs,
    prompt_eval_count: stats.promptTokens,
    prompt_eval_duration: stats.promptEvalDurationNs,
    eval_count: stats.completionTokens,
    eval_duration: stats.evalDurationNs,
  };
}

/** Ollama's done_reason: tool calls end a turn normally ("stop"), as Ollama reports them. */
function doneReason(stats: GenerationStats): string {
  return stats.doneReason === 'length' || stats.doneReason === 'load' || stats.doneReason === 'unload' ? stats.doneReason : 'stop';
}

/**
 * An empty prompt (generate) or no messages (chat) loads the model, or unloads it with keep_alive 0,
 * and answers one final object with done_reason `load` / `unload`, as Ollama does.
 */
async function loadOrUnload(
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
  await services.router.onEveryReplica(model.name, (backend, name) => (unload ? backend.unload(name) : backend.load(name, keepAliveMs)));
  const reason = unload ? 'unload' : 'load';
  const body = { model: model.name, created_at: new Date().toISOString(), ...answer, done: true, done_reason: reason };
  if (!common.stream) return reply.send(body);
  if (wantsEventStream(accept)) return reply.header('content-type', 'text/event-stream').send(sse({ done: true, full_text: '', done_reason: reason }));
  return reply.header('content-type', 'application/x-ndjson').send(ndjson(body));
}

/** How chat and generate differ on the wire: where the text goes, the object names, sessions. */
interface Shape {
  /** The field carrying text in a streamed line (`message` or `response`), with thoughts beside it. */
  piece(text: string, toolCalls?: ToolCall[], thinking?: string): Record<string, unknown>;
  /** SPEC rule 2's superset fields beyond Ollama's, on a non-streamed answer. */
  superset(text: string, stats: GenerationStats, toolCalls?: ToolCall[]): Record<string, unknown>;
  /** Runs when the generation finished normally, before the final line goes out (sessions record the turn). */
  finished?(text: string, stats: GenerationStats): Promise<void>;
  /** Fields of the final line and the SSE final event (session_id). */
  extra?: Record<string, unknown>;
  /** Fields of the final line that depend on the generation (generate's `context`). */
  final?(stats: GenerationStats): Record<string, unknown>;
}

const chatMessage = (text: string, toolCalls?: ToolCall[], thinking?: string) => ({
  role: 'assistant',
  content: text,
  ...(thinking === undefined ? {} : { thinking }),
  ...(toolCalls?.length ? { tool_calls: ollamaToolCalls(toolCalls) } : {}),
});

function completionId(): string {
  return responseId('cmpl');
}

/** Streams or collects one generation in Ollama's format (or seed 004's SSE), as the request asks. */
async function respond(
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
          // Seed 004's final event, with the tool calls in Ollama's shape when the model made any.
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

/** `POST /api/chat` with `messages`: one model, Ollama's wire format, seed 004's sessions. */
export async function ollamaChat(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const common = parseCommon(body);
  const messages = parseMessages(body.messages);
  const tools = parseTools(body.tools);
  const model = await services.router.resolve(common.model);
  rejectImages(model, messages.some((m) => m.images !== undefined));
  const think = thinkOption(model, common.think);
  if (messages.length === 0) {
    return loadOrUnload(services, reply, model, common, { message: { role: 'assistant', content: '' } }, request.headers.accept);
  }
  const session: OpenSession = await services.sessions.open(body.session_id, request.principal);
  const options = common.options;
  const shape: Shape = {
    piece: (text, toolCalls, thinking) => ({ message: chatMessage(text, toolCalls, thinking) }),
    extra: { session_id: session.id },
    superset: (text, stats, toolCalls) => ({
      usage: usageOf(stats),
      id: completionId(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      choices: [{ index: 0, message: chatMessage(text, toolCalls), finish_reason: finishReason(stats) }],
    }),
    finished: (text, stats) =>
      services.sessions.record(session, request.principal, model.name, [
        ...messages,
        { role: 'assistant', content: text, ...(stats.toolCalls?.length ? { tool_calls: stats.toolCalls } : {}) },
      ]),
  };
  return respond(request, reply, model.name, common.stream, (signal) =>
    generateFitting([...session.history, ...messages], (fitting) =>
      services.generation.chat(
        { model: model.name, messages: fitting, options, format: common.format, tools, think, keepAliveMs: keepAliveFor(request.principal, common.keepAliveMs), truncate: common.truncate, logprobs: common.logprobs, signal },
        request.usage,
      ),
      { truncate: common.truncate },
    ),
    shape,
  );
}

async function ollamaGenerate(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const common = parseCommon(body);
  const prompt = optionalString(body, 'prompt') ?? '';
  const system = optionalString(body, 'system');
  const suffix = optionalString(body, 'suffix');
  const raw = optionalBoolean(body, 'raw');
  const images = parseImages(body.images, 'images');
  const context = parseContext(body.context);
  const model = await services.router.resolve(common.model);
  rejectImages(model, images !== undefined);
  const think = thinkOption(model, common.think);
  rejectSuffix(model, suffix);
  if (prompt === '' && !system && !images) {
    return loadOrUnload(services, reply, model, common, { response: '' }, request.headers.accept);
  }
  const options = common.options;
  const shape: Shape = {
    piece: (text, _toolCalls, thinking) => ({ response: text, ...(thinking === undefined ? {} : { thinking }) }),
    // Ollama's clients (ollama-js, the AI SDK's provider) read `context` on the final object; a
    // backend that does not report it gives an empty one rather than none.
    final: (stats) => ({ context: stats.context ?? [] }),
    superset: (text, stats) => ({
      text,
      usage: usageOf(stats),
      id: completionId(),
      object: 'text.completion',
      created: Math.floor(Date.now() / 1000),
      choices: [{ index: 0, text, finish_reason: finishReason(stats) }],
    }),
  };
  return respond(request, reply, model.name, common.stream, (signal) =>
    services.generation.complete(
      { model: model.name, prompt, raw, system, suffix, options, format: common.format, think, keepAliveMs: keepAliveFor(request.principal, common.keepAliveMs), context, truncate: common.truncate, logprobs: common.logprobs, signal },
      request.usage,
    ),
    shape,
  );
}

/** Ollama's `details` object of /api/tags, /api/ps and /api/show. */
function details(info: ModelInfo) {
  return {
    parent_model: '',
    format: info.format ?? 'gguf',
    family: info.family ?? '',
    families: info.families ?? (info.family ? [info.family] : null),
    parameter_size: info.parameterSize ?? '',
    quantization_level: info.quantization ?? '',
  };
}

function tagEntry(model: RoutedModel) {
  const { info } = model;
  return {
    name: model.name,
    model: model.name,
    modified_at: info.modifiedAt ?? new Date(0).toISOString(),
    size: info.sizeBytes ?? 0,
    digest: info.digest ?? '',
    details: details(info),
  };
}

/** Ollama's /api/ps lists a model as /api/tags does, less `modified_at`. */
function withoutModifiedAt({ modified_at: _modified, ...entry }: ReturnType<typeof tagEntry>) {
  return entry;
}

function modelfile(services: Services, model: RoutedModel): string {
  const settings = services.catalog.get(model.name)?.modelfile;
  const lines = [
    '# Modelfile generated by "ollama show"',
    '# To build a new Modelfile based on this, replace FROM with:',
    `# FROM ${model.name}`,
    '',
    `FROM ${model.name}`,
  ];
  const template = settings?.template ?? model.info.template;
  if (template) lines.push(`TEMPLATE """${template}"""`);
  if (settings?.system) lines.push(`SYSTEM """${settings.system}"""`);
  for (const line of parameterLines(services, model.name).split('\n')) if (line) lines.push(`PARAMETER ${line.replace(/\s+/, ' ')}`);
  for (const message of settings?.messages ?? []) lines.push(`MESSAGE ${message.role} """${message.content}"""`);
  return lines.join('\n') + '\n';
}

/** Ollama's `parameters` text: one `name value` line per default the catalog sets for the model. */
function parameterLines(services: Services, model: string): string {
  const parameters = services.catalog.get(model)?.parameters ?? {};
  const lines: string[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    if (value === undefined) continue;
    const ollamaName = name === 'max_tokens' ? 'num_predict' : name;
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${ollamaName.padEnd(30)} ${JSON.stringify(item)}`);
  }
  return lines.join('\n');
}

/** Ollama's capability names from what a backend reports, `completion` when it says nothing. */
function capabilities(info: ModelInfo): string[] {
  return info.capabilities ?? ['completion'];
}

function parseEmbedInput(value: unknown, key: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  throw badRequest(`${key} must be a string or an array of strings`);
}

/** Follows a pull job as Ollama's progress lines; the last is `{"status":"success"}` or an error. */
async function* pullLines(services: Services, jobId: string, signal: AbortSignal): AsyncGenerator<Record<string, unknown>> {
  let last = '';
  for await (const job of services.pulls.follow(jobId, signal)) {
    let line: Record<string, unknown>;
    if (job.state === 'success') line = { status: 'success' };
    else if (job.state !== 'running') line = { error: job.error ?? job.status };
    else {
      line = { status: job.status };
      if (job.status.startsWith('pulling ') && job.status !== 'pulling manifest') {
        if (job.digest) line.digest = job.digest;
        if (job.total !== undefined) line.total = job.total;
        if (job.completed !== undefined) line.completed = job.completed;
      }
    }
    const key = JSON.stringify(line);
    if (key === last) continue;
    last = key;
    yield line;
    if (job.state !== 'running') return;
  }
}

export function ollamaRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    // Bodies are validated by the handlers so that messages are Ollama's; the schemas document them.
    const doc = (summary: string, properties: Record<string, unknown> = {}) => ({
      tags: ['ollama'],
      summary,
      ...(Object.keys(properties).length ? { body: { type: 'object', properties } } : {}),
    });

    app.post('/api/generate', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('Generate a completion (Ollama); empty prompt loads the model, keep_alive 0 unloads it', {
        model: { type: 'string' }, prompt: { type: 'string' }, suffix: { type: 'string' }, system: { type: 'string' },
        raw: { type: 'boolean' }, stream: { type: 'boolean' }, format: {}, options: { type: 'object' }, keep_alive: {},
        images: { type: 'array' }, temperature: { type: 'number' }, max_tokens: { type: 'integer' }, context: { type: 'array' }, truncate: { type: 'boolean' }, logprobs: { type: 'boolean' }, top_logprobs: { type: 'integer' },
      }),
    }, (request, reply) => ollamaGenerate(services, request, reply));

    app.post('/api/embed', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('Embeddings (L2-normalised) for a string or an array of strings', {
        model: { type: 'string' }, input: {}, truncate: { type: 'boolean' }, dimensions: { type: 'integer' }, keep_alive: {}, options: { type: 'object' },
      }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelName(body);
      const input = parseEmbedInput(body.input, 'input');
      const truncate = optionalBoolean(body, 'truncate');
      const keepAliveMs = keepAliveFor(request.principal, parseKeepAlive(body.keep_alive));
      parseOllamaOptions(body.options);
      const model = await services.router.resolve(name);
      const started = process.hrtime.bigint();
      if (input.length === 0) {
        await services.router.onEveryReplica(model.name, (backend, m) => backend.load(m, keepAliveMs));
        const total = Number(process.hrtime.bigint() - started);
        return { model: model.name, embeddings: [], total_duration: total, load_duration: total, prompt_eval_count: 0 };
      }
      const result = await services.router.embed({ model: model.name, input, truncate, keepAliveMs, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      return {
        model: model.name,
        embeddings: truncateDimensions(result.embeddings, body.dimensions),
        total_duration: result.totalDurationNs,
        load_duration: result.loadDurationNs,
        prompt_eval_count: result.promptTokens,
      };
    });

    app.post('/api/embeddings', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('One embedding for `prompt` (Ollama) or `input` (seed 004)', { model: { type: 'string' }, prompt: { type: 'string' }, input: { type: 'string' }, keep_alive: {} }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelName(body);
      if (body.prompt !== undefined && body.input !== undefined) throw badRequest('give prompt or input, not both');
      const key = body.prompt !== undefined ? 'prompt' : 'input';
      const text = body[key] ?? '';
      if (typeof text !== 'string') throw badRequest(`${key} must be a string`);
      const keepAliveMs = keepAliveFor(request.principal, parseKeepAlive(body.keep_alive));
      parseOllamaOptions(body.options);
      const model = await services.router.resolve(name);
      if (text === '') {
        await services.router.onEveryReplica(model.name, (backend, m) => backend.load(m, keepAliveMs));
        return { embedding: [], model: model.name };
      }
      const result = await services.router.embed({ model: model.name, input: [text], keepAliveMs, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      return { embedding: result.embeddings[0], model: model.name };
    });

    app.get('/api/tags', { config: { access: 'model' }, schema: { tags: ['ollama'], summary: 'Local models with their details' } }, async (request) => ({
      models: (await visibleModels(services, request.principal)).map(tagEntry),
    }));

    app.get('/api/ps', { config: { access: 'model' }, schema: { tags: ['ollama'], summary: 'Models loaded in memory' } }, async (request) => ({
      models: (await visibleModels(services, request.principal))
        .filter((model) => model.info.loaded)
        .map((model) => ({
          ...withoutModifiedAt(tagEntry(model)),
          size: model.info.loadedSizeBytes ?? model.info.sizeBytes ?? 0,
          // Go's zero time is what Ollama clients read as "no expiry scheduled" (in use, or kept forever).
          expires_at: model.info.expiresAt ?? '0001-01-01T00:00:00Z',
          size_vram: 0,
          ...(model.info.contextSize ? { context_length: model.info.contextSize } : {}),
        })),
    }));

    app.post('/api/show', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('Model details: modelfile, parameters, template, details, model_info, capabilities', { model: { type: 'string' }, name: { type: 'string' }, verbose: { type: 'boolean' } }),
    }, async (request) => {
      const model = await services.router.resolve(modelName(bodyOf(request)));
      const { info } = model;
      const settings = services.catalog.get(model.name)?.modelfile;
      return {
        license: '',
        modelfile: modelfile(services, model),
        parameters: parameterLines(services, model.name),
        template: settings?.template ?? info.template ?? '',
        ...(settings?.system ? { system: settings.system } : {}),
        ...(settings?.messages?.length ? { messages: settings.messages } : {}),
        details: details(info),
        model_info: info.modelInfo ?? {
          'general.architecture': info.family ?? '',
          ...(info.family && info.contextSize ? { [`${info.family}.context_length`]: info.contextSize } : {}),
        },
        capabilities: capabilities(info),
        modified_at: info.modifiedAt ?? new Date(0).toISOString(),
      };
    });

    app.post('/api/pull', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Download a model (URL, hf:owner/repo/file.gguf, or an Ollama name); NDJSON progress', {
        model: { type: 'string' }, name: { type: 'string' }, stream: { type: 'boolean' }, insecure: { type: 'boolean' },
      }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const source = modelName(body);
      const stream = optionalBoolean(body, 'stream') ?? true;
      const job = await services.pulls.start(source);
      const signal = clientGone(request, reply);
      if (!stream) {
        let last: Record<string, unknown> = {};
        for await (const line of pullLines(services, job.id, signal)) last = line;
        // The model host failed, not this server: a gateway error that carries the host's reason.
        if (typeof last.error === 'string') throw new BackendError(last.error, 502);
        return last;
      }
      async function* lines(): AsyncGenerator<string> {
        for await (const line of pullLines(services, job.id, signal)) yield ndjson(line);
      }
      return sendStream(reply, 'application/x-ndjson', lines());
    });

    // Pushing needs a registry account and a model in Ollama's layer format; neither exists here, so the
    // request is answered with that reason (after the usual checks) instead of a bare 404.
    app.post('/api/push', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Push a model to a registry (not supported: answers why)', { model: { type: 'string' }, name: { type: 'string' }, stream: { type: 'boolean' } }),
    }, async (request, reply) => {
      const model = await services.router.resolve(modelName(bodyOf(request)));
      // Sent here, not thrown: the error handler hides the message of any 5xx that is not a backend's.
      return reply.code(501).send({ error: `pushing '${model.name}' to a registry is not supported by this server: push from the Ollama host that has it` });
    });

    app.delete('/api/delete', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Delete a model from every backend that has it', { model: { type: 'string' }, name: { type: 'string' } }),
    }, async (request, reply) => {
      const name = modelName(bodyOf(request));
      await services.router.onEveryReplica(name, async (backend, model) => {
        if (!backend.delete) throw new HttpError(400, `backend ${backend.id} cannot delete models`);
        await backend.delete(model);
      });
      return reply.code(200).send();
    });

    app.post('/api/copy', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Copy a model to a new name', { source: { type: 'string' }, destination: { type: 'string' } }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const source = optionalString(body, 'source');
      const destination = optionalString(body, 'destination');
      if (!source || !destination) throw badRequest('source and destination are required');
      const target = normaliseModelName(destination);
      await services.router.onEveryReplica(source, async (backend, model) => {
        if (!backend.copy) throw new HttpError(400, `backend ${backend.id} cannot copy models`);
        await backend.copy(model, target);
      });
      return reply.code(200).send();
    });

    app.get('/api/version', { config: { access: 'public' }, schema: { tags: ['ollama'], summary: 'The Ollama API version served' } }, async () => ({
      version: OLLAMA_API_VERSION,
    }));
  };
}
