import type { Kysely, Migration } from 'kysely';

/**
 * API keys' scopes: rights an admin adds to a key beyond using models (`manage`: load and unload
 * models). A JSON array; keys issued before have none.
 */
export const apiKeyScopes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('api_keys').addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]')).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('api_keys').dropColumn('scopes').execute();
  },
};
