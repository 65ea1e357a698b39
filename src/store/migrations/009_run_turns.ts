import type { Kysely, Migration } from 'kysely';

/**
 * Conversations: a follow-up question continues its run instead of saving a new one. A run of one
 * turn keeps that turn in its own row, as before; once continued, `run_turns` holds every turn in
 * order and the run row mirrors the latest one, so readers of the run row alone (listings, re-runs)
 * see the conversation as it stands. No backfill: existing runs are one-turn runs.
 */
export const runTurns: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('runs').addColumn('turn_count', 'integer', (c) => c.notNull().defaultTo(1)).execute();
    // When the latest turn began; null for a run never continued (its created_at).
    await db.schema.alterTable('runs').addColumn('updated_at', 'text').execute();
    // JSON: the conversations of instances that were sent their own, by instance id; null when none was.
    await db.schema.alterTable('runs').addColumn('histories', 'text').execute();

    await db.schema
      .createTable('run_turns')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      // 1-based, in the order the turns began.
      .addColumn('turn', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('history', 'text', (c) => c.notNull())
      .addColumn('histories', 'text')
      .addColumn('answers', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      // Two follow-ups racing for the same turn number: one of them fails here instead of both landing.
      .addPrimaryKeyConstraint('run_turns_pkey', ['run_id', 'turn'])
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('run_turns').execute();
    await db.schema.alterTable('runs').dropColumn('histories').execute();
    await db.schema.alterTable('runs').dropColumn('updated_at').execute();
    await db.schema.alterTable('runs').dropColumn('turn_count').execute();
  },
};
