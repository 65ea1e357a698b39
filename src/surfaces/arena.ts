import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from './services.js';
import { ArenaValidationError, checkModelsExist, historyFor, instanceMessages, ownHistoriesById, parseArenaRequest, type ArenaEvent, type InstanceDefaults, type ArenaRequest } from '../core/arena.js';
import type { ModelInstance } from '../domain/arena.js';
import type { ArenaMetrics } from '../domain/arena.js';
import { hideModel, mapIterator, maySee, ownerOf, startRecordedArena } from '../core/runs.js';
import { pullJobFor } from '../core/pull-jobs.js';
import { RunGoneError, RunStore, timeOrderedId, type NewRun, type RunKind, type RunRecord } from '../store/runs.js';
import { badRequest, HttpError } from '../core/errors.js';
import { clientGone, ndjson, sendStream } from './http.js';
import { healthBody } from './info.js';

/**
 * The Arena API of seeds 000 and 001: health, model names, multi-model chat (legacy `models` and v3
 * `model_instances`), the NDJSON comparison stream, and pull/delete.
 */

const messageSchema = {
  type: 'object',
  properties: { role: { type: 'string' }, content: { type: 'string' } },
} as const;

const instanceSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model: { type: 'string' },
    temperature: { type: 'number', description: '0.01-2.0, default 0.7' },
    top_p: { type: 'number', description: '0-1, default 0.9' },
    top_k: { type: 'integer', description: '0-100, default 40' },
    repeat_penalty: { type: 'number', description: '1.0-2.0, default 1.1' },
    num_predict: { type: 'integer', description: '-1 to 4096, default -1 (unlimited)' },
    seed: { type: 'integer', description: '0 = random' },
    system: { type: 'string' },
    history: {
      type: 'array',
      items: messageSchema,
      description: "This instance's own conversation instead of `history` (e.g. each column's earlier answers in a multi-turn comparison)",
    },
  },
} as const;

/** Documentation only: the handler validates, so that the seed's exact messages come back. */
export const arenaBodySchema = {
  type: 'object',
  properties: {
    history: { type: 'array', items: messageSchema },
    models: { type: 'array', items: { type: 'string' }, description: 'deprecated: use model_instances' },
    model_instances: { type: 'array', items: instanceSchema },
    stream: { type: 'boolean' },
    run_id: {
      type: 'string',
      description:
        "Continue this saved run: the turn is appended to it (X-Run-Id names the same run) instead of saving a new one. Only the run's owner (its API key, or the admin) may continue it (404 otherwise); a battle, or a run whose instances (ids and settings) or format differ from this request's, is a 400. The prompt is the history sent, as for a new run.",
    },
  },
} as const;

/** The admin catalog's default parameters of a model, in the Arena's terms (seed 002's max_tokens is num_predict). */
export function catalogDefaults(services: Services): InstanceDefaults {
  return (model) => {
    const parameters = services.catalog.get(model)?.parameters;
    return parameters && { ...parameters, num_predict: parameters.num_predict ?? parameters.max_tokens };
  };
}

/** The run a follow-up continues, checked, or undefined for a request that names none. */
export async function continuedRun(services: Services, request: FastifyRequest, arena: ArenaRequest): Promise<RunRecord | undefined> {
  const runId = ((request.body ?? {}) as { run_id?: unknown }).run_id;
  if (runId === undefined || runId === null) return undefined;
  if (typeof runId !== 'string' || runId === '') throw badRequest('run_id must be a non-empty string');
  const run = await new RunStore(services.store).get(runId);
  // Someone else's run answers as reading it does: as if it did not exist.
  if (!run || !maySee(request.principal, run.ownerKeyId)) throw new HttpError(404, 'Run not found');
  if (run.kind !== 'comparison') throw badRequest('A battle cannot be continued: start a new one');
  if (run.legacy !== arena.legacy) {
    throw badRequest(`run_id names a run made with ${run.legacy ? 'models' : 'model_instances'}: continue it the same way`);
  }
  const mismatch = instancesMismatch(run.instances, arena.instances);
  if (mismatch) throw badRequest(`The instances differ from those of run ${run.id} (${mismatch}): a conversation keeps its instances; start a new run without run_id`);
  return run;
}

const SETTINGS = ['model', 'temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed', 'system'] as const;

