import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Services } from '../../services.js';
import { PushStream } from '../../../shared/push-stream.js';
import { EvalStore, FINISHED } from '../../../store/evals.js';
import { exportEval, type EvalExportFormat } from '../../../arena/evals/export.js';
import { EVALS_SURFACE } from '../../../arena/evals/pacing.js';
import { EvalJobs, type EvalEvent } from '../../../arena/evals/runner.js';
import { EvalService } from '../../../arena/evals/service.js';
import { MAX_CELLS, MAX_CONFIGURATIONS } from '../../../arena/evals/suite.js';
import { catalogDefaults } from './request.js';
import { badRequest } from '../../../gateway/errors.js';
import { ndjson, sendStream, sse } from '../../streaming.js';
import { EXPORT_TYPES } from '../../../arena/run-export.js';
import { integerQuery } from './runs.js';

/**
 * Evaluations over HTTP: submit a suite (JSON or YAML), list and read evaluations, follow one live
 * (NDJSON, or SSE), cancel, re-run and export. An API key sees only its own evaluations.
 */

const HEARTBEAT_MS = 15_000;
const error = { type: 'object', properties: { error: { type: 'string' } } } as const;
const progress = { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' } } } as const;
const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const created = { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' }, progress } } as const;
const access = { access: 'model' as const, surface: EVALS_SURFACE };

const suiteBody = {
  type: 'object',
  description: `An evaluation suite (also accepted as YAML with Content-Type application/yaml). At most ${MAX_CONFIGURATIONS} configurations and ${MAX_CELLS} cells; see docs/evaluations.md.`,
  properties: {
    name: { type: 'string' },
    prompts: { type: 'array', items: { description: 'A text, or { prompt | messages, system?, vars?, reference?, assert? }' } },
    model_instances: { type: 'array', items: { type: 'object', additionalProperties: true } },
    grid: { type: 'object', additionalProperties: true, description: 'model, temperature, top_p, top_k, repeat_penalty, num_predict, seed, system: lists of values' },
    repeats: { type: 'integer' },
    assert: { type: 'array', items: { type: 'object', additionalProperties: true } },
    judge: { type: 'object', additionalProperties: true, description: '{ mode: pairwise | score, model, rubric, ...sampling settings }' },
    threshold: { type: 'object', properties: { pass_rate: { type: 'number' } } },
    concurrency: { type: 'integer' },
  },
} as const;

const evalSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'cancelled', 'failed'] },
    progress,
    passed: { type: 'boolean', nullable: true },
    summary: { type: 'array', items: { type: 'object', additionalProperties: true, description: 'instance_id, pass_rate, pass_rate_low, pass_rate_high (95% Wilson), latency_mean_s, latency_p95_s, ttft_mean_s, ttft_p95_s, tokens_per_sec_mean, judge, meets_threshold' } },
    cells: { type: 'array', items: { type: 'object', additionalProperties: true, description: 'prompt_index, instance_id, repeat, answer, metrics, assertions: [{type, pass}], pass, error, judge' } },
  },
} as const;

