import type { ModelInstance } from '../domain/arena.js';
import type { Winner } from '../domain/arena.js';
import type { Db } from './database.js';
import { newRunRow, type NewRun } from './runs.js';

/** Blind battles: the two hidden contestants of a run and the one vote on them. */

export interface Contestant {
  /** The configuration key (the instance id of docs/api-contract.md) the leaderboard groups by. */
  config: string;
  instance: ModelInstance;
}

export interface BattleRecord {
  id: string;
  runId: string;
  ownerKeyId: string | null;
  a: Contestant;
  b: Contestant;
  winner: Winner | null;
  votedAt: string | null;
  createdAt: string;
}

export interface VotedBattle {
  a_instance: ModelInstance;
  b_instance: ModelInstance;
  a_model: string;
  b_model: string;
  a_config: string;
  b_config: string;
  winner: Winner;
}

export type VoteOutcome = { status: 'voted'; battle: BattleRecord } | { status: 'already_voted' } | { status: 'not_found' };

export class BattleStore {
  constructor(private readonly db: Db) {}

  /** The battle and its run, in one transaction: a battle id handed out always has both rows. */
  async create(run: NewRun, battle: { id: string; a: Contestant; b: Contestant }): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('runs').values(newRunRow(run)).execute();
      await trx
        .insertInto('battles')
        .values({
          id: battle.id,
          run_id: run.id,
          owner_key_id: run.ownerKeyId,
          a_instance: JSON.stringify(battle.a.instance),
          b_instance: JSON.stringify(battle.b.instance),
          a_model: battle.a.instance.model,
          b_model: battle.b.instance.model,
          a_config: battle.a.config,
          b_config: battle.b.config,
          winner: null,
          voted_at: null,
          created_at: run.createdAt,
        })
        .execute();
    });
  }

  async get(id: string): Promise<BattleRecord | undefined> {
    const row = await this.db.selectFrom('battles').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      id: row.id,
      runId: row.run_id,
      ownerKeyId: row.owner_key_id,
      a: { config: row.a_config, instance: JSON.parse(row.a_instance) as ModelInstance },
      b: { config: row.b_config, instance: JSON.parse(row.b_instance) as ModelInstance },
      winner: row.winner as Winner | null,
      votedAt: row.voted_at,
      createdAt: row.created_at,
    };
  }

  /**
   * Records the vote if there is none yet. The condition `winner IS NULL` is in the UPDATE itself, so
   * of two concurrent votes the database lets exactly one change the row.
   */
  async vote(id: string, winner: Winner): Promise<VoteOutcome> {
    const result = await this.db
      .updateTable('battles')
      .set({ winner, voted_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('winner', 'is', null)
      .executeTakeFirst();
    const battle = await this.get(id);
    if (!battle) return { status: 'not_found' };
    if (Number(result.numUpdatedRows) !== 1) return { status: 'already_voted' };
    return { status: 'voted', battle };
  }

  /** Every voted battle in a fixed order (vote time, then id), so the seeded bootstrap is reproducible. */
  async voted(): Promise<VotedBattle[]> {
    const rows = await this.db
      .selectFrom('battles')
      .select(['a_instance', 'b_instance', 'a_model', 'b_model', 'a_config', 'b_config', 'winner'])
      .where('winner', 'is not', null)
      .orderBy('voted_at')
      .orderBy('id')
      .execute();
    return rows.map((row) => ({
      ...row,
      a_instance: JSON.parse(row.a_instance) as ModelInstance,
      b_instance: JSON.parse(row.b_instance) as ModelInstance,
      winner: row.winner as Winner,
    }));
  }
}
