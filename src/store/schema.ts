/**
 * The database tables as Kysely sees them. Each feature adds its table interfaces here and a
 * migration in ./migrations; timestamps are ISO-8601 strings so both dialects store them alike.
 */

import type { Generated } from 'kysely';

export interface Tables {
  settings: SettingsTable;
  api_keys: ApiKeysTable;
  usage_records: UsageRecordsTable;
  model_catalog: ModelCatalogTable;
  runs: RunsTable;
  run_turns: RunTurnsTable;
  battles: BattlesTable;
  sessions: SessionsTable;
  evaluations: EvaluationsTable;
  eval_cells: EvalCellsTable;
  judge_votes: JudgeVotesTable;
}

/** Server-wide values every replica must share (e.g. the API-key HMAC secret). */
interface SettingsTable {
  name: string;
  value: string;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  /** HMAC-SHA256 (hex) of the secret, keyed by the `api_key_hmac` setting. */
  hash: string;
  /** The first characters of the secret, shown so people can tell keys apart. */
  prefix: string;
  tier: string;
  /** The key's own limits; null means the tier's. */
  rpm: number | null;
  tpm: number | null;
  /** JSON array of allowed model names; null means every model. */
  models: string | null;
  /** JSON array of the rights given beyond using models (`manage`); `[]` for none. */
  scopes: string;
  expires_at: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface UsageRecordsTable {
  request_id: string;
  key_id: string | null;
  model: string | null;
  surface: string;
  prompt_tokens: number;
  completion_tokens: number;
  duration_ms: number;
  status: number;
  created_at: string;
}

export interface ModelCatalogTable {
  name: string;
  description: string;
  /** 1 or 0 (SQLite has no boolean). */
  is_active: number;
  /** JSON object of default generation parameters. */
  parameters: string;
  updated_at: string;
}

/** One saved comparison, battle or re-run (src/store/runs.ts). */
export interface RunsTable {
  id: string;
  /** 'comparison' or 'battle'. */
  kind: string;
  /** 'running', 'done', 'partial' (the client went away) or 'error'. */
  status: string;
  owner_key_id: string | null;
  rerun_of: string | null;
  /** 1 for a legacy `models` request (results keyed by model name). */
  legacy: number;
  /** The last user message, for listings. */
  prompt: string;
  /** JSON: the conversation, the instances with every setting, and the answers keyed by instance id. */
  history: string;
  instances: string;
  answers: string;
  created_at: string;
  finished_at: string | null;
  /** How many turns the conversation has; from 2 on, `run_turns` holds them and this row mirrors the latest. */
  turn_count: Generated<number>;
  /** When the latest turn began; null for a run of one turn. */
  updated_at: string | null;
  /** JSON: the conversations of instances sent their own (by instance id), or null. */
  histories: string | null;
}

/** One turn of a continued run (src/store/runs.ts). */
interface RunTurnsTable {
  run_id: string;
  turn: number;
  status: string;
  history: string;
  histories: string | null;
  answers: string;
  created_at: string;
  finished_at: string | null;
}

/** A blind battle between two contestants of a run (src/store/battles.ts). */
interface BattlesTable {
  id: string;
  run_id: string;
  owner_key_id: string | null;
  /** JSON: the contestant's instance with all its settings. */
  a_instance: string;
  b_instance: string;
  a_model: string;
  b_model: string;
  /** Configuration keys (the instance id of docs/api-contract.md). */
  a_config: string;
  b_config: string;
  /** 'a', 'b', 'tie' or 'both_bad'; null until voted. */
  winner: string | null;
  voted_at: string | null;
  created_at: string;
}

/** A server-side conversation of the extended Ollama API (src/store/sessions.ts). */
interface SessionsTable {
  id: string;
  /** `key:<id>` for a session made with an API key, `shared` otherwise. */
  owner: string;
  /** The model of the latest turn. */
  model: string;
  /** JSON array of chat messages. */
  messages: string;
  created_at: string;
  updated_at: string;
  /** Idle expiry: updated_at plus the session TTL. */
  expires_at: string;
}

/** An evaluation job (src/store/evals.ts). */
interface EvaluationsTable {
  id: string;
  owner_key_id: string | null;
  name: string;
  /** 'queued', 'running', 'done', 'cancelled' or 'failed'. */
  status: string;
  /** JSON: the validated suite. */
  suite: string;
  /** JSON list of [prompt_index, instance_id, repeat] to run; null runs every cell. */
  plan: string | null;
  /** Cells plus judgements to do. */
  total: number;
  error: string | null;
  rerun_of: string | null;
  created_at: string;
  finished_at: string | null;
  /** The replica holding the lease (its SharedEvents replica id); null when nobody does. */
  runner_id: string | null;
  /** When the holder last renewed its lease. */
  heartbeat_at: string | null;
  /** Until when the lease holds; once past (or null), any replica may claim and resume the evaluation. */
  lease_expires_at: string | null;
}

interface EvalCellsTable {
  eval_id: string;
  prompt_index: number;
  instance_id: string;
  repeat: number;
  answer: string;
  /** JSON ArenaMetrics; null when the generation failed before any figure. */
  metrics: string | null;
  /** JSON list of assertion results. */
  assertions: string;
  /** 1 when every assertion passed (and the generation did not fail). */
  pass: number;
  error: string | null;
  judge: string | null;
  created_at: string;
}

/** A judge's verdict on two configurations' answers (src/store/evals.ts). */
interface JudgeVotesTable {
  id: string;
  eval_id: string;
  owner_key_id: string | null;
  source: string;
  judge_model: string;
  prompt_index: number;
  repeat: number;
  a_instance: string;
  b_instance: string;
  a_model: string;
  b_model: string;
  a_config: string;
  b_config: string;
  winner: string | null;
  verdicts: string;
  created_at: string;
}
