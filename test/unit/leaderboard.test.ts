import { describe, expect, it } from 'vitest';
import { computeLeaderboard, fitRatings, seededRandom, type Vote } from '../../src/arena/leaderboard.js';
import type { LeaderboardRow } from '../../src/domain/arena.js';

/**
 * The Bradley–Terry maths against a hand-computed example.
 *
 * Three players A, B, C with strengths 4 : 2 : 1 predict P(A>B) = 4/6 = 2/3, P(B>C) = 2/3 and
 * P(A>C) = 4/5. Results in exactly those proportions (A–B 2:1, B–C 2:1, A–C 4:1) satisfy the
 * likelihood's stationarity condition W_i = Σ_j n_ij · p_i / (p_i + p_j) for every player (A: 6 wins
 * = 3·2/3 + 5·4/5; B: 3 = 3·1/3 + 3·2/3; C: 2 = 3·1/3 + 5·1/5), so 4 : 2 : 1 is the maximum-likelihood
 * fit. On the Elo scale: 400·log10(4) = 240.82, 400·log10(2) = 120.41, 0; shifted to mean 1000:
 * A = 1120.41, B = 1000, C = 879.59.
 */

function votes(a: string, b: string, aWins: number, bWins: number, ties = 0, bothBad = 0): Vote[] {
  return [
    ...Array.from({ length: aWins }, () => ({ a, b, winner: 'a' as const })),
    ...Array.from({ length: bWins }, () => ({ a, b, winner: 'b' as const })),
    ...Array.from({ length: ties }, () => ({ a, b, winner: 'tie' as const })),
    ...Array.from({ length: bothBad }, () => ({ a, b, winner: 'both_bad' as const })),
  ];
}

const handExample = [...votes('A', 'B', 2, 1), ...votes('B', 'C', 2, 1), ...votes('A', 'C', 4, 1)];
const expected = { A: 1000 + 400 * Math.log10(4) - 400 * Math.log10(2), B: 1000, C: 1000 - 400 * Math.log10(2) };

function byName(rows: LeaderboardRow[]) {
  return Object.fromEntries(rows.map((row) => [row.contestant, row]));
}

describe('Bradley–Terry fit', () => {
  it('matches the hand-computed maximum likelihood (no prior)', async () => {
    const rows = byName(await computeLeaderboard(handExample, { prior: 0, rounds: 0 }));
    expect(rows.A!.rating).toBeCloseTo(1120.41, 2);
    expect(rows.B!.rating).toBeCloseTo(1000, 2);
    expect(rows.C!.rating).toBeCloseTo(879.59, 2);
    expect(rows.A!.rating).toBeCloseTo(expected.A, 1);
  });

  it('satisfies the stationarity condition on an irregular win matrix', () => {
    // i beat j wins[i][j] times: no closed form, so check the gradient of the log-likelihood is zero.
    const wins = [
      [0, 3, 1, 2],
      [2, 0, 4, 1],
      [1, 1, 0, 5],
      [3, 2, 1, 0],
    ].map((row) => Float64Array.from(row));
    const ratings = fitRatings(wins, 0);
    const p = ratings.map((r) => 10 ** ((r - 1000) / 400));
    for (let i = 0; i < 4; i++) {
      const won = wins[i]!.reduce((s, w) => s + w, 0);
      let expectedWins = 0;
      for (let j = 0; j < 4; j++) if (j !== i) expectedWins += (wins[i]![j]! + wins[j]![i]!) * (p[i]! / (p[i]! + p[j]!));
      expect(expectedWins).toBeCloseTo(won, 6);
    }
    expect(ratings.reduce((s, r) => s + r, 0) / 4).toBeCloseTo(1000, 6);
  });

  it('counts a tie, and a both_bad vote, as half a win for each side', async () => {
    // A–B: 1 win + 2 ties is 2 : 1 for A, the same as the hand example; B–C uses both_bad the same way.
    const withTies = [...votes('A', 'B', 1, 0, 2), ...votes('B', 'C', 1, 0, 0, 2), ...votes('A', 'C', 4, 1)];
    const rows = byName(await computeLeaderboard(withTies, { prior: 0, rounds: 0 }));
    expect(rows.A!.rating).toBeCloseTo(1120.41, 2);
    expect(rows.C!.rating).toBeCloseTo(879.59, 2);
    expect(rows.A!).toMatchObject({ battles: 8, wins: 5, losses: 1, ties: 2, both_bad: 0 });
    expect(rows.B!).toMatchObject({ battles: 6, wins: 1, losses: 1, ties: 4, both_bad: 2 });
    expect(rows.A!.win_rate).toBeCloseTo((5 + 1) / 8, 4);
  });

  it('with the default weak prior, approaches the maximum likelihood as votes grow, and stays finite when unbeaten', async () => {
    const many = Array.from({ length: 100 }, () => handExample).flat();
    const rows = byName(await computeLeaderboard(many, { rounds: 0 }));
    expect(Math.abs(rows.A!.rating - expected.A)).toBeLessThan(1);
    expect(Math.abs(rows.C!.rating - expected.C)).toBeLessThan(1);

    const unbeaten = byName(await computeLeaderboard(votes('X', 'Y', 3, 0), { rounds: 0 }));
    expect(Number.isFinite(unbeaten.X!.rating)).toBe(true);
    expect(unbeaten.X!.rating).toBeGreaterThan(unbeaten.Y!.rating);
    expect(unbeaten.X!.rating + unbeaten.Y!.rating).toBeCloseTo(2000, 6);
  });
});

