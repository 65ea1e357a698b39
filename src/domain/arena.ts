/**
 * The Arena's vocabulary, shared by the server's floors and the web UI: what a compared
 * configuration is, how an answer is measured and why it stopped, and what a vote says.
 */

/** One configuration compared in the Arena: a model and its sampling settings, under an id. */
export interface ModelInstance {
  id: string;
  model: string;
  temperature: number;
  top_p: number;
  top_k: number;
  repeat_penalty: number;
  num_predict: number;
  seed: number;
  /** Optional system prompt for this instance alone, put before the conversation. */
  system?: string;
}

/**
 * Why an answer ended: the model finished (`stop`), it reached its num_predict (`length`), the
 * model's context had no room left (`context`), the client stopped it (`cancelled`), or it failed.
 */
export type StopReason = 'stop' | 'length' | 'context' | 'cancelled' | 'error';

/** The figures every Arena answer reports (its `metrics`), time to first token included. */
export interface ArenaMetrics {
  tokens: number;
  duration_s: number;
  /** tokens / duration_s, as the Arena API has always defined it: model load and prompt included. */
  tokens_per_sec: number;
  /** The decode rate alone, from the first token on (Ollama's "eval rate"): what a model's speed is compared by. */
  eval_tokens_per_sec: number;
  ttft_s: number | null;
  prompt_tokens: number;
}

/** A battle vote: contestant a or b won, a tie, or both answers were bad. */
export type Winner = 'a' | 'b' | 'tie' | 'both_bad';

export interface LeaderboardRow {
  rank: number;
  contestant: string;
  rating: number;
  ci_low: number;
  ci_high: number;
  battles: number;
  wins: number;
  losses: number;
  /** Ties including `both_bad`. */
  ties: number;
  both_bad: number;
  /** (wins + ties / 2) / battles: the same counting the rating uses. */
  win_rate: number;
  /** Fewer battles than the leaderboard's provisional threshold (src/arena/leaderboard.ts): the rating may still move a lot. */
  provisional: boolean;
}
