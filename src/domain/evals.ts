/**
 * What an evaluation is, as stored, served and shown: its suite (prompts, configurations, checks and
 * judge), the state of its job, each cell's result, and the summary per configuration.
 */
import type { ChatMessage } from './chat.js';
import type { ArenaMetrics, ModelInstance } from './arena.js';

export type Assertion =
  | { type: 'contains' | 'not_contains' | 'equals'; value: string; ignore_case: boolean }
  | { type: 'regex'; value: string; flags: string }
  | { type: 'is_json' }
  | { type: 'json_schema'; value: Record<string, unknown> }
  | { type: 'max_latency' | 'max_ttft' | 'min_tokens_per_sec' | 'max_tokens'; value: number }
  | { type: 'similar'; value?: string; threshold: number; model: string };

export interface AssertionResult {
  type: Assertion['type'];
  pass: boolean;
  /** What was measured (a latency, a cosine), when there is a number to show. */
  score?: number;
  /** Why it could not be decided (a regex that ran out of time): such an assertion fails. */
  error?: string;
}

export interface SuitePrompt {
  messages: ChatMessage[];
  reference?: string;
  assert: Assertion[];
}

export interface JudgeSpec {
  mode: 'pairwise' | 'score';
  instance: ModelInstance;
  rubric: string;
}

export interface Suite {
  name: string;
  prompts: SuitePrompt[];
  /** Every configuration: the suite's model_instances, then the grid's, each with a unique id. */
  instances: ModelInstance[];
  repeats: number;
  assert: Assertion[];
  judge?: JudgeSpec;
  threshold?: { pass_rate: number };
  concurrency: number;
}

export type EvalStatus = 'queued' | 'running' | 'done' | 'cancelled' | 'failed';

/** One cell to run: a prompt, a configuration, a repeat. */
export type CellKey = [promptIndex: number, instanceId: string, repeat: number];

export interface JudgeScore {
  score?: number;
  abstained?: boolean;
  reply: string;
}

export interface Cell {
  prompt_index: number;
  instance_id: string;
  repeat: number;
  answer: string;
  metrics: ArenaMetrics | null;
  assertions: AssertionResult[];
  pass: boolean;
  error: string | null;
  judge: JudgeScore | null;
}

export interface JudgeRating {
  mode: 'pairwise' | 'score';
  /** Pairwise: Bradley–Terry rating (Elo scale); score: the mean 1–10 rating. */
  rating: number | null;
  rating_low: number | null;
  rating_high: number | null;
  wins?: number;
  losses?: number;
  ties?: number;
  judged: number;
  abstained: number;
}

export interface ConfigurationSummary {
  instance_id: string;
  model: string;
  cells: number;
  passed: number;
  errors: number;
  pass_rate: number;
  pass_rate_low: number;
  pass_rate_high: number;
  latency_mean_s: number | null;
  latency_p95_s: number | null;
  ttft_mean_s: number | null;
  ttft_p95_s: number | null;
  tokens_per_sec_mean: number | null;
  judge: JudgeRating | null;
  /** Whether pass_rate reaches the suite's threshold; null without one. */
  meets_threshold: boolean | null;
}

export interface EvalView {
  id: string;
  name: string;
  status: EvalStatus;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  rerun_of: string | null;
  progress: { done: number; total: number };
  threshold: { pass_rate: number } | null;
  /** Whether every configuration meets the threshold; null without one or before the end. */
  passed: boolean | null;
  prompts: { messages: { role: string; content: string }[]; reference?: string }[];
  instances: ModelInstance[];
  judge: { mode: string; model: string; rubric: string } | null;
  summary: ConfigurationSummary[];
  cells: Cell[];
}
