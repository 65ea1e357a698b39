import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { contestantView } from '../../../arena/battles.js';
import { computeLeaderboard, DEFAULT_ROUNDS, type Vote } from '../../../arena/leaderboard.js';
import type { LeaderboardRow } from '../../../domain/arena.js';
import { BattleStore, type VotedBattle } from '../../../store/battles.js';
import { badRequest } from '../../../gateway/errors.js';
import { EvalStore } from '../../../store/evals.js';
import { agreement, type Agreement } from '../../../arena/evals/agreement.js';

/** `GET /api/leaderboard`: Bradley–Terry ratings of models, or of configurations, from the votes. */

const rowProperties = {
  rank: { type: 'integer', description: '1 + the number of contestants whose ci_low is above this ci_high' },
  contestant: { type: 'string', description: 'Model name (by=model) or configuration key (by=config)' },
  model: { type: 'string' },
  settings: { type: 'object', nullable: true, additionalProperties: true, description: 'by=config: the configuration (model and every setting)' },
  rating: { type: 'number', description: 'Elo scale, mean 1000' },
  ci_low: { type: 'number', description: '95% bootstrap interval, never narrower than the row\'s own win rate over its battles allows' },
  ci_high: { type: 'number' },
  battles: { type: 'integer' },
  wins: { type: 'integer' },
  losses: { type: 'integer' },
  ties: { type: 'integer', description: 'Ties and both_bad votes' },
  both_bad: { type: 'integer' },
  win_rate: { type: 'number', description: '(wins + ties/2) / battles' },
  provisional: { type: 'boolean', description: 'Fewer than 10 battles: the rating may still move a lot' },
} as const;

type Row = LeaderboardRow & { model: string; settings: Record<string, unknown> | null };

export function leaderboardRoutes(services: Services) {
  const battles = new BattleStore(services.store.db);
  // The bootstrap costs time; the table only changes when a vote arrives, so the last one is kept.
  const cache = new Map<string, { key: string; rows: Row[]; total: number }>();

  const judged = new EvalStore(services.store);

  function asVotes(by: 'model' | 'config', voted: VotedBattle[]): Vote[] {
    return voted.flatMap((b) => (by === 'config' ? [{ a: b.a_config, b: b.b_config, winner: b.winner }] : b.a_model === b.b_model ? [] : [{ a: b.a_model, b: b.b_model, winner: b.winner }]));
  }

  async function compute(by: 'model' | 'config', voted: VotedBattle[]): Promise<{ rows: Row[]; total: number }> {
    const votes: Vote[] = [];
    const settings = new Map<string, Record<string, unknown>>();
    for (const battle of voted) {
      if (by === 'model') {
        // Two configurations of one model say nothing about that model against others.
        if (battle.a_model === battle.b_model) continue;
        votes.push({ a: battle.a_model, b: battle.b_model, winner: battle.winner });
      } else {
        votes.push({ a: battle.a_config, b: battle.b_config, winner: battle.winner });
        settings.set(battle.a_config, contestantView({ config: battle.a_config, instance: battle.a_instance }));
        settings.set(battle.b_config, contestantView({ config: battle.b_config, instance: battle.b_instance }));
      }
    }
    const rows = (await computeLeaderboard(votes)).map((row) => ({
      ...row,
      model: by === 'model' ? row.contestant : String(settings.get(row.contestant)!.model),
      settings: by === 'model' ? null : settings.get(row.contestant)!,
    }));
    return { rows, total: votes.length };
  }

  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/leaderboard', {
      config: { access: 'model' },
      schema: {
        tags: ['battles'],
        summary: 'Bradley–Terry leaderboard with 95% bootstrap intervals, by model or by configuration',
        description:
          'Ties count half a win for each side; both_bad counts as a tie (as in Chatbot Arena). Only voted battles count; by=model ignores battles between two configurations of one model.',
        querystring: {
          type: 'object',
          properties: {
            by: { type: 'string', enum: ['model', 'config'], default: 'model' },
            source: { type: 'string', enum: ['human', 'judge'], default: 'human', description: 'human: blind battle votes; judge: the verdicts of evaluations\' LLM judges' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              by: { type: 'string' },
              source: { type: 'string' },
              agreement: {
                type: 'object',
                nullable: true,
                description: 'source=judge: pairs of contestants with both human and judge votes, and the share where both prefer the same side',
                properties: { pairs: { type: 'integer' }, agreed: { type: 'integer' }, rate: { type: 'number', nullable: true } },
              },
              total_battles: { type: 'integer' },
              bootstrap_rounds: { type: 'integer' },
              rows: { type: 'array', items: { type: 'object', properties: rowProperties } },
            },
          },
          400: { type: 'object', properties: { error: { type: 'string' } } },
        },
      },
      attachValidation: true,
    }, async (request) => {
      const by = (request.query as { by?: unknown }).by ?? 'model';
      if (by !== 'model' && by !== 'config') throw badRequest('by must be "model" or "config"');
      const source = (request.query as { source?: unknown }).source ?? 'human';
      if (source !== 'human' && source !== 'judge') throw badRequest('source must be "human" or "judge"');
      const human = await battles.voted();
      const voted = source === 'judge' ? await judged.votedByJudges() : human;
      const key = `${by}:${voted.length}:${JSON.stringify(voted.at(-1) ?? null)}`;
      let table = cache.get(`${source}:${by}`);
      if (table?.key !== key) {
        table = { key, ...(await compute(by, voted)) };
        cache.set(`${source}:${by}`, table);
      }
      const agreed: Agreement | null = source === 'judge' ? agreement(asVotes(by, human), asVotes(by, voted)) : null;
      return { by, source, agreement: agreed, total_battles: table.total, bootstrap_rounds: DEFAULT_ROUNDS, rows: table.rows };
    });
  };
}
