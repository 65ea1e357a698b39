import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { ArenaValidationError, parseHistory } from '../../../arena/arena.js';
import { battleRequest, ModelNotAllowedError, parseWinner, pickContestants, resolvePool, revealed } from '../../../arena/battles.js';
import { anonymiseAnswers } from '../../../arena/run-views.js';
import { maySee, mayUseModel } from '../../../arena/run-access.js';
import { BattleStore, type BattleRecord } from '../../../store/battles.js';
import { RunStore } from '../../../store/runs.js';
import { arenaBodySchema, catalogDefaults } from './request.js';
import { streamArena } from './stream.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';

/** Blind battles: start one as an anonymous stream, vote once, then see who was who. */

const errorSchema = { type: 'object', properties: { error: { type: 'string' } } } as const;

const contestantSchema = {
  type: 'object',
  description: 'A revealed side: its configuration key (its instance id), model and every setting',
  properties: {
    instance_id: { type: 'string' },
    model: { type: 'string' },
    temperature: { type: 'number' },
    top_p: { type: 'number' },
    top_k: { type: 'integer' },
    repeat_penalty: { type: 'number' },
    num_predict: { type: 'integer' },
    seed: { type: 'integer' },
    system: { type: 'string' },
  },
} as const;

const contestantsSchema = {
  type: 'object',
  nullable: true,
  description: 'null until the battle is voted on',
  properties: { a: contestantSchema, b: contestantSchema },
} as const;

export const answerSchema = {
  type: 'object',
  properties: {
    response: { type: 'string' },
    metrics: {
      type: 'object',
      nullable: true,
      properties: {
        tokens: { type: 'integer' },
        duration_s: { type: 'number' },
        tokens_per_sec: { type: 'number' },
        eval_tokens_per_sec: { type: 'number' },
        ttft_s: { type: 'number', nullable: true },
        prompt_tokens: { type: 'integer' },
      },
    },
    error: { type: 'string', nullable: true },
  },
} as const;

const winnerSchema = { type: 'string', enum: ['a', 'b', 'tie', 'both_bad'] } as const;

const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

function notFound(): HttpError {
  return new HttpError(404, 'Battle not found');
}

export function battleRoutes(services: Services) {
  const battles = new BattleStore(services.store.db);
  const runs = new RunStore(services.store);

  async function visibleBattle(request: FastifyRequest): Promise<BattleRecord> {
    const battle = await battles.get((request.params as { id: string }).id);
    if (!battle || !maySee(request.principal, battle.ownerKeyId)) throw notFound();
    return battle;
  }

  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/battles', {
      config: { access: 'model' },
      attachValidation: true, // documented here, validated by the handler with the Arena's messages
      schema: {
        tags: ['battles'],
        summary: 'Start a blind battle: two random contestants of the pool stream anonymously as a and b',
        description:
          'Streams NDJSON like /api/stream_chat with instance_id "a" or "b" and no model names. Headers X-Battle-Id and X-Run-Id are set before the first line. Default pool: every model, default settings; with one model, two temperature variants of it.',
        body: {
          type: 'object',
          properties: {
            history: arenaBodySchema.properties.history,
            pool: {
              type: 'array',
              description: 'Model names and/or model instance objects (as in model_instances)',
              items: { anyOf: [{ type: 'string' }, arenaBodySchema.properties.model_instances.items] },
            },
          },
        },
        response: {
          200: {
            description: 'NDJSON lines {instance_id: "a"|"b", token, done, metrics?, error?}',
            headers: {
              'x-battle-id': { type: 'string', description: 'The battle to vote on' },
              'x-run-id': { type: 'string', description: 'The saved run' },
            },
            content: {
              'application/x-ndjson': {
                schema: {
                  type: 'object',
                  properties: {
                    instance_id: { type: 'string', enum: ['a', 'b'] },
                    token: { type: 'string' },
                    done: { type: 'boolean' },
                    metrics: answerSchema.properties.metrics,
                    error: { type: 'string' },
                  },
                },
              },
            },
          },
          400: errorSchema,
          403: errorSchema,
        },
      },
    }, async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      let pool;
      let history;
      try {
        history = parseHistory(body.history);
        pool = await resolvePool(services.router, history, body.pool, (model) => mayUseModel(request.principal, model), catalogDefaults(services));
      } catch (error) {
        if (error instanceof ArenaValidationError) throw badRequest(error.message);
        if (error instanceof ModelNotAllowedError) throw new HttpError(403, error.message, 'permission_error', 'model_not_allowed');
        throw error;
      }
      const contestants = pickContestants(pool);
      const battleId = crypto.randomUUID();
      reply.header('x-battle-id', battleId);
      return streamArena(services, request, reply, battleRequest(history, contestants), {
        kind: 'battle',
        anonymous: true,
        save: (run) => battles.create(run, { id: battleId, ...contestants }),
      });
    });

    app.post('/api/battles/:id/vote', {
      config: { access: 'model' },
      schema: {
        tags: ['battles'],
        summary: 'Vote on a battle once; answers the revealed contestants',
        params: idParams,
        body: { type: 'object', properties: { winner: { ...winnerSchema, description: 'a, b, tie or both_bad' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              run_id: { type: 'string' },
              winner: winnerSchema,
              voted_at: { type: 'string' },
              contestants: { ...contestantsSchema, nullable: false },
            },
          },
          400: errorSchema,
          404: errorSchema,
          409: errorSchema,
        },
      },
      attachValidation: true, // the handler answers a bad winner with its own message
    }, async (request) => {
      const battle = await visibleBattle(request);
      let winner;
      try {
        winner = parseWinner(request.body);
      } catch (error) {
        if (error instanceof ArenaValidationError) throw badRequest(error.message);
        throw error;
      }
      const outcome = await battles.vote(battle.id, winner);
      if (outcome.status === 'not_found') throw notFound();
      if (outcome.status === 'already_voted') throw new HttpError(409, 'This battle has already been voted on');
      const voted = outcome.battle;
      return { id: voted.id, run_id: voted.runId, winner: voted.winner, voted_at: voted.votedAt, contestants: revealed(voted) };
    });

    app.get('/api/battles/:id', {
      config: { access: 'model' },
      schema: {
        tags: ['battles'],
        summary: 'A battle with its answers; the contestants are hidden until it is voted on',
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              run_id: { type: 'string' },
              created_at: { type: 'string' },
              status: { type: 'string', enum: ['streaming', 'awaiting_vote', 'voted'] },
              winner: { ...winnerSchema, nullable: true },
              voted_at: { type: 'string', nullable: true },
              contestants: contestantsSchema,
              answers: { type: 'object', properties: { a: answerSchema, b: answerSchema } },
            },
          },
          404: errorSchema,
        },
      },
    }, async (request) => {
      const battle = await visibleBattle(request);
      const run = await runs.get(battle.runId);
      const status = battle.winner !== null ? 'voted' : run?.status === 'running' ? 'streaming' : 'awaiting_vote';
      return {
        id: battle.id,
        run_id: battle.runId,
        created_at: battle.createdAt,
        status,
        winner: battle.winner,
        voted_at: battle.votedAt,
        contestants: battle.winner === null ? null : revealed(battle),
        answers: !run ? {} : battle.winner === null ? anonymiseAnswers(run) : run.answers,
      };
    });
  };
}
