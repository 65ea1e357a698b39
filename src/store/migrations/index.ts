import type { Migration } from 'kysely';
import { apiKeysUsageCatalog } from './002_api_keys_usage_catalog.js';
import { runsBattles } from './004_runs_battles.js';
import { sessions } from './005_sessions.js';
import { apiKeyScopes } from './006_api_key_scopes.js';
import { evaluations } from './007_evaluations.js';
import { evalLeases } from './008_eval_leases.js';
import { runTurns } from './009_run_turns.js';

/**
 * Every migration, in order. Names sort by their numeric prefix; a migration once released is never
 * edited, only followed by a new one.
 */
export const migrations: Record<string, Migration> = {
  '002_api_keys_usage_catalog': apiKeysUsageCatalog,
  '004_runs_battles': runsBattles,
  // After 004 although written beside it: databases that already ran 004 only accept later names.
  '005_sessions': sessions,
  '006_api_key_scopes': apiKeyScopes,
  '007_evaluations': evaluations,
  '008_eval_leases': evalLeases,
  '009_run_turns': runTurns,
};
