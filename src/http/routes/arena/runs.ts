import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { ArenaValidationError, resolveArenaRequest, type ArenaRequest } from '../../../arena/arena.js';
import { EXPORT_TYPES, exportRun, type ExportFormat } from '../../../arena/run-export.js';
import { isBlind, runSummaryView, runView } from '../../../arena/run-views.js';
import { maySee, mayUseModel, notAllowedMessage } from '../../../arena/run-access.js';
import { RunStore, type RunKind, type RunRecord } from '../../../store/runs.js';
import { answerSchema } from './battles.js';
import { streamArena } from './stream.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';

/** Run history: list, show, re-run and export saved comparisons and battles. */

const errorSchema = { type: 'object', properties: { error: { type: 'string' } } } as const;
const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

const battleVoteSchema = {
  type: 'object',
  nullable: true,
  description: 'The battle of a battle run, with its vote (winner null until voted)',
  properties: { id: { type: 'string' }, winner: { type: 'string', nullable: true }, voted_at: { type: 'string', nullable: true } },
} as const;

const commonProperties = {
  id: { type: 'string' },
  kind: { type: 'string', enum: ['comparison', 'battle'] },
  status: { type: 'string', enum: ['running', 'done', 'partial', 'error'] },
  created_at: { type: 'string' },
  finished_at: { type: 'string', nullable: true },
  rerun_of: { type: 'string', nullable: true },
  battle: battleVoteSchema,
  turn_count: { type: 'integer', description: 'How many turns (questions) the conversation has' },
  updated_at: { type: 'string', description: 'When the latest turn began (created_at for a run of one turn)' },
} as const;

const messagesSchema = { type: 'array', items: { type: 'object', properties: { role: { type: 'string' }, content: { type: 'string' } } } } as const;
const historiesSchema = {
  type: 'object',
  nullable: true,
  description: 'The conversations of instances sent their own instead of history, by instance id',
  additionalProperties: messagesSchema,
} as const;

const runSchema = {
  type: 'object',
  properties: {
    ...commonProperties,
    legacy: { type: 'boolean', description: 'A legacy `models` request: results keyed by model name' },
    status: { ...commonProperties.status, description: "The latest turn's" },
    finished_at: { ...commonProperties.finished_at, description: "When the latest turn ended" },
    history: { ...messagesSchema, description: 'The messages the latest turn was sent (its full prompt)' },
    histories: historiesSchema,
    instances: {
      type: 'array',
      description: 'Every instance with all its settings; an unvoted battle shows only {id, hidden: true}',
      items: { type: 'object', additionalProperties: true },
    },
    answers: { type: 'object', description: "The latest turn's answers, keyed by instance id", additionalProperties: answerSchema },
    turns: {
      type: 'array',
      description: 'Every turn of the conversation in order (one for a run never continued)',
      items: {
        type: 'object',
        properties: {
          turn: { type: 'integer', description: '1-based' },
          status: commonProperties.status,
          created_at: { type: 'string' },
          finished_at: { type: 'string', nullable: true },
          history: { ...messagesSchema, description: 'The messages this turn was sent' },
          histories: historiesSchema,
          answers: { type: 'object', description: 'Answers keyed by instance id', additionalProperties: answerSchema },
        },
      },
    },
  },
} as const;

const summarySchema = {
  type: 'object',
  properties: {
    ...commonProperties,
    status: { ...commonProperties.status, description: "The latest turn's" },
    prompt: { type: 'string', description: 'The last user message of the latest turn, at most 200 characters' },
    models: { type: 'array', items: { type: 'string' }, description: 'Empty for an unvoted battle' },
    instance_count: { type: 'integer' },
  },
} as const;

export function integerQuery(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw badRequest(`${name} must be an integer between ${min} and ${max}`);
  }
  return number;
}

