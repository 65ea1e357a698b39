import type { Migration } from 'kysely';

/**
 * Every migration, in order. Names sort by their numeric prefix; a migration once released is never
 * edited, only followed by a new one.
 */
export const migrations: Record<string, Migration> = {};
