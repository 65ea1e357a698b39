import type { ModelInstance } from '../domain/arena.js';
import type { ArenaMetrics } from '../domain/arena.js';
import type { Winner } from '../domain/arena.js';
import type { AssertionResult } from '../domain/evals.js';
import type { Suite } from '../domain/evals.js';
import type Database from 'better-sqlite3';
import type { Db, Store } from './database.js';
import type { VotedBattle } from './battles.js';
import type { EvalStatus, CellKey, JudgeScore, Cell } from '../domain/evals.js';

/** Evaluations, their cells and their judges' votes, in SQLite or PostgreSQL alike. */

export const FINISHED: ReadonlySet<EvalStatus> = new Set(['done', 'cancelled', 'failed']);

export interface EvalRecord {
  id: string;
  ownerKeyId: string | null;
  name: string;
  status: EvalStatus;
  suite: Suite;
  plan: CellKey[] | null;
  total: number;
  error: string | null;
  rerunOf: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface JudgeVote {
  id: string;
  evalId: string;
  ownerKeyId: string | null;
  judgeModel: string;
  promptIndex: number;
  repeat: number;
  a: { config: string; instance: ModelInstance };
  b: { config: string; instance: ModelInstance };
  /** Null when the judge abstained. */
  winner: Winner | null;
  verdicts: { forward: string; backward: string; replies: [string, string] };
}

type Row = { id: string; owner_key_id: string | null; name: string; status: string; suite: string; plan: string | null; total: number; error: string | null; rerun_of: string | null; created_at: string; finished_at: string | null };

function record(row: Row): EvalRecord {
  return {
    id: row.id,
    ownerKeyId: row.owner_key_id,
    name: row.name,
    status: row.status as EvalStatus,
    suite: JSON.parse(row.suite) as Suite,
    plan: row.plan === null ? null : (JSON.parse(row.plan) as CellKey[]),
    total: Number(row.total),
    error: row.error,
    rerunOf: row.rerun_of,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** A replica's claim on an evaluation: it runs it until `expiresAt` unless it renews the claim. */
export interface Lease {
  runnerId: string;
  expiresAt: string;
}

/** Evaluations that may still run: a lease only matters for these. */
const UNFINISHED = ['queued', 'running'] as const;

const CELL_COLUMNS = ['eval_id', 'prompt_index', 'instance_id', 'repeat', 'answer', 'metrics', 'assertions', 'pass', 'error', 'judge', 'created_at'] as const;

export class EvalStore {
  private readonly db: Db;
  /** SQLite only: the cell insert, prepared once; a cell is stored on the evaluation's hot path. */
  private readonly insertCell?: Database.Statement;

  constructor(store: Pick<Store, 'db' | 'sqlite'>) {
    this.db = store.db;
    // A cell already stored is kept, not an error: a replica whose lease passed unnoticed may finish a
    // cell that the replica resuming its evaluation also ran.
    this.insertCell = store.sqlite?.prepare(
      `INSERT INTO eval_cells (${CELL_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${CELL_COLUMNS.map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`,
    );
  }

  /** Stores a new evaluation, its lease held from the start by the replica that will run it. */
  async create(evaluation: Omit<EvalRecord, 'finishedAt' | 'error'>, lease: Lease | null = null): Promise<void> {
    await this.db
      .insertInto('evaluations')
      .values({
        id: evaluation.id,
        owner_key_id: evaluation.ownerKeyId,
        name: evaluation.name,
        status: evaluation.status,
        suite: JSON.stringify(evaluation.suite),
        plan: evaluation.plan === null ? null : JSON.stringify(evaluation.plan),
        total: evaluation.total,
        error: null,
        rerun_of: evaluation.rerunOf,
        created_at: evaluation.createdAt,
        finished_at: null,
        runner_id: lease?.runnerId ?? null,
        heartbeat_at: lease ? new Date().toISOString() : null,
        lease_expires_at: lease?.expiresAt ?? null,
      })
      .execute();
  }

  /**
   * Extends this runner's lease; false when it no longer holds one (another replica claimed the
   * evaluation after the lease passed) or the evaluation has ended (a cancel from any replica).
   */
  async renewLease(id: string, lease: Lease): Promise<boolean> {
    const result = await this.db
      .updateTable('evaluations')
      .set({ heartbeat_at: new Date().toISOString(), lease_expires_at: lease.expiresAt })
      .where('id', '=', id)
      .where('runner_id', '=', lease.runnerId)
      .where('status', 'in', UNFINISHED)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Claims one unfinished evaluation whose lease has passed (or that has none) for `lease.runnerId`.
   * The claim is one conditional UPDATE that re-checks the expiry: PostgreSQL re-reads a row another
   * transaction just changed before applying the condition, SQLite runs one writer at a time, so of
   * replicas racing for one evaluation exactly one sees its row updated.
   */
  async claimExpired(lease: Lease, now = new Date().toISOString()): Promise<EvalRecord | undefined> {
    const candidates = await this.db
      .selectFrom('evaluations')
      .select('id')
      .where('status', 'in', UNFINISHED)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
      .orderBy('created_at')
      .limit(10)
      .execute();
    for (const { id } of candidates) {
      const result = await this.db
        .updateTable('evaluations')
        .set({ runner_id: lease.runnerId, heartbeat_at: now, lease_expires_at: lease.expiresAt })
        .where('id', '=', id)
        .where('status', 'in', UNFINISHED)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return this.get(id);
    }
    return undefined;
  }

  /** Gives up this runner's lease (a graceful shutdown), so that another replica resumes at once. */
  async releaseLease(id: string, runnerId: string): Promise<boolean> {
    const result = await this.db
      .updateTable('evaluations')
      .set({ runner_id: null, lease_expires_at: null })
      .where('id', '=', id)
      .where('runner_id', '=', runnerId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async get(id: string): Promise<EvalRecord | undefined> {
    const row = await this.db.selectFrom('evaluations').selectAll().where('id', '=', id).executeTakeFirst();
    return row && record(row);
  }

  /** Newest first; `ownerKeyId` limits the listing to one API key's evaluations. */
  async list(options: { limit: number; offset: number; ownerKeyId?: string }): Promise<{ evaluations: EvalRecord[]; total: number }> {
    let query = this.db.selectFrom('evaluations').selectAll();
    let count = this.db.selectFrom('evaluations').select((eb) => eb.fn.countAll<number>().as('total'));
    if (options.ownerKeyId !== undefined) {
      query = query.where('owner_key_id', '=', options.ownerKeyId);
      count = count.where('owner_key_id', '=', options.ownerKeyId);
    }
    const [rows, total] = await Promise.all([
      query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit).offset(options.offset).execute(),
      count.executeTakeFirstOrThrow(),
    ]);
    return { evaluations: rows.map(record), total: Number(total.total) };
  }

  /** Moves an evaluation on; a finished one never changes again (a late cancel cannot undo `done`). */
  async setStatus(id: string, status: EvalStatus, error: string | null = null): Promise<boolean> {
    const finished = FINISHED.has(status);
    const result = await this.db
      .updateTable('evaluations')
      .set({ status, error, ...(finished ? { finished_at: new Date().toISOString() } : {}) })
      .where('id', '=', id)
      .where('status', 'not in', [...FINISHED])
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Stores a finished cell; false if that cell was already stored (it is then left as it was). */
  async addCell(evalId: string, cell: Cell): Promise<boolean> {
    const row = {
      eval_id: evalId,
      prompt_index: cell.prompt_index,
      instance_id: cell.instance_id,
      repeat: cell.repeat,
      answer: cell.answer,
      metrics: cell.metrics === null ? null : JSON.stringify(cell.metrics),
      assertions: JSON.stringify(cell.assertions),
      pass: cell.pass ? 1 : 0,
      error: cell.error,
      judge: cell.judge === null ? null : JSON.stringify(cell.judge),
      created_at: new Date().toISOString(),
    };
    if (this.insertCell) return this.insertCell.run(...CELL_COLUMNS.map((column) => row[column])).changes === 1;
    const result = await this.db
      .insertInto('eval_cells')
      .values(row)
      .onConflict((oc) => oc.columns(['eval_id', 'prompt_index', 'instance_id', 'repeat']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows) === 1;
  }

  async setCellJudge(evalId: string, key: CellKey, judge: JudgeScore): Promise<void> {
    await this.db
      .updateTable('eval_cells')
      .set({ judge: JSON.stringify(judge) })
      .where('eval_id', '=', evalId)
      .where('prompt_index', '=', key[0])
      .where('instance_id', '=', key[1])
      .where('repeat', '=', key[2])
      .execute();
  }

  async cells(evalId: string): Promise<Cell[]> {
    const rows = await this.db.selectFrom('eval_cells').selectAll().where('eval_id', '=', evalId).orderBy('prompt_index').orderBy('repeat').orderBy('instance_id').execute();
    return rows.map((row) => ({
      prompt_index: Number(row.prompt_index),
      instance_id: row.instance_id,
      repeat: Number(row.repeat),
      answer: row.answer,
      metrics: row.metrics === null ? null : (JSON.parse(row.metrics) as ArenaMetrics),
      assertions: JSON.parse(row.assertions) as AssertionResult[],
      pass: Number(row.pass) === 1,
      error: row.error,
      judge: row.judge === null ? null : (JSON.parse(row.judge) as JudgeScore),
    }));
  }

  async addVote(vote: JudgeVote): Promise<void> {
    await this.db
      .insertInto('judge_votes')
      .values({
        id: vote.id,
        eval_id: vote.evalId,
        owner_key_id: vote.ownerKeyId,
        source: 'judge',
        judge_model: vote.judgeModel,
        prompt_index: vote.promptIndex,
        repeat: vote.repeat,
        a_instance: JSON.stringify(vote.a.instance),
        b_instance: JSON.stringify(vote.b.instance),
        a_model: vote.a.instance.model,
        b_model: vote.b.instance.model,
        a_config: vote.a.config,
        b_config: vote.b.config,
        winner: vote.winner,
        verdicts: JSON.stringify(vote.verdicts),
        created_at: new Date().toISOString(),
      })
      .execute();
  }

  async votes(evalId: string): Promise<JudgeVote[]> {
    const rows = await this.db.selectFrom('judge_votes').selectAll().where('eval_id', '=', evalId).orderBy('created_at').orderBy('id').execute();
    return rows.map((row) => ({
      id: row.id,
      evalId: row.eval_id,
      ownerKeyId: row.owner_key_id,
      judgeModel: row.judge_model,
      promptIndex: Number(row.prompt_index),
      repeat: Number(row.repeat),
      a: { config: row.a_config, instance: JSON.parse(row.a_instance) as ModelInstance },
      b: { config: row.b_config, instance: JSON.parse(row.b_instance) as ModelInstance },
      winner: row.winner as Winner | null,
      verdicts: JSON.parse(row.verdicts) as JudgeVote['verdicts'],
    }));
  }

  /** Every decided judge vote of every evaluation, in a fixed order, in the leaderboard's terms. */
  async votedByJudges(): Promise<VotedBattle[]> {
    const rows = await this.db
      .selectFrom('judge_votes')
      .select(['a_instance', 'b_instance', 'a_model', 'b_model', 'a_config', 'b_config', 'winner'])
      .where('winner', 'is not', null)
      .orderBy('created_at')
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