export function runRoutes(services: Services) {
  const runs = new RunStore(services.store);

  async function visibleRun(request: FastifyRequest): Promise<RunRecord> {
    const run = await runs.get((request.params as { id: string }).id);
    if (!run || !maySee(request.principal, run.ownerKeyId)) throw new HttpError(404, 'Run not found');
    return run;
  }

  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/runs', {
      config: { access: 'model' },
      attachValidation: true, // query strings are strings; the handler checks the numbers
      schema: {
        tags: ['runs'],
        summary: 'Saved comparisons and battles, newest first: one entry per conversation, however many turns it has',
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'string', description: '1-100, default 20' },
            offset: { type: 'string', description: '0 or more, default 0' },
            kind: { type: 'string', enum: ['comparison', 'battle'] },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              runs: { type: 'array', items: summarySchema },
              total: { type: 'integer' },
              limit: { type: 'integer' },
              offset: { type: 'integer' },
            },
          },
          400: errorSchema,
        },
      },
    }, async (request) => {
      const query = request.query as Record<string, unknown>;
      const limit = integerQuery(query.limit, 'limit', 20, 1, 100);
      const offset = integerQuery(query.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
      if (query.kind !== undefined && query.kind !== 'comparison' && query.kind !== 'battle') {
        throw badRequest('kind must be "comparison" or "battle"');
      }
      const principal = request.principal;
      const { runs: page, total } = await runs.list({
        limit,
        offset,
        kind: query.kind as RunKind | undefined,
        ownerKeyId: principal?.kind === 'key' ? principal.keyId : undefined,
      });
      return { runs: page.map(runSummaryView), total, limit, offset };
    });

    app.get('/api/runs/:id', {
      config: { access: 'model' },
      schema: {
        tags: ['runs'],
        summary: 'One saved run: conversation, instances, answers, metrics, vote',
        description: 'turns lists every turn in order; status, finished_at, history, histories and answers are those of the latest turn.',
        params: idParams,
        response: { 200: runSchema, 404: errorSchema },
      },
    }, async (request) => runView(await visibleRun(request)));

    app.post('/api/runs/:id/rerun', {
      config: { access: 'model' },
      schema: {
        tags: ['runs'],
        summary: 'Run a saved run again with the same conversation and settings, streamed like /api/stream_chat',
        description:
          "The new run id is in the X-Run-Id header; its rerun_of is the original. A battle can be re-run only once voted. A conversation of several turns re-runs its latest turn (the full prompt that turn was sent, earlier answers included) as a new run of one turn.",
        params: idParams,
        response: {
          200: { description: 'NDJSON lines as /api/stream_chat', headers: { 'x-run-id': { type: 'string' } }, content: { 'application/x-ndjson': { schema: { type: 'object', additionalProperties: true } } } },
          400: errorSchema,
          403: errorSchema,
          404: errorSchema,
          409: errorSchema,
        },
      },
    }, async (request, reply) => {
      const run = await visibleRun(request);
      // Re-running an unvoted battle would show who the contestants are before the vote.
      if (isBlind(run)) throw new HttpError(409, 'Vote on this battle before re-running it');
      const saved: ArenaRequest = { history: run.history, instances: run.instances, legacy: run.legacy };
      const own = run.histories;
      if (own) saved.ownHistories = new Map(saved.instances.filter((i) => own[i.id]).map((i) => [i, own[i.id]!]));
      // The key's allow-list may have changed since the run was made.
      const refused = saved.instances.find((i) => !mayUseModel(request.principal, i.model));
      if (refused) throw new HttpError(403, notAllowedMessage(refused.model), 'permission_error', 'model_not_allowed');
      let arena: ArenaRequest;
      try {
        arena = await resolveArenaRequest(services.router, saved);
      } catch (error) {
        if (error instanceof ArenaValidationError) throw badRequest(error.message);
        throw error;
      }
      return streamArena(services, request, reply, arena, { kind: 'comparison', rerunOf: run.id });
    });

    app.get('/api/runs/:id/export', {
      config: { access: 'model' },
      attachValidation: true,
      schema: {
        tags: ['runs'],
        summary: 'Download a run as JSON, CSV (one row per instance and turn) or Markdown, every turn included',
        params: idParams,
        querystring: { type: 'object', properties: { format: { type: 'string', enum: ['json', 'csv', 'md'], default: 'json' } } },
        response: {
          200: {
            description: 'The run as a file (Content-Disposition: attachment)',
            content: {
              'application/json': { schema: runSchema },
              'text/csv': { schema: { type: 'string' } },
              'text/markdown': { schema: { type: 'string' } },
            },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    }, async (request, reply) => {
      const format = (request.query as { format?: unknown }).format ?? 'json';
      if (typeof format !== 'string' || !(format in EXPORT_TYPES)) throw badRequest('format must be json, csv or md');
      const run = await visibleRun(request);
      const body = exportRun(runView(run), format as ExportFormat);
      reply.header('content-type', EXPORT_TYPES[format as ExportFormat]);
      reply.header('content-disposition', `attachment; filename="run-${run.id}.${format}"`);
      return reply.send(body);
    });
  };
}
