import type { Kysely, Migration } from 'kysely';

/**
 * Arena history: every comparison, battle and re-run is a run; a battle adds its two hidden
 * contestants and, once voted, the winner. Only types both SQLite and PostgreSQL read alike: text
 * (ids, ISO-8601 timestamps, JSON) and integer (booleans as 0/1).
 */
export const runsBattles: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('runs')
      // Time-ordered (UUIDv7-style) ids, so newest-first is also id order within one millisecond.
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      // The API key that made the run; null for the admin token or an open server.
      .addColumn('owner_key_id', 'text')
      .addColumn('rerun_of', 'text')
      .addColumn('legacy', 'integer', (c) => c.notNull())
      .addColumn('prompt', 'text', (c) => c.notNull())
      .addColumn('history', 'text', (c) => c.notNull())
      .addColumn('instances', 'text', (c) => c.notNull())
      .addColumn('answers', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .execute();
    await db.schema.createIndex('runs_created_at').on('runs').columns(['created_at', 'id']).execute();

    await db.schema
      .createTable('battles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('owner_key_id', 'text')
      // Each side's full settings (JSON) with its configuration key and model, for the leaderboard.
      .addColumn('a_instance', 'text', (c) => c.notNull())
      .addColumn('b_instance', 'text', (c) => c.notNull())
      .addColumn('a_model', 'text', (c) => c.notNull())
      .addColumn('b_model', 'text', (c) => c.notNull())
      .addColumn('a_config', 'text', (c) => c.notNull())
      .addColumn('b_config', 'text', (c) => c.notNull())
      // Null until the one vote; set by a conditional UPDATE so concurrent votes cannot both win.
      .addColumn('winner', 'text')
      .addColumn('voted_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('battles_run_id').on('battles').column('run_id').execute();
    await db.schema.createIndex('battles_voted_at').on('battles').columns(['voted_at', 'id']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('battles').execute();
    await db.schema.dropTable('runs').execute();
  },
};