export function evalRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const store = new EvalStore(services.store);
    const jobs = new EvalJobs({
      store,
      generation: services.generation,
      router: services.router,
      shared: services.shared,
      limiter: services.limiter,
      ledger: services.usageLedger,
      onError: (error) => app.log.error({ err: error }, 'evaluation failed'),
      runnerId: services.shared.replicaId,
      lease: { renewMs: services.config.evalLeaseRenewMs, expiryMs: services.config.evalLeaseExpiryMs },
      principalOf: async (ownerKeyId) => (ownerKeyId === null ? null : services.keys.principal(ownerKeyId)),
      onResume: (id) => app.log.info({ evaluation: id }, 'resuming an evaluation whose lease had passed'),
    });
    const evals = new EvalService({ store, jobs, router: services.router, catalog: services.catalog, defaults: catalogDefaults(services) });
    await jobs.listen();
    const open = new Set<PushStream<string>>();
    app.addHook('preClose', async () => {
      for (const stream of open) stream.end();
      await jobs.close();
    });
    // The same suite document as the CLI's files: YAML (of which JSON is a part) is read here as text.
    app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_request, body, done) => done(null, body));

    app.post('/api/evals', {
      config: access,
      schema: { tags: ['evaluations'], summary: 'Start an evaluation of a suite; answers its id at once', body: suiteBody, response: { 201: created, 400: error, 403: error } },
      attachValidation: true,
    }, async (request, reply) => {
      if (request.body === undefined || request.body === null) throw badRequest('the suite is empty: send a suite document');
      const suite = await evals.prepare(request.body, request.principal);
      const evaluation = await evals.start(suite, request.principal);
      return reply.code(201).send({ id: evaluation.id, status: evaluation.status, progress: { done: 0, total: evaluation.total } });
    });

    app.get('/api/evals', {
      config: access,
      schema: {
        tags: ['evaluations'],
        summary: 'Evaluations, newest first (an API key sees its own)',
        querystring: { type: 'object', properties: { limit: { type: 'string', description: '1-200, default 50' }, offset: { type: 'string', description: '0 or more, default 0' } } },
        response: { 200: { type: 'object', properties: { total: { type: 'integer' }, evaluations: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, 400: error },
      },
    }, async (request) => {
      const query = request.query as Record<string, unknown>;
      const limit = integerQuery(query.limit, 'limit', 50, 1, 200);
      const offset = integerQuery(query.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
      const principal = request.principal;
      const { evaluations, total } = await store.list({ limit, offset, ownerKeyId: principal?.kind === 'key' ? principal.keyId : undefined });
      return {
        total,
        evaluations: evaluations.map((e) => ({ id: e.id, name: e.name, status: e.status, created_at: e.createdAt, finished_at: e.finishedAt, rerun_of: e.rerunOf, total: e.total, configurations: e.suite.instances.length, prompts: e.suite.prompts.length })),
      };
    });

    app.get('/api/evals/:id', {
      config: access,
      schema: { tags: ['evaluations'], summary: 'An evaluation: status, progress, summary per configuration and every cell', params: idParams, response: { 200: evalSchema, 404: error } },
    }, async (request) => evals.view(await evals.find((request.params as { id: string }).id, request.principal)));

    app.get('/api/evals/:id/events', {
      config: access,
      schema: {
        tags: ['evaluations'],
        summary: 'Live events of an evaluation: NDJSON, or SSE with Accept: text/event-stream or ?format=sse',
        description: 'First a snapshot {type:"snapshot", status, progress}, then status, cell and judgement events, and {type:"end"} when it has finished.',
        params: idParams,
        querystring: { type: 'object', properties: { format: { type: 'string', enum: ['ndjson', 'sse'] } } },
      },
    }, async (request, reply) => {
      const evaluation = await evals.find((request.params as { id: string }).id, request.principal);
      const wantsSse = (request.query as { format?: string }).format === 'sse' || (request.headers.accept ?? '').includes('text/event-stream');
      return follow(reply, evaluation.id, wantsSse);
    });

    app.post('/api/evals/:id/cancel', {
      config: access,
      schema: { tags: ['evaluations'], summary: 'Cancel a queued or running evaluation; finished cells stay', params: idParams, response: { 200: created, 404: error, 409: error } },
    }, async (request, reply) => {
      const evaluation = await evals.find((request.params as { id: string }).id, request.principal);
      if (FINISHED.has(evaluation.status)) return reply.code(409).send({ error: `The evaluation has already ended (${evaluation.status})` });
      await jobs.cancel(evaluation.id);
      const view = await evals.view((await store.get(evaluation.id))!);
      return { id: view.id, status: view.status, progress: view.progress };
    });

    app.post('/api/evals/:id/rerun', {
      config: access,
      schema: {
        tags: ['evaluations'],
        summary: 'Run a finished evaluation again, every cell or only those that failed (a new evaluation)',
        params: idParams,
        body: { type: 'object', nullable: true, properties: { failed_only: { type: 'boolean' } } },
        response: { 201: created, 400: error, 404: error, 409: error },
      },
    }, async (request, reply) => {
      const evaluation = await evals.find((request.params as { id: string }).id, request.principal);
      const failedOnly = (request.body as { failed_only?: boolean } | undefined)?.failed_only === true;
      const next = await evals.rerun(evaluation, failedOnly, request.principal);
      return reply.code(201).send({ id: next.id, status: next.status, progress: { done: 0, total: next.total } });
    });

    app.get('/api/evals/:id/export', {
      config: access,
      schema: {
        tags: ['evaluations'],
        summary: 'Download an evaluation as JSON, CSV (one row per cell) or Markdown',
        params: idParams,
        querystring: { type: 'object', properties: { format: { type: 'string', default: 'json' } } },
      },
    }, async (request, reply) => {
      const format = (request.query as { format?: string }).format ?? 'json';
      if (format !== 'json' && format !== 'csv' && format !== 'md') throw badRequest('format must be json, csv or md');
      const view = await evals.view(await evals.find((request.params as { id: string }).id, request.principal));
      reply.header('content-type', EXPORT_TYPES[format as EvalExportFormat]);
      reply.header('content-disposition', `attachment; filename="evaluation-${view.id}.${format}"`);
      return exportEval(view, format as EvalExportFormat);
    });

    async function follow(reply: FastifyReply, id: string, asSse: boolean): Promise<FastifyReply> {
      const stream = new PushStream<string>();
      const write = (event: EvalEvent | { type: 'snapshot' | 'ping'; [key: string]: unknown }) => stream.push(asSse ? sse(event) : ndjson(event));
      // Events that come while the state is read wait for the snapshot, so that it is always first; and
      // what the snapshot already counts (a cell stored just before it was read) is not told again.
      let snapshot: { status: string; progress: { done: number; total: number } } | null = null;
      const held: EvalEvent[] = [];
      const onEvent = (event: EvalEvent) => {
        if (!snapshot) held.push(event);
        else if (!counted(snapshot, event)) {
          write(event);
          if (event.type === 'end') stop();
        }
      };
      // Listen first, then read the state: no event between the two is lost.
      jobs.events.on(id, onEvent);
      const heartbeat = setInterval(() => write({ type: 'ping' }), HEARTBEAT_MS);
      const stop = () => {
        jobs.events.off(id, onEvent);
        clearInterval(heartbeat);
        open.delete(stream);
        stream.end();
      };
      open.add(stream);
      reply.raw.on('close', stop);
      const current = await store.get(id);
      const view = current && (await evals.view(current));
      snapshot = { status: view?.status ?? 'failed', progress: view?.progress ?? { done: 0, total: 0 } };
      write({ type: 'snapshot', ...snapshot });
      if (!current || FINISHED.has(current.status)) {
        write({ type: 'end', status: current?.status ?? 'failed' });
        stop();
      } else {
        // A status that came while the state was read is the snapshot's own; one after it is news (a resume).
        for (const event of held.splice(0)) if (event.type !== 'status' || event.status !== snapshot.status) onEvent(event);
      }
      // Unfinished and run nowhere (its replica stopped) is no end: once its lease passes this replica,
      // or another, resumes it and its events follow.
      return sendStream(reply, asSse ? 'text/event-stream' : 'application/x-ndjson', stream);
    }
  };
}

/** Whether a snapshot's progress already counts this event's cell or judgement (progress only grows). */
function counted(snapshot: { progress: { done: number } }, event: EvalEvent): boolean {
  return (event.type === 'cell' || event.type === 'judgement') && event.progress.done <= snapshot.progress.done;
}
