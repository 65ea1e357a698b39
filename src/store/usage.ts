import { sql, type Insertable } from 'kysely';
import type { Db, Store } from './database.js';
import type { UsageRecordsTable } from './schema.js';
import type { UsageTotals } from '../domain/access.js';

export type UsageRecord = Insertable<UsageRecordsTable>;

export interface UsageFilter {
  /** Inclusive ISO timestamp. */
  from?: string;
  /** Exclusive ISO timestamp. */
  to?: string;
  keyId?: string;
  model?: string;
  interval: 'day' | 'hour';
}

/** Rows per INSERT: well under both SQLite's and PostgreSQL's bound-parameter limits (9 columns each). */
const CHUNK = 1000;

export class UsageStore {
  private readonly db: Db;
  /**
   * On SQLite a batch goes in through one prepared statement: a Kysely insert of a batch is built,
   * compiled and prepared anew each time (its row count differs), a few per cent of the gateway's CPU
   * per request under load, where one row is one request.
   */
  private readonly sqliteInsert?: (records: UsageRecord[]) => void;

  constructor(store: Pick<Store, 'db' | 'sqlite'>) {
    this.db = store.db;
    if (store.sqlite) {
      const insert = store.sqlite.prepare(
        'INSERT INTO usage_records (request_id, key_id, model, surface, prompt_tokens, completion_tokens, duration_ms, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      this.sqliteInsert = store.sqlite.transaction((records: UsageRecord[]) => {
        for (const r of records) {
          insert.run(r.request_id, r.key_id ?? null, r.model ?? null, r.surface, r.prompt_tokens, r.completion_tokens, r.duration_ms, r.status, r.created_at);
        }
      });
    }
  }

  /** Writes a batch in one transaction: all of it lands, or none and the caller keeps it to retry. */
  async insert(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.sqliteInsert) return this.sqliteInsert(records);
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < records.length; i += CHUNK) {
        await trx.insertInto('usage_records').values(records.slice(i, i + CHUNK)).execute();
      }
    });
  }

  private filtered(filter: UsageFilter) {
    let query = this.db.selectFrom('usage_records');
    if (filter.from) query = query.where('created_at', '>=', filter.from);
    if (filter.to) query = query.where('created_at', '<', filter.to);
    if (filter.keyId) query = query.where('key_id', '=', filter.keyId);
    if (filter.model) query = query.where('model', '=', filter.model);
    return query;
  }

  /** Totals overall, by key, by model, by surface, by status, by day, and per period by model and by key (for charts). */
  async summary(filter: UsageFilter) {
    // ISO timestamps cut to `YYYY-MM-DD` or `YYYY-MM-DDTHH`; substr reads the same on both dialects.
    // The length is a literal so that PostgreSQL sees the same expression in SELECT and GROUP BY.
    const period = (length: number) => sql<string>`substr(created_at, 1, ${sql.lit(length)})`;
    const periodLength = filter.interval === 'hour' ? 13 : 10;
    const sums = [
      sql<number>`count(distinct request_id)`.as('requests'),
      sql<number>`coalesce(sum(prompt_tokens), 0)`.as('prompt_tokens'),
      sql<number>`coalesce(sum(completion_tokens), 0)`.as('completion_tokens'),
    ] as const;
    const [totals, byKey, byModel, bySurface, byStatus, byDay, seriesByModel, seriesByKey] = await Promise.all([
      this.filtered(filter).select([...sums]).executeTakeFirstOrThrow(),
      this.filtered(filter).select(['key_id', ...sums]).groupBy('key_id').orderBy('key_id').execute(),
      this.filtered(filter).select(['model', ...sums]).groupBy('model').orderBy('model').execute(),
      this.filtered(filter).select(['surface', ...sums]).groupBy('surface').orderBy('surface').execute(),
      this.filtered(filter).select(['status', ...sums]).groupBy('status').orderBy('status').execute(),
      this.filtered(filter).select([period(10).as('day'), ...sums]).groupBy(period(10)).orderBy(period(10)).execute(),
      this.filtered(filter)
        .select([period(periodLength).as('period'), 'model', ...sums])
        .groupBy([period(periodLength), 'model'])
        .orderBy(period(periodLength))
        .orderBy('model')
        .execute(),
      this.filtered(filter)
        .select([period(periodLength).as('period'), 'key_id', ...sums])
        .groupBy([period(periodLength), 'key_id'])
        .orderBy(period(periodLength))
        .orderBy('key_id')
        .execute(),
    ]);
    return {
      totals: numbers(totals),
      byKey: byKey.map((r) => ({ key_id: r.key_id, ...numbers(r) })),
      byModel: byModel.map((r) => ({ model: r.model, ...numbers(r) })),
      bySurface: bySurface.map((r) => ({ surface: r.surface, ...numbers(r) })),
      byStatus: byStatus.map((r) => ({ status: Number(r.status), ...numbers(r) })),
      byDay: byDay.map((r) => ({ day: r.day, ...numbers(r) })),
      seriesByModel: seriesByModel.map((r) => ({ period: r.period, model: r.model, ...numbers(r) })),
      seriesByKey: seriesByKey.map((r) => ({ period: r.period, key_id: r.key_id, ...numbers(r) })),
    };
  }
}

/** SUMs come back as strings from PostgreSQL (numeric) and numbers from SQLite. */
function numbers(row: { requests: unknown; prompt_tokens: unknown; completion_tokens: unknown }): UsageTotals {
  return { requests: Number(row.requests), prompt_tokens: Number(row.prompt_tokens), completion_tokens: Number(row.completion_tokens) };
}
