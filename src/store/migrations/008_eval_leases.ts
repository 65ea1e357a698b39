import type { Kysely, Migration } from 'kysely';

/**
 * Leases on running evaluations: which replica runs one (`runner_id`), when it last said so
 * (`heartbeat_at`) and until when its claim holds (`lease_expires_at`, ISO text like every other time
 * here, so it compares as text on SQLite and PostgreSQL alike). A queued or running evaluation whose
 * lease has passed, or that has none (a replica released it on shutdown, or it predates leases), is
 * claimed and resumed by any replica. The status index keeps that periodic look-up off the full table.
 */
export const evalLeases: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // One column per statement: SQLite's ALTER TABLE adds one at a time.
    await db.schema.alterTable('evaluations').addColumn('runner_id', 'text').execute();
    await db.schema.alterTable('evaluations').addColumn('heartbeat_at', 'text').execute();
    await db.schema.alterTable('evaluations').addColumn('lease_expires_at', 'text').execute();
    await db.schema.createIndex('evaluations_status').on('evaluations').columns(['status', 'lease_expires_at']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('evaluations_status').execute();
    await db.schema.alterTable('evaluations').dropColumn('lease_expires_at').execute();
    await db.schema.alterTable('evaluations').dropColumn('heartbeat_at').execute();
    await db.schema.alterTable('evaluations').dropColumn('runner_id').execute();
  },
};
