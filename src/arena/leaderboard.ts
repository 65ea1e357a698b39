/**
 * The Arena leaderboard: Bradley–Terry ratings from pairwise votes, the way Chatbot Arena computes
 * them, with bootstrap confidence intervals and ranks by interval overlap.
 *
 * Model: P(i beats j) = p_i / (p_i + p_j). Ratings are on the Elo scale, r_i = 400·log10(p_i), shifted
 * so that their mean is 1000. A tie (and a `both_bad` vote, as Chatbot Arena treats it) is half a win
 * for each side. The fit is the maximum of the likelihood, found with Hunter's MM iteration (2004),
 * plus a weak prior: every contestant plays `prior` virtual tied games against an anchor player.
 * Without it a contestant that never lost (or never won) has an infinite rating, and bootstrap samples
 * often produce such contestants; with it those ratings stay finite and the fit converges quickly.
 */
import type { Winner } from '../domain/arena.js';
import type { LeaderboardRow } from '../domain/arena.js';

export interface Vote {
  a: string;
  b: string;
  winner: Winner;
}

export interface LeaderboardOptions {
  /** Bootstrap resamples for the 95% interval; 0 gives an interval of zero width. */
  rounds?: number;
  /** PRNG seed: the same votes and seed give the same intervals. */
  seed?: number;
  /** Virtual tied games per contestant against the 1000 anchor; 0 is the plain maximum likelihood. */
  prior?: number;
}

export const DEFAULT_ROUNDS = 200;
const DEFAULT_PRIOR = 1;
const SCALE = 400;
const ANCHOR = 1000;
const MAX_ITERATIONS = 10_000;
const TOLERANCE = 1e-9;

/** mulberry32: a small, fast, seedable PRNG; reproducibility is all the bootstrap needs from it. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** wins[i][j]: how often i beat j, ties counted half to each. */
function winMatrix(n: number, votes: readonly [number, number, Winner][], pick?: Int32Array): Float64Array[] {
  const wins = Array.from({ length: n }, () => new Float64Array(n));
  const count = pick ? pick.length : votes.length;
  for (let k = 0; k < count; k++) {
    const [i, j, winner] = votes[pick ? pick[k]! : k]!;
    if (winner === 'a') wins[i]![j]! += 1;
    else if (winner === 'b') wins[j]![i]! += 1;
    else {
      wins[i]![j]! += 0.5;
      wins[j]![i]! += 0.5;
    }
  }
  return wins;
}

/**
 * Elo-scale ratings (mean 1000) maximising the Bradley–Terry likelihood of the win matrix plus the
 * prior. With prior 0 the caller must give data in which everyone has won and lost something.
 *
 * The prior's anchor is one more player, whose strength is fitted like the others': every contestant
 * has tied `prior` games with it. That keeps the problem scale-free, so the MM iteration can be
 * normalised after each sweep; a fixed anchor instead leaves a slowly converging common scale.
 */
export function fitRatings(wins: Float64Array[], prior = DEFAULT_PRIOR): number[] {
  const n = wins.length;
  const size = prior > 0 ? n + 1 : n;
  const games = Array.from({ length: size }, () => new Float64Array(size));
  const won = new Float64Array(size);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      games[i]![j] = wins[i]![j]! + wins[j]![i]!;
      won[i]! += wins[i]![j]!;
    }
    if (prior > 0) {
      games[i]![n] = prior;
      games[n]![i] = prior;
      won[i]! += prior / 2;
      won[n]! += prior / 2;
    }
  }
  const active = Array.from({ length: size }, (_, i) => games[i]!.some((g) => g > 0));
  const p = new Float64Array(size).fill(1);
  for (let iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
    let change = 0;
    // Gauss–Seidel: each update already uses the others' newest strengths, which converges faster.
    for (let i = 0; i < size; i++) {
      if (!active[i]) continue;
      let denominator = 0;
      for (let j = 0; j < size; j++) if (games[i]![j]! > 0) denominator += games[i]![j]! / (p[i]! + p[j]!);
      const next = won[i]! / denominator;
      change = Math.max(change, Math.abs(Math.log(next / p[i]!)));
      p[i] = next;
    }
    // The scale is free; keeping the geometric mean at 1 stops it drifting into under- or overflow.
    let logSum = 0;
    let count = 0;
    for (let i = 0; i < size; i++) {
      if (!active[i]) continue;
      logSum += Math.log(p[i]!);
      count++;
    }
    const factor = Math.exp(-logSum / Math.max(1, count));
    for (let i = 0; i < size; i++) if (active[i]) p[i]! *= factor;
    if (change < TOLERANCE) break;
  }
  const ratings = Array.from(p.subarray(0, n), (strength) => SCALE * Math.log10(strength));
  const mean = ratings.reduce((sum, r) => sum + r, 0) / Math.max(1, n);
  return ratings.map((r) => r - mean + ANCHOR);
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