/** What tells a request's instances from a run's (by id, in any order), or null when they are the same. */
function instancesMismatch(saved: ModelInstance[], sent: ModelInstance[]): string | null {
  const byId = new Map(sent.map((i) => [i.id, i]));
  for (const instance of saved) {
    const other = byId.get(instance.id);
    if (!other) return `${instance.id} is missing`;
    const differs = SETTINGS.find((key) => (instance[key] ?? null) !== (other[key] ?? null));
    if (differs) return `${differs} of ${instance.id} differs`;
    byId.delete(instance.id);
  }
  const extra = byId.keys().next();
  return extra.done ? null : `${extra.value} is not in the run`;
}

export async function parseAndCheck(services: Services, body: unknown): Promise<ArenaRequest> {
  try {
    const request = parseArenaRequest(body);
    await checkModelsExist(services.router, request.instances, catalogDefaults(services));
    await checkPromptLengths(services, request);
    return request;
  } catch (error) {
    if (error instanceof ArenaValidationError) throw badRequest(error.message);
    throw error;
  }
}

/**
 * A newest message too long, by its length alone, for the context of a model only the embedded engine
 * serves is the client's 400 before anything is saved or started: a run row of megabytes would
 * otherwise be written first. Earlier exchanges are not counted: they are left out while the
 * conversation does not fit, and the newest message (with the system prompt) never is.
 */
async function checkPromptLengths(services: Services, request: ArenaRequest): Promise<void> {
  for (const instance of request.instances) {
    const model = await services.router.resolve(instance.model);
    if (!model.replicas.every((backend) => backend === services.engine)) continue;
    const history = historyFor(request, instance);
    const newestLength = history.at(-1)?.content.length ?? 0;
    const systemLength = instanceMessages(instance, history)
      .filter((message) => message.role === 'system')
      .reduce((sum, message) => sum + message.content.length, 0);
    await services.engine.checkPromptLength(model.name, newestLength + systemLength);
  }
}

/**
 * The key of an instance in results and stream lines: the model name (legacy) or the instance id.
 * Anonymous streams (battles) carry the instance id alone, so the contestants stay hidden.
 */
function identity(request: ArenaRequest, event: ArenaEvent, anonymous: boolean): Record<string, string> {
  if (anonymous) return { instance_id: event.instance.id };
  return request.legacy ? { model: shownModel(request, event.instance) } : { instance_id: event.instance.id, model: event.instance.model };
}

/**
 * The model name an answer carries: legacy requests are keyed by the names the client wrote (seed
 * 000's clients match lines to columns by it, so `x` stays `x`, not `x:latest`); v3 gives the resolved one.
 */
function shownModel(request: ArenaRequest, instance: ModelInstance): string {
  return request.legacy ? instance.id : instance.model;
}

/** One NDJSON line of `/api/stream_chat` (and of battles, anonymous). */
export function streamLine(request: ArenaRequest, event: ArenaEvent, anonymous = false): string {
  const who = identity(request, event, anonymous);
  if (event.type === 'token') {
    // Timing could tell a battle's contestants apart before the vote, so anonymous lines carry none.
    return ndjson({ ...who, token: event.text, done: false, ...(anonymous ? {} : { eval_s: Number(event.evalS.toFixed(3)) }) });
  }
  if (event.type === 'done') {
    const trimmed = event.trimmed > 0 ? { trimmed_turns: event.trimmed } : {};
    return ndjson({ ...who, token: '', done: true, done_reason: event.reason, ...trimmed, metrics: event.metrics });
  }
  const error = anonymous ? hideModel(event.error, event.instance) : event.error;
  return ndjson({ ...who, token: '', done: true, done_reason: event.reason, error, metrics: event.metrics });
}

export interface RunOptions {
  kind: RunKind;
  rerunOf?: string;
  /** Writes the run's row; a battle writes its battle row in the same transaction. */
  save?: (run: NewRun) => Promise<void>;
  /** Battles: no model names in the stream. */
  anonymous?: boolean;
  /** A follow-up: the turn is appended to this run (checked by `continuedRun`) instead of a new run. */
  continues?: RunRecord;
}

/**
 * Starts an Arena request that is saved as a run and sets its `X-Run-Id` header. The generations
 * start before the row is written, so saving never delays the first token.
 */
