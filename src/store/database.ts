import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import type { Tables } from './schema.js';
import { migrations } from './migrations/index.js';

export type Db = Kysely<Tables>;

export interface Store {
  db: Db;
  dialect: 'sqlite' | 'postgres';
  /**
   * The SQLite handle under `db` (SQLite only), for the few per-request statements of the hot path:
   * Kysely builds, compiles and re-prepares a statement on every call, which a prepared statement skips.
   */
  sqlite?: Database.Database;
  close(): Promise<void>;
}

class StaticMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

/** Host, port and database of a PostgreSQL URL, without its password. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

/** A connection error's reason; a refused connect to a name with several addresses has no message of its own. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const first = error instanceof AggregateError ? (error.errors[0] as Error | undefined) : undefined;
  return error.message || first?.message || (error as { code?: string }).code || error.name;
}

/**
 * Opens the one data layer: PostgreSQL when DATABASE_URL is set (shared by several replicas), else an
 * SQLite file under DATA_DIR. Versioned migrations run before the server takes traffic; Kysely's
 * migrator takes a lock, so replicas starting together do not race.
 */
export async function openStore(options: { databaseUrl?: string; dataDir: string }): Promise<Store> {
  let db: Db;
  let dialect: Store['dialect'];
  let sqliteHandle: Database.Database | undefined;
  if (options.databaseUrl) {
    // BIGINT counts (COUNT, SUM) come back as JS numbers; our totals stay far below 2^53.
    pg.types.setTypeParser(20, (value) => Number(value));
    // A host that drops packets would otherwise hold the start (and every query) forever.
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10, connectionTimeoutMillis: 10_000 });
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new Error(`PostgreSQL at ${describeDatabase(options.databaseUrl)} is unreachable: ${reasonOf(error)}`, { cause: error });
    }
    db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  } else {
    fs.mkdirSync(options.dataDir, { recursive: true });
    const sqlite = new Database(path.join(options.dataDir, 'arena.db'));
    // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: sqlite }) });
    sqliteHandle = sqlite;
    dialect = 'sqlite';
  }
  const migrator = new Migrator({ db, provider: new StaticMigrations() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${(error as Error).message}`);
  }
  return { db, dialect, sqlite: sqliteHandle, close: () => db.destroy() };
}
