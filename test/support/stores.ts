import crypto from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';

/** The machine's real PostgreSQL and Redis (`.ci/run` starts them). */
const PG_TEST_URL = process.env.DATABASE_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_TEST_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL database of its own, so that test files running in parallel never collide. */
export async function createPgDatabase(): Promise<TestDatabase> {
  const name = `arena_${crypto.randomBytes(6).toString('hex')}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: PG_TEST_URL });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_TEST_URL);
  url.pathname = `/${name}`;
  // A closed server's pool resolves its end() before its sockets are gone: wait for them rather than
  // FORCE at once, which would make those closing connections report an error.
  const drop = async () => {
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        return await admin(`DROP DATABASE IF EXISTS ${name}`);
      } catch (error) {
        if ((error as { code?: string }).code !== '55006') throw error; // 55006: still in use
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  return { url: url.toString(), drop };
}

export interface TestRedis {
  url: string;
  /** A key prefix of its own (REDIS_PREFIX), so tests sharing the Redis never see each other's keys. */
  prefix: string;
  cleanup(): Promise<void>;
}

export function testRedis(): TestRedis {
  const prefix = `test-${crypto.randomBytes(6).toString('hex')}:`;
  return {
    url: REDIS_TEST_URL,
    prefix,
    async cleanup() {
      const redis = new Redis(REDIS_TEST_URL);
      try {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        await redis.quit();
      }
    },
  };
}

/**
 * The two stores every store-touching test runs on: the embedded SQLite default and PostgreSQL.
 * `setup` returns the server environment for the store and a cleanup.
 */
export const STORES = [
  { store: 'sqlite', setup: async () => ({ env: {} as Record<string, string>, cleanup: async () => undefined }) },
  {
    store: 'postgres',
    setup: async () => {
      const db = await createPgDatabase();
      return { env: { DATABASE_URL: db.url } as Record<string, string>, cleanup: () => db.drop() };
    },
  },
] as const;