export async function recordedArena(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  arena: ArenaRequest,
  signal: AbortSignal,
  options: RunOptions,
): Promise<AsyncIterableIterator<ArenaEvent>> {
  const runs = new RunStore(services.store);
  const createdAt = new Date().toISOString();
  const continued = options.continues;
  const run: NewRun = {
    id: continued?.id ?? timeOrderedId(),
    kind: options.kind,
    ownerKeyId: ownerOf(request.principal),
    rerunOf: options.rerunOf ?? null,
    legacy: arena.legacy,
    history: arena.history,
    histories: ownHistoriesById(arena),
    instances: arena.instances,
    createdAt,
  };
  const save = continued
    ? async () => {
        try {
          return await runs.append(continued.id, { history: arena.history, histories: run.histories ?? null, createdAt });
        } catch (error) {
          if (error instanceof RunGoneError) throw new HttpError(404, 'Run not found');
          throw error;
        }
      }
    : () => (options.save ?? ((r: NewRun) => runs.create(r)))(run);
  const { events } = await startRecordedArena({
    generation: services.generation,
    runs,
    arena,
    runId: run.id,
    save,
    signal,
    usage: request.usage,
    onFinishError: (err) => request.log.error({ err, run: run.id }, 'saving the answers of a run failed'),
  });
  reply.header('x-run-id', run.id);
  return events;
}

/** Streams a recorded Arena request as the NDJSON of `/api/stream_chat`. */
export async function streamArena(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  arena: ArenaRequest,
  options: RunOptions,
): Promise<FastifyReply> {
  const events = await recordedArena(services, request, reply, arena, clientGone(request, reply), options);
  const lines = mapIterator(events, (event) => streamLine(arena, event, options.anonymous));
  return sendStream(reply, 'application/x-ndjson', lines);
}

interface InstanceResult {
  model: string;
  instance_id?: string;
  response: string;
  metrics: ArenaMetrics | null;
  error: string | null;
}

/** What a request's own fault (e.g. a prompt longer than the context) answered with, per instance. */
const clientErrors = new WeakMap<InstanceResult, number>();

/** Runs an Arena request to the end and shapes the seed's single or multiple answer. */
export async function arenaChat(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const arena = await parseAndCheck(services, request.body);
  const continues = await continuedRun(services, request, arena);
  const results = new Map<string, InstanceResult>();
  for (const instance of arena.instances) {
    results.set(instance.id, {
      model: shownModel(arena, instance),
      ...(arena.legacy ? {} : { instance_id: instance.id }),
      response: '',
      metrics: null,
      error: null,
    });
  }
  const cutByShutdown = new Set<string>();
  const events = await recordedArena(services, request, reply, arena, clientGone(request, reply), { kind: 'comparison', continues });
  for await (const event of events) {
    const result = results.get(event.instance.id)!;
    if (event.type === 'token') result.response += event.text;
    else if (event.type === 'done') result.metrics = event.metrics;
    else {
      result.error = event.error;
      result.metrics = event.metrics ?? null;
      if (event.status !== undefined) clientErrors.set(result, event.status);
      if (event.shutdown) cutByShutdown.add(event.instance.id);
    }
  }
  if (arena.instances.length === 1) {
    const only = results.get(arena.instances[0]!.id)!;
    // Cut short by the server's shutdown: a 503 saying so, not the seeds' 500.
    if (cutByShutdown.has(arena.instances[0]!.id)) return reply.code(503).send({ error: only.error, model: only.model });
    const status = clientErrors.get(only);
    if (only.error !== null && status !== undefined) return reply.code(status).send({ error: only.error, model: only.model });
    if (only.error !== null) {
      // Seeds 000/001's server error: the backend's own message goes in `details`.
      return reply.code(500).send({ error: 'An unexpected error occurred', details: only.error, model: only.model });
    }
    return only;
  }
  return { results: Object.fromEntries(results) };
}

