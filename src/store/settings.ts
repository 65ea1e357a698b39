import type { Db } from './database.js';

/**
 * A server-wide value created once and then shared by every replica: the first replica to start
 * writes it, the others (and later restarts) read that same value back.
 */
export async function sharedSetting(db: Db, name: string, create: () => string): Promise<string> {
  await db.insertInto('settings').values({ name, value: create() }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const row = await db.selectFrom('settings').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  return row.value;
}
