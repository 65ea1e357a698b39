import type { Migration } from 'kysely';
import { runsBattles } from './004_runs_battles.js';

/**
 * Every migration, in order. Names sort by their numeric prefix; a migration once released is never
 * edited, only followed by a new one.
 */
export const migrations: Record<string, Migration> = {
  '004_runs_battles': runsBattles,
};