export function arenaRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/health', {
      config: { access: 'public' },
      schema: { tags: ['arena'], summary: 'Service health with the number of models available ("degraded" with the reasons when Redis or the embedded engine is away)' },
    }, async () => {
      const models = await services.router.models();
      return healthBody(services, { service: 'ollama-arena', models_available: models.length });
    });

    app.post('/api/stream_chat', {
      config: { access: 'model' },
      attachValidation: true, // the schema documents; parseArenaRequest validates with the seed's messages
      schema: {
        tags: ['arena'],
        summary: 'Stream every instance of a comparison as interleaved NDJSON',
        description:
          'A follow-up question names the run it continues in `run_id`: the new turn (the history sent and every answer with its metrics) is appended to that run, and X-Run-Id answers the same id. Each instance may carry its own `history` (its own earlier answers).',
        body: arenaBodySchema,
        response: {
          200: {
            description: 'NDJSON lines {instance_id (or model for legacy requests), token, done, eval_s? (token lines: seconds since the first token), done_reason? (stop, length, context, cancelled, error), trimmed_turns?, metrics?, error?}; the comparison is saved as a run, or appended as a turn to the run named by run_id',
            headers: { 'x-run-id': { type: 'string', description: 'The saved run (GET /api/runs/{id}); a follow-up names the run it continued' } },
            content: { 'application/x-ndjson': { schema: { type: 'object', additionalProperties: true } } },
          },
        },
      },
    }, async (request, reply) => {
      const arena = await parseAndCheck(services, request.body);
      const continues = await continuedRun(services, request, arena);
      return streamArena(services, request, reply, arena, { kind: 'comparison', continues });
    });

    app.post('/api/pull_model', {
      config: { access: 'admin' },
      attachValidation: true, // the schema documents; the handler answers with the seed's message
      schema: {
        tags: ['arena'],
        summary: 'Start downloading a model (URL, hf:owner/repo/file.gguf, or an Ollama name); returns at once',
        body: { type: 'object', properties: { model: { type: 'string' }, name: { type: 'string' } } },
      },
    }, async (request) => {
      const body = (request.body ?? {}) as { model?: unknown; name?: unknown };
      if (typeof body.model !== 'string' || body.model.trim() === '') throw badRequest('Model name is required');
      if (body.name !== undefined && typeof body.name !== 'string') throw badRequest('name must be a string');
      const job = await services.pulls.start(body.model.trim(), body.name);
      // The source as the job shows it: a URL's query string (a download token) is not echoed.
      return { status: 'downloading', model: job.source, name: job.model, job_id: job.id };
    });

    app.get('/api/pulls', {
      config: { access: 'model' },
      schema: { tags: ['arena'], summary: 'Model downloads, running and recent, with progress (sources for the admin only)' },
    }, async (request) => ({ pulls: services.pulls.list().map((job) => pullJobFor(request.principal, job)) }));

    app.get('/api/pulls/:id', {
      config: { access: 'model' },
      schema: { tags: ['arena'], summary: 'One model download with its progress (its source for the admin only)' },
    }, async (request, reply) => {
      const job = services.pulls.get((request.params as { id: string }).id);
      if (!job) return reply.code(404).send({ error: 'Resource not found' });
      return pullJobFor(request.principal, job);
    });

    app.delete('/api/pulls/:id', {
      config: { access: 'admin' },
      schema: { tags: ['arena'], summary: 'Cancel a running model download' },
    }, async (request, reply) => {
      const cancelled = services.pulls.cancel((request.params as { id: string }).id);
      if (!cancelled) return reply.code(404).send({ error: 'No running download with that id' });
      return { status: 'cancelled' };
    });

    app.post('/api/delete_model', {
      config: { access: 'admin' },
      attachValidation: true, // the schema documents; the handler answers with the seed's message
      schema: {
        tags: ['arena'],
        summary: 'Delete a model from every backend that has it',
        body: { type: 'object', properties: { model: { type: 'string' } } },
      },
    }, async (request, reply) => {
      const body = (request.body ?? {}) as { model?: unknown };
      if (typeof body.model !== 'string' || body.model.trim() === '') throw badRequest('Model name is required');
      let deleted: string;
      try {
        deleted = (await services.router.resolve(body.model)).name;
      } catch {
        return reply.code(404).send({ error: `Model not found: ${body.model}` });
      }
      try {
        await services.router.onEveryReplica(deleted, async (backend, model) => {
          if (!backend.delete) throw new Error(`backend ${backend.id} cannot delete models`);
          await backend.delete(model);
        });
      } catch (error) {
        request.log.warn({ err: error }, 'delete failed');
        return reply.code(500).send({ error: 'Failed to delete model', details: (error as Error).message });
      }
      return { status: 'deleted', model: body.model };
    });
  };
}
