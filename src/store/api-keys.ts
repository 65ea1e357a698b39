import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { ApiKeysTable } from './schema.js';
import type { UsageTotals } from '../domain/access.js';

export type ApiKeyRow = Selectable<ApiKeysTable>;

/** Persistence of API keys; secrets never reach this layer, only their keyed hashes. */
export class ApiKeyStore {
  constructor(private readonly db: Db) {}

  async insert(row: ApiKeyRow): Promise<void> {
    await this.db.insertInto('api_keys').values(row).execute();
  }

  async byHash(hash: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst();
  }

  async byId(id: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(): Promise<ApiKeyRow[]> {
    return this.db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('id').execute();
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('api_keys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Sets revoked_at once; a second revocation keeps the first time. */
  async revoke(id: string, at: string): Promise<void> {
    await this.db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  async replaceSecret(id: string, hash: string, prefix: string): Promise<boolean> {
    const result = await this.db
      .updateTable('api_keys')
      .set({ hash, prefix })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Replaces a key's scopes; false for an unknown id. */
  async setScopes(id: string, scopes: string): Promise<boolean> {
    const result = await this.db.updateTable('api_keys').set({ scopes }).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Batched `last_used_at` writes: one statement per key that was used since the last flush. */
  async touch(lastUsed: Map<string, string>): Promise<void> {
    if (lastUsed.size === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const [id, at] of lastUsed) await trx.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
    });
  }

  /** All-time usage per key, for the key list. */
  async usageByKey(): Promise<Map<string, UsageTotals>> {
    const rows = await this.db
      .selectFrom('usage_records')
      .select((eb) => [
        'key_id',
        eb.fn.count<number>('request_id').distinct().as('requests'),
        eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
        eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
      ])
      .where('key_id', 'is not', null)
      .groupBy('key_id')
      .execute();
    return new Map(
      rows.map((r) => [
        r.key_id!,
        { requests: Number(r.requests), prompt_tokens: Number(r.prompt_tokens ?? 0), completion_tokens: Number(r.completion_tokens ?? 0) },
      ]),
    );
  }
}
