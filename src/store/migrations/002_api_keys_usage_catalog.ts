import type { Kysely, Migration } from 'kysely';

/**
 * API keys, the usage ledger, the model catalog and shared server settings. Only types both SQLite and
 * PostgreSQL read alike: text (ISO-8601 timestamps, JSON), integer (booleans as 0/1), bigint counters.
 */
export const apiKeysUsageCatalog: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('settings')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      // HMAC-SHA256 of the secret, hex; the secret itself is never stored.
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('prefix', 'text', (c) => c.notNull())
      .addColumn('tier', 'text', (c) => c.notNull())
      .addColumn('rpm', 'integer')
      .addColumn('tpm', 'integer')
      .addColumn('models', 'text')
      .addColumn('expires_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();

    await db.schema
      .createTable('usage_records')
      // One row per request and model (an Arena request over two models is two rows, one request_id).
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text')
      .addColumn('model', 'text')
      .addColumn('surface', 'text', (c) => c.notNull())
      .addColumn('prompt_tokens', 'integer', (c) => c.notNull())
      .addColumn('completion_tokens', 'integer', (c) => c.notNull())
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('status', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('usage_records_created_at').on('usage_records').column('created_at').execute();
    await db.schema.createIndex('usage_records_key_id').on('usage_records').columns(['key_id', 'created_at']).execute();

    await db.schema
      .createTable('model_catalog')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('is_active', 'integer', (c) => c.notNull())
      .addColumn('parameters', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['model_catalog', 'usage_records', 'api_keys', 'settings']) await db.schema.dropTable(table).execute();
  },
};
