import crypto from 'node:crypto';
import type { Selectable } from 'kysely';
import type { ChatMessage } from '../domain/chat.js';
import type { ModelInstance } from '../domain/arena.js';
import type { ArenaMetrics } from '../domain/arena.js';
import type { Db, Store } from './database.js';
import type { RunsTable } from './schema.js';

/**
 * The saved runs: every comparison, battle and re-run with its settings and answers. A conversation
 * is one run: each follow-up question appends a turn to it.
 */

export type RunKind = 'comparison' | 'battle';
export type RunStatus = 'running' | 'done' | 'partial' | 'error';

export interface Answer {
  response: string;
  metrics: ArenaMetrics | null;
  error: string | null;
}

export interface NewRun {
  id: string;
  kind: RunKind;
  ownerKeyId: string | null;
  rerunOf: string | null;
  legacy: boolean;
  history: ChatMessage[];
  /** The conversations of instances sent their own instead of `history`, by instance id. */
  histories?: Record<string, ChatMessage[]> | null;
  instances: ModelInstance[];
  createdAt: string;
}

/** One question of a conversation and every instance's answer to it. */
export interface TurnRecord {
  /** 1-based. */
  turn: number;
  status: RunStatus;
  /** The messages as the client sent them for this turn. */
  history: ChatMessage[];
  histories: Record<string, ChatMessage[]> | null;
  answers: Record<string, Answer>;
  createdAt: string;
  finishedAt: string | null;
}

export interface NewTurn {
  history: ChatMessage[];
  histories: Record<string, ChatMessage[]> | null;
  createdAt: string;
}

interface BattleVote {
  id: string;
  winner: string | null;
  voted_at: string | null;
}

export interface RunSummaryRecord {
  id: string;
  kind: RunKind;
  status: RunStatus;
  ownerKeyId: string | null;
  rerunOf: string | null;
  prompt: string;
  instances: ModelInstance[];
  createdAt: string;
  finishedAt: string | null;
  battle: BattleVote | null;
  turnCount: number;
  /** When the latest turn began (createdAt for a run of one turn). */
  updatedAt: string;
}

/** A run; `status`, `finishedAt`, `history`, `histories` and `answers` are those of its latest turn. */
export interface RunRecord extends RunSummaryRecord {
  legacy: boolean;
  history: ChatMessage[];
  histories: Record<string, ChatMessage[]> | null;
  answers: Record<string, Answer>;
  /** Every turn in order; a run of one turn has one. */
  turns: TurnRecord[];
}

let lastMs = 0;
let counter = 0;

/**
 * A UUIDv7-style id: 48 bits of milliseconds, then a per-process counter, then random bits. Sorting
 * by id is sorting by creation time, even for runs created within the same millisecond.
 */
