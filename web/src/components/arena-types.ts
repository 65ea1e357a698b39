/**
 * The Arena API's shapes as the browser sees them (docs/arena-api.md), and the
 * instance settings with their documented defaults and ranges. Where the server has the type, it is
 * imported (types only, erased from the bundle), so the two cannot drift apart.
 */
import type { ArenaMetrics, ModelInstance } from '../../../src/domain/arena.js';
import type { ModelParameters } from '../../../src/domain/models.js';
import { configurationKey, INSTANCE_DEFAULTS, INSTANCE_RANGES } from '../../../src/shared/instances.js';
export type { PullJob } from '../../../src/domain/models.js';

export type Metrics = ArenaMetrics;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type { StopReason } from '../../../src/domain/arena.js';
import type { LeaderboardRow as RankedRow, StopReason } from '../../../src/domain/arena.js';

/** One NDJSON line of `/api/stream_chat`, `/api/battles` and re-runs. */
export interface StreamLine {
  instance_id?: string;
  model?: string;
  token: string;
  done: boolean;
  /** Token lines of comparisons: seconds since the answer's first token, on the server's clock. */
  eval_s?: number;
  done_reason?: StopReason;
  trimmed_turns?: number;
  metrics?: Metrics;
  error?: string;
}

export type Instance = ModelInstance;
export type InstanceSettings = Omit<ModelInstance, 'id'>;

export type NumericSetting = Exclude<keyof InstanceSettings, 'model' | 'system'>;

/** How the editor shows each setting (label, step); defaults and ranges are the Arena API's, shared with the server. */
const STEPS: Record<NumericSetting, number> = { temperature: 0.05, top_p: 0.05, top_k: 1, repeat_penalty: 0.05, num_predict: 1, seed: 1 };

export const SETTINGS: { key: NumericSetting; label: string; min: number; max: number; step: number; default: number }[] = (
  Object.keys(INSTANCE_DEFAULTS) as NumericSetting[]
).map((key) => ({ key, label: key, min: INSTANCE_RANGES[key].min, max: INSTANCE_RANGES[key].max, step: STEPS[key], default: INSTANCE_DEFAULTS[key] }));

/**
 * The answer length the page starts instances with. The API's default (-1) lets an answer run until
 * the model's context is full, which leaves no room for a follow-up on a small context: a bounded
 * default keeps a second turn possible; the field still takes -1 for "no limit".
 */
export const PAGE_NUM_PREDICT = 200;

export function defaultSettings(model: string): InstanceSettings {
  return { model, ...INSTANCE_DEFAULTS, num_predict: PAGE_NUM_PREDICT };
}

/**
 * The key of a column's configuration, the same the server computes for battle contestants, so runs
 * and leaderboards name it alike: the instance id of docs/api-contract.md, told apart by the system prompt too.
 */
export const instanceKey = (s: InstanceSettings): string => configurationKey(s);

/**
 * The part of a run id a person can tell apart: ids are UUIDv7, whose first characters are a
 * timestamp shared by every run of the same minute, so the end is shown.
 */
export function shortId(id: string): string {
  return id.slice(-8);
}

/** A short human summary of the settings, for column headers. */
export function settingsSummary(s: Partial<InstanceSettings>): string {
  const parts = [`T ${s.temperature}`, `p ${s.top_p}`, `k ${s.top_k}`, `rep ${s.repeat_penalty}`];
  if (s.num_predict !== undefined && s.num_predict !== -1) parts.push(`max ${s.num_predict}`);
  if (s.seed) parts.push(`seed ${s.seed}`);
  if (s.system) parts.push('system prompt');
  return parts.join(' · ');
}

interface Answer {
  response: string;
  metrics: Metrics | null;
  error: string | null;
}

/** A revealed battle side. */
interface Contestant extends InstanceSettings {
  instance_id: string;
}

export type Winner = 'a' | 'b' | 'tie' | 'both_bad';

export interface VoteResult {
  id: string;
  run_id: string;
  winner: Winner;
  voted_at: string;
  contestants: { a: Contestant; b: Contestant };
}

export interface Run {
  id: string;
  kind: 'comparison' | 'battle';
  status: 'running' | 'done' | 'partial' | 'error';
  created_at: string;
  finished_at: string | null;
  rerun_of: string | null;
  legacy: boolean;
  /** The latest turn's prompt, answers and status (a run never continued has one turn). */
  history: ChatMessage[];
  histories?: Record<string, ChatMessage[]> | null;
  instances: (Instance | { id: string; hidden: true })[];
  answers: Record<string, Answer>;
  battle: null | { id: string; winner: Winner | null; voted_at: string | null };
  turn_count?: number;
  updated_at?: string;
  /** Every turn of the conversation in order. */
  turns?: RunTurn[];
}

/** One question of a saved conversation and every instance's answer to it. */
export interface RunTurn {
  turn: number;
  status: Run['status'];
  created_at: string;
  finished_at: string | null;
  history: ChatMessage[];
  /** The conversations of instances sent their own, by instance id. */
  histories: Record<string, ChatMessage[]> | null;
  answers: Record<string, Answer>;
}

interface RunSummary {
  id: string;
  kind: Run['kind'];
  status: Run['status'];
  created_at: string;
  finished_at: string | null;
  rerun_of: string | null;
  /** The last user message, at most 200 characters. */
  prompt: string;
  /** Empty for a battle not voted yet. */
  models: string[];
  instance_count: number;
  battle: Run['battle'];
  /** How many turns the conversation has, and when the latest began. */
  turn_count?: number;
  updated_at?: string;
}

export interface RunList {
  runs: RunSummary[];
  total: number;
  limit: number;
  offset: number;
}

/** A leaderboard row as the API sends it: the ranking's figures, with the model and settings it stands for. */
export interface LeaderboardRow extends RankedRow {
  model: string;
  settings: Contestant | null;
}

export interface Leaderboard {
  by: 'model' | 'config';
  total_battles: number;
  bootstrap_rounds: number;
  rows: LeaderboardRow[];
}

export interface ModelDetails {
  name: string;
  family: string | null;
  parameter_size: string | null;
  size_mb: number | null;
  quantization: string | null;
  context_size: number | null;
  loaded: boolean;
  backends: { id: string; kind: string; healthy: boolean }[];
  /** The admin catalog's fields (the management API), shown to everyone; only an admin changes them. */
  description: string;
  is_active: boolean;
  parameters: ModelParameters;
}

export type { ModelParameters };


export const WINNER_LABELS: Record<Winner, string> = { a: 'A better', b: 'B better', tie: 'Tie', both_bad: 'Both bad' };
