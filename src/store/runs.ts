import crypto from 'node:crypto';
import type { Selectable } from 'kysely';
import type { ChatMessage } from '../backends/types.js';
import type { ModelInstance } from '../core/arena.js';
import type { ArenaMetrics } from '../core/generation.js';
import type { Db } from './database.js';
import type { RunsTable } from './schema.js';

/** The saved runs: every comparison, battle and re-run with its settings and answers. */

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
  instances: ModelInstance[];
  createdAt: string;
}

export interface BattleVote {
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
}

export interface RunRecord extends RunSummaryRecord {
  legacy: boolean;
  history: ChatMessage[];
  answers: Record<string, Answer>;
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
export function promptOf(history: ChatMessage[]): string {
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
    instances: JSON.stringify(run.instances),
    answers: '{}',
    created_at: run.createdAt,
    finished_at: null,
  };
}

type SummaryRow = Pick<Selectable<RunsTable>, 'id' | 'kind' | 'status' | 'owner_key_id' | 'rerun_of' | 'prompt' | 'instances' | 'created_at' | 'finished_at'> & {
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
  };
}

export class RunStore {
  constructor(private readonly db: Db) {}

  async create(run: NewRun): Promise<void> {
    await this.db.insertInto('runs').values(newRunRow(run)).execute();
  }

  /** Writes the answers once the run ended (completely, with an error, or cut short). */
  async finish(id: string, status: RunStatus, answers: Record<string, Answer>): Promise<void> {
    await this.db
      .updateTable('runs')
      .set({ status, answers: JSON.stringify(answers), finished_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute();
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
        'battles.id as battle_id',
        'battles.winner',
        'battles.voted_at',
      ]);
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const row = await this.selectRuns().select(['runs.legacy', 'runs.history', 'runs.answers']).where('runs.id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      ...summary(row),
      legacy: row.legacy === 1,
      history: JSON.parse(row.history) as ChatMessage[],
      answers: JSON.parse(row.answers) as Record<string, Answer>,
    };
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
