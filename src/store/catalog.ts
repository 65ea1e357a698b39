import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { ModelCatalogTable } from './schema.js';

export type CatalogRow = Selectable<ModelCatalogTable>;

/** The admins' per-model settings: description, active flag and default generation parameters. */
export class CatalogStore {
  constructor(private readonly db: Db) {}

  async all(): Promise<CatalogRow[]> {
    return this.db.selectFrom('model_catalog').selectAll().orderBy('name').execute();
  }

  async upsert(row: CatalogRow): Promise<void> {
    await this.db
      .insertInto('model_catalog')
      .values(row)
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({
          description: row.description,
          is_active: row.is_active,
          parameters: row.parameters,
          updated_at: row.updated_at,
        }),
      )
      .execute();
  }

  async remove(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('model_catalog').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