/** Below this many battles a row is marked provisional. */
const PROVISIONAL_BATTLES = 10;

/**
 * The narrowest 95% half-width a row's own record allows, in rating points: the normal approximation
 * of a win rate over `battles` games, smoothed by one virtual win and one loss. The percentile
 * bootstrap alone under-covers small rows: a contestant whose 3 battles were all ties (or all wins)
 * gets the same record in nearly every resample, and so a tighter interval than one with 7 battles.
 * This floor shrinks as 1/√battles, so fewer battles never mean a tighter interval.
 */
function minimumHalfWidth(battles: number, score: number): number {
  const n = battles + 2;
  const p = (score + 1) / n;
  return 1.96 * (SCALE / Math.LN10) / Math.sqrt(n * p * (1 - p));
}

/**
 * The leaderboard of a list of votes (in a stable order, so that the seeded bootstrap draws the same
 * samples each time): ratings from all votes, 95% percentile-bootstrap intervals from `rounds` resamples
 * of the votes, and rank = 1 + the number of contestants whose lower bound is above this upper bound.
 * It hands the event loop back between bootstrap rounds: with many votes the whole takes a second or
 * more, and the server is streaming other people's tokens meanwhile.
 */
export async function computeLeaderboard(votes: readonly Vote[], options: LeaderboardOptions = {}): Promise<LeaderboardRow[]> {
  const rounds = options.rounds ?? DEFAULT_ROUNDS;
  const prior = options.prior ?? DEFAULT_PRIOR;
  const names: string[] = [];
  const index = new Map<string, number>();
  const indexOf = (name: string) => {
    let i = index.get(name);
    if (i === undefined) {
      i = names.length;
      names.push(name);
      index.set(name, i);
    }
    return i;
  };
  const encoded = votes.map((v) => [indexOf(v.a), indexOf(v.b), v.winner] as [number, number, Winner]);
  const n = names.length;
  if (n === 0) return [];

  const ratings = fitRatings(winMatrix(n, encoded), prior);
  const samples = Array.from({ length: n }, () => [] as number[]);
  const random = seededRandom(options.seed ?? 42);
  const pick = new Int32Array(encoded.length);
  for (let r = 0; r < rounds; r++) {
    if (r % 5 === 4) await new Promise((resolve) => setImmediate(resolve));
    for (let k = 0; k < pick.length; k++) pick[k] = Math.floor(random() * encoded.length);
    fitRatings(winMatrix(n, encoded, pick), prior).forEach((rating, i) => samples[i]!.push(rating));
  }
  const intervals = samples.map((values, i) => {
    if (values.length === 0) return [ratings[i]!, ratings[i]!] as const;
    values.sort((x, y) => x - y);
    return [quantile(values, 0.025), quantile(values, 0.975)] as const;
  });

  const counts = names.map(() => ({ wins: 0, losses: 0, ties: 0, both_bad: 0 }));
  for (const [i, j, winner] of encoded) {
    if (winner === 'a') {
      counts[i]!.wins++;
      counts[j]!.losses++;
    } else if (winner === 'b') {
      counts[j]!.wins++;
      counts[i]!.losses++;
    } else {
      counts[i]!.ties++;
      counts[j]!.ties++;
      if (winner === 'both_bad') {
        counts[i]!.both_bad++;
        counts[j]!.both_bad++;
      }
    }
  }

  const widened = intervals.map(([low, high], i) => {
    const { wins, losses, ties } = counts[i]!;
    const half = minimumHalfWidth(wins + losses + ties, wins + ties / 2);
    return [Math.min(low, ratings[i]! - half), Math.max(high, ratings[i]! + half)] as const;
  });

  const rows = names.map((contestant, i): LeaderboardRow => {
    const { wins, losses, ties, both_bad } = counts[i]!;
    const battles = wins + losses + ties;
    const rank = 1 + widened.filter(([low], j) => j !== i && low > widened[i]![1]).length;
    return {
      rank,
      contestant,
      rating: round(ratings[i]!, 2),
      ci_low: round(widened[i]![0], 2),
      ci_high: round(widened[i]![1], 2),
      battles,
      wins,
      losses,
      ties,
      both_bad,
      win_rate: battles > 0 ? round((wins + ties / 2) / battles, 4) : 0,
      provisional: battles < PROVISIONAL_BATTLES,
    };
  });
  return rows.sort((x, y) => x.rank - y.rank || y.rating - x.rating || x.contestant.localeCompare(y.contestant));
}
