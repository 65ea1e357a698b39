import type { Kysely, Migration } from 'kysely';

/**
 * Evaluations: a suite run as a server-side job, its cells (one answer of one configuration to one
 * prompt, with its metrics and assertion results) and the votes its LLM judge cast. Judge votes live
 * apart from the human battles, each marked with its source, so the two leaderboards never mix.
 */
export const evaluations: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('evaluations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('owner_key_id', 'text')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      // JSON: the validated suite (configurations resolved), and which cells to run (null: all).
      .addColumn('suite', 'text', (c) => c.notNull())
      .addColumn('plan', 'text')
      .addColumn('total', 'integer', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('rerun_of', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .execute();
    await db.schema.createIndex('evaluations_created_at').on('evaluations').columns(['created_at', 'id']).execute();

    await db.schema
      .createTable('eval_cells')
      .addColumn('eval_id', 'text', (c) => c.notNull().references('evaluations.id').onDelete('cascade'))
      .addColumn('prompt_index', 'integer', (c) => c.notNull())
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('repeat', 'integer', (c) => c.notNull())
      .addColumn('answer', 'text', (c) => c.notNull())
      .addColumn('metrics', 'text')
      .addColumn('assertions', 'text', (c) => c.notNull())
      .addColumn('pass', 'integer', (c) => c.notNull())
      .addColumn('error', 'text')
      // JSON: a score judge's rating of this answer ({score} or {abstained, reply}); null without one.
      .addColumn('judge', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('eval_cells_pk', ['eval_id', 'prompt_index', 'instance_id', 'repeat'])
      .execute();

    await db.schema
      .createTable('judge_votes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('eval_id', 'text', (c) => c.notNull().references('evaluations.id').onDelete('cascade'))
      .addColumn('owner_key_id', 'text')
      // Always 'judge' today; the column says where a vote came from wherever votes are read together.
      .addColumn('source', 'text', (c) => c.notNull().defaultTo('judge'))
      .addColumn('judge_model', 'text', (c) => c.notNull())
      .addColumn('prompt_index', 'integer', (c) => c.notNull())
      .addColumn('repeat', 'integer', (c) => c.notNull())
      .addColumn('a_instance', 'text', (c) => c.notNull())
      .addColumn('b_instance', 'text', (c) => c.notNull())
      .addColumn('a_model', 'text', (c) => c.notNull())
      .addColumn('b_model', 'text', (c) => c.notNull())
      .addColumn('a_config', 'text', (c) => c.notNull())
      .addColumn('b_config', 'text', (c) => c.notNull())
      // 'a', 'b' or 'tie'; null when the judge abstained in either order.
      .addColumn('winner', 'text')
      // JSON: the judge's two replies and what was read from each.
      .addColumn('verdicts', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('judge_votes_eval').on('judge_votes').columns(['eval_id']).execute();
    await db.schema.createIndex('judge_votes_created').on('judge_votes').columns(['created_at', 'id']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('judge_votes').execute();
    await db.schema.dropTable('eval_cells').execute();
    await db.schema.dropTable('evaluations').execute();
  },
};