describe('bootstrap intervals and ranks', () => {
  const data = [...votes('A', 'B', 30, 10, 5), ...votes('B', 'C', 25, 15), ...votes('A', 'C', 40, 5), ...votes('C', 'D', 20, 20)];

  it('brackets each rating, is reproducible with the same seed, and narrows with more votes', async () => {
    const first = await computeLeaderboard(data, { rounds: 300, seed: 7 });
    const again = await computeLeaderboard(data, { rounds: 300, seed: 7 });
    expect(again).toEqual(first);
    for (const row of first) {
      expect(row.ci_low).toBeLessThanOrEqual(row.rating);
      expect(row.ci_high).toBeGreaterThanOrEqual(row.rating);
      expect(row.ci_high - row.ci_low).toBeGreaterThan(0);
    }
    const other = await computeLeaderboard(data, { rounds: 300, seed: 8 });
    expect(other.map((r) => r.rating)).toEqual(first.map((r) => r.rating));

    const width = (rows: typeof first, name: string) => {
      const row = rows.find((r) => r.contestant === name)!;
      return row.ci_high - row.ci_low;
    };
    const bigger = await computeLeaderboard(Array.from({ length: 10 }, () => data).flat(), { rounds: 300, seed: 7 });
    expect(width(bigger, 'B')).toBeLessThan(width(first, 'B') * 0.6);
  });

  it('ranks by interval overlap: 1 + the number whose lower bound is above my upper bound', async () => {
    const rows = await computeLeaderboard(data, { rounds: 300, seed: 7 });
    for (const row of rows) {
      const above = rows.filter((other) => other.ci_low > row.ci_high).length;
      expect(row.rank).toBe(1 + above);
    }
    expect(rows[0]!.contestant).toBe('A');
    expect(rows[0]!.rank).toBe(1);
    // A clearly beats C and D, whose intervals overlap each other (C–D split evenly): equal ranks.
    const byContestant = Object.fromEntries(rows.map((r) => [r.contestant, r]));
    expect(byContestant.C!.rank).toBeGreaterThan(1);
    expect(byContestant.C!.rank).toBe(byContestant.D!.rank);
  });

  it('the seeded generator is deterministic and uniform enough', () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    const values = Array.from({ length: 10_000 }, () => a());
    expect(values.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()));
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
  });

  it('returns no rows without votes', async () => {
    expect(await computeLeaderboard([])).toEqual([]);
  });
});

describe('intervals of rows with few battles', () => {
  /** A row's record against a shared reference pair, so that only its number of battles differs. */
  function withRows(three: [number, number, number], seven: [number, number, number]): Vote[] {
    return [
      ...votes('r1', 'r2', 5, 5),
      ...votes('three', 'r1', ...three),
      ...votes('seven', 'r2', ...seven),
    ];
  }
  const width = (row: LeaderboardRow) => row.ci_high - row.ci_low;

  // All ties and all wins are the vote sets where the plain percentile bootstrap gave the 3-battle row
  // the tighter interval: nearly every resample repeats its record.
  it.each([
    ['all ties', [0, 0, 3], [0, 0, 7]],
    ['all wins', [3, 0, 0], [7, 0, 0]],
    ['half won', [1, 1, 1], [3, 3, 1]],
    ['all lost', [0, 3, 0], [0, 7, 0]],
  ] as const)('%s: a 3-battle row gets a wider interval than a 7-battle row of the same win rate', async (_name, three, seven) => {
    const rows = byName(await computeLeaderboard(withRows([...three], [...seven])));
    expect(rows.three!.battles).toBe(3);
    expect(rows.seven!.battles).toBe(7);
    expect(rows.three!.win_rate).toBe(rows.seven!.win_rate);
    expect(width(rows.three!)).toBeGreaterThan(width(rows.seven!));
    expect(rows.three!.ci_low).toBeLessThanOrEqual(rows.three!.rating);
    expect(rows.three!.ci_high).toBeGreaterThanOrEqual(rows.three!.rating);
  });

  it('marks rows with fewer than 10 battles provisional', async () => {
    const rows = byName(await computeLeaderboard([...votes('many', 'few', 6, 3), ...votes('many', 'other', 1, 0)]));
    expect(rows.many!.battles).toBe(10);
    expect(rows.many!.provisional).toBe(false);
    expect(rows.few!.provisional).toBe(true);
    expect(rows.other!.provisional).toBe(true);
  });
});
