import type { ModelInstance } from '../../domain/arena.js';
import { computeLeaderboard, type Vote } from '../leaderboard.js';
import type { JudgeVote } from '../../store/evals.js';
import type { Cell } from '../../domain/evals.js';
import type { JudgeRating, ConfigurationSummary } from '../../domain/evals.js';

/** The figures of an evaluation, per configuration: what its summary table and the CLI's exit code read. */

const Z95 = 1.959964;

/** The 95% Wilson score interval of `passed` successes in `total` trials ([0, 1] when there are none). */
export function wilson(passed: number, total: number, z = Z95): [number, number] {
  if (total === 0) return [0, 1];
  const p = passed / total;
  const z2 = z * z;
  const denominator = 1 + z2 / total;
  const centre = (p + z2 / (2 * total)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / total + z2 / (4 * total * total));
  // At 0 or all passed the bound is exactly 0 or 1; floating point would leave it a hair inside.
  return [passed === 0 ? 0 : Math.max(0, centre - half), passed === total ? 1 : Math.min(1, centre + half)];
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** Nearest-rank percentile. */
function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const round = (value: number | null, digits = 4) => (value === null ? null : Number(value.toFixed(digits)));

async function pairwiseRatings(votes: JudgeVote[]): Promise<Map<string, JudgeRating>> {
  const decided: Vote[] = votes.filter((v) => v.winner !== null).map((v) => ({ a: v.a.instance.id, b: v.b.instance.id, winner: v.winner! }));
  const rows = await computeLeaderboard(decided);
  const ratings = new Map<string, JudgeRating>();
  for (const row of rows) {
    ratings.set(row.contestant, { mode: 'pairwise', rating: row.rating, rating_low: row.ci_low, rating_high: row.ci_high, wins: row.wins, losses: row.losses, ties: row.ties, judged: row.battles, abstained: 0 });
  }
  for (const vote of votes) {
    if (vote.winner !== null) continue;
    for (const id of [vote.a.instance.id, vote.b.instance.id]) {
      const entry = ratings.get(id) ?? { mode: 'pairwise', rating: null, rating_low: null, rating_high: null, wins: 0, losses: 0, ties: 0, judged: 0, abstained: 0 };
      entry.abstained++;
      ratings.set(id, entry);
    }
  }
  return ratings;
}

function scoreRating(cells: Cell[]): JudgeRating {
  const scores = cells.flatMap((c) => (c.judge?.score === undefined ? [] : [c.judge.score]));
  const abstained = cells.filter((c) => c.judge?.abstained).length;
  const average = mean(scores);
  let half: number | null = null;
  if (average !== null && scores.length > 1) {
    const variance = scores.reduce((sum, s) => sum + (s - average) ** 2, 0) / (scores.length - 1);
    half = Z95 * Math.sqrt(variance / scores.length);
  }
  return {
    mode: 'score',
    rating: round(average, 3),
    rating_low: average === null ? null : round(Math.max(1, average - (half ?? 0)), 3),
    rating_high: average === null ? null : round(Math.min(10, average + (half ?? 0)), 3),
    judged: scores.length,
    abstained,
  };
}

export async function summarise(
  instances: ModelInstance[],
  cells: Cell[],
  votes: JudgeVote[],
  judgeMode: 'pairwise' | 'score' | undefined,
  threshold: number | undefined,
): Promise<ConfigurationSummary[]> {
  const pairwise = judgeMode === 'pairwise' ? await pairwiseRatings(votes) : undefined;
  return instances.map((instance) => {
    const own = cells.filter((c) => c.instance_id === instance.id);
    const passed = own.filter((c) => c.pass).length;
    const [low, high] = wilson(passed, own.length);
    const measured = own.filter((c) => c.metrics !== null && c.error === null).map((c) => c.metrics!);
    const latencies = measured.map((m) => m.duration_s);
    const ttfts = measured.flatMap((m) => (m.ttft_s === null ? [] : [m.ttft_s]));
    const passRate = own.length === 0 ? 0 : passed / own.length;
    return {
      instance_id: instance.id,
      model: instance.model,
      cells: own.length,
      passed,
      errors: own.filter((c) => c.error !== null).length,
      pass_rate: round(passRate)!,
      pass_rate_low: round(low)!,
      pass_rate_high: round(high)!,
      latency_mean_s: round(mean(latencies), 3),
      latency_p95_s: round(percentile(latencies, 0.95), 3),
      ttft_mean_s: round(mean(ttfts), 3),
      ttft_p95_s: round(percentile(ttfts, 0.95), 3),
      tokens_per_sec_mean: round(mean(measured.map((m) => m.tokens_per_sec)), 2),
      judge: judgeMode === undefined ? null : judgeMode === 'score' ? scoreRating(own) : (pairwise!.get(instance.id) ?? null),
      meets_threshold: threshold === undefined ? null : passRate >= threshold,
    };
  });
}