export function timeOrderedId(): string {
  const now = Date.now();
  if (now === lastMs) counter = (counter + 1) & 0xfff;
  else {
    lastMs = now;
    counter = crypto.randomInt(0, 0x800);
  }
  const random = crypto.randomBytes(8);
  const hex = now.toString(16).padStart(12, '0') + (0x7000 | counter).toString(16) + ((random[0]! & 0x3f) | 0x80).toString(16).padStart(2, '0') + random.subarray(1).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The prompt a listing shows: the last user message, shortened. */
function promptOf(history: ChatMessage[]): string {
  const last = [...history].reverse().find((m) => m.role === 'user') ?? history[history.length - 1];
  const text = last?.content ?? '';
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

export function newRunRow(run: NewRun) {
  return {
    id: run.id,
    kind: run.kind,
    status: 'running',
    owner_key_id: run.ownerKeyId,
    rerun_of: run.rerunOf,
    legacy: run.legacy ? 1 : 0,
    prompt: promptOf(run.history),
    history: JSON.stringify(run.history),
    histories: run.histories ? JSON.stringify(run.histories) : null,
    instances: JSON.stringify(run.instances),
    answers: '{}',
    created_at: run.createdAt,
    finished_at: null,
  };
}

type SummaryRow = Pick<Selectable<RunsTable>, 'id' | 'kind' | 'status' | 'owner_key_id' | 'rerun_of' | 'prompt' | 'instances' | 'created_at' | 'finished_at' | 'turn_count' | 'updated_at'> & {
  battle_id: string | null;
  winner: string | null;
  voted_at: string | null;
};

function summary(row: SummaryRow): RunSummaryRecord {
  return {
    id: row.id,
    kind: row.kind as RunKind,
    status: row.status as RunStatus,
    ownerKeyId: row.owner_key_id,
    rerunOf: row.rerun_of,
    prompt: row.prompt,
    instances: JSON.parse(row.instances) as ModelInstance[],
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    battle: row.battle_id === null ? null : { id: row.battle_id, winner: row.winner, voted_at: row.voted_at },
    turnCount: Number(row.turn_count),
    updatedAt: row.updated_at ?? row.created_at,
  };
}

const parseHistories = (text: string | null) => (text === null ? null : (JSON.parse(text) as Record<string, ChatMessage[]>));

/** A run to continue is missing (deleted meanwhile). */
export class RunGoneError extends Error {}

export class RunStore {
  private readonly db: Db;
  private readonly dialect: Store['dialect'];

  constructor(store: Pick<Store, 'db' | 'dialect'>) {
    this.db = store.db;
    this.dialect = store.dialect;
  }

  async create(run: NewRun): Promise<void> {
    await this.db.insertInto('runs').values(newRunRow(run)).execute();
  }

  /**
   * Appends a turn to a run and returns its number. The first append moves the run's one turn into
   * `run_turns` beside the new one; the run row then mirrors the new turn. The row is locked for the
   * read (PostgreSQL; SQLite runs one transaction at a time), so a turn finishing meanwhile is copied
   * with its answers, and two appends at once take the next numbers in turn.
   */
  async append(id: string, turn: NewTurn): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      let query = trx
        .selectFrom('runs')
        .select(['turn_count', 'status', 'history', 'histories', 'answers', 'created_at', 'updated_at', 'finished_at'])
        .where('id', '=', id);
      if (this.dialect === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirst();
      if (!row) throw new RunGoneError(`run ${id} no longer exists`);
      const count = Number(row.turn_count);
      if (count === 1) {
        await trx
          .insertInto('run_turns')
          .values({ run_id: id, turn: 1, status: row.status, history: row.history, histories: row.histories, answers: row.answers, created_at: row.created_at, finished_at: row.finished_at })
          .execute();
      }
      const history = JSON.stringify(turn.history);
      const histories = turn.histories ? JSON.stringify(turn.histories) : null;
      await trx
        .insertInto('run_turns')
        .values({ run_id: id, turn: count + 1, status: 'running', history, histories, answers: '{}', created_at: turn.createdAt, finished_at: null })
        .execute();
      await trx
        .updateTable('runs')
        .set({ turn_count: count + 1, updated_at: turn.createdAt, status: 'running', prompt: promptOf(turn.history), history, histories, answers: '{}', finished_at: null })
        .where('id', '=', id)
        .execute();
      return count + 1;
    });
  }

  /**
   * Writes a turn's answers once it ended (completely, with an error, or cut short): in the run row
   * while it is the latest turn, and in `run_turns` once the run has several. The run row goes first:
   * an append holding it makes this wait, and then finds the turn it copied meanwhile.
   */
  async finish(id: string, status: RunStatus, answers: Record<string, Answer>, turn = 1): Promise<void> {
    const values = { status, answers: JSON.stringify(answers), finished_at: new Date().toISOString() };
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('runs').set(values).where('id', '=', id).where('turn_count', '=', turn).execute();
      await trx.updateTable('run_turns').set(values).where('run_id', '=', id).where('turn', '=', turn).execute();
    });
  }

  private selectRuns() {
    return this.db
      .selectFrom('runs')
      .leftJoin('battles', 'battles.run_id', 'runs.id')
      .select([
        'runs.id',
        'runs.kind',
        'runs.status',
        'runs.owner_key_id',
        'runs.rerun_of',
        'runs.prompt',
        'runs.instances',
        'runs.created_at',
        'runs.finished_at',
        'runs.turn_count',
        'runs.updated_at',
        'battles.id as battle_id',
        'battles.winner',
        'battles.voted_at',
      ]);
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const row = await this.selectRuns().select(['runs.legacy', 'runs.history', 'runs.histories', 'runs.answers']).where('runs.id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const head = summary(row);
    const latest: TurnRecord = {
      turn: head.turnCount,
      status: head.status,
      history: JSON.parse(row.history) as ChatMessage[],
      histories: parseHistories(row.histories),
      answers: JSON.parse(row.answers) as Record<string, Answer>,
      createdAt: head.updatedAt,
      finishedAt: head.finishedAt,
    };
    let turns = [latest];
    if (head.turnCount > 1) {
      const rows = await this.db.selectFrom('run_turns').selectAll().where('run_id', '=', id).orderBy('turn', 'asc').execute();
      turns = rows.map((t) => ({
        turn: Number(t.turn),
        status: t.status as RunStatus,
        history: JSON.parse(t.history) as ChatMessage[],
        histories: parseHistories(t.histories),
        answers: JSON.parse(t.answers) as Record<string, Answer>,
        createdAt: t.created_at,
        finishedAt: t.finished_at,
      }));
    }
    return { ...head, legacy: row.legacy === 1, history: latest.history, histories: latest.histories, answers: latest.answers, turns };
  }

  /** Newest first. `ownerKeyId` limits the listing to one API key's runs. */
  async list(options: { limit: number; offset: number; kind?: RunKind; ownerKeyId?: string }): Promise<{ runs: RunSummaryRecord[]; total: number }> {
    let query = this.selectRuns();
    let count = this.db.selectFrom('runs').select((eb) => eb.fn.countAll<number>().as('total'));
    if (options.kind) {
      query = query.where('runs.kind', '=', options.kind);
      count = count.where('runs.kind', '=', options.kind);
    }
    if (options.ownerKeyId !== undefined) {
      query = query.where('runs.owner_key_id', '=', options.ownerKeyId);
      count = count.where('runs.owner_key_id', '=', options.ownerKeyId);
    }
    const [rows, total] = await Promise.all([
      query.orderBy('runs.created_at', 'desc').orderBy('runs.id', 'desc').limit(options.limit).offset(options.offset).execute(),
      count.executeTakeFirstOrThrow(),
    ]);
    return { runs: rows.map(summary), total: Number(total.total) };
  }
}
