import type { Vote } from '../leaderboard.js';

/**
 * How often judges and people agree: for every pair of contestants both have voted on, which side each
 * prefers on balance (or neither). The rate is the share of those pairs where the two preferences are
 * the same; null when no pair has votes from both.
 */
export interface Agreement {
  pairs: number;
  agreed: number;
  rate: number | null;
}

function preferences(votes: Vote[]): Map<string, number> {
  const balance = new Map<string, number>();
  for (const vote of votes) {
    const [first, second] = vote.a < vote.b ? [vote.a, vote.b] : [vote.b, vote.a];
    if (first === second) continue;
    const towardFirst = vote.winner === 'a' ? 1 : vote.winner === 'b' ? -1 : 0;
    const key = `${first}\u0000${second}`;
    balance.set(key, (balance.get(key) ?? 0) + (vote.a === first ? towardFirst : -towardFirst));
  }
  return balance;
}

export function agreement(human: Vote[], judge: Vote[]): Agreement {
  const people = preferences(human);
  const judges = preferences(judge);
  let pairs = 0;
  let agreed = 0;
  for (const [key, balance] of judges) {
    const theirs = people.get(key);
    if (theirs === undefined) continue;
    pairs++;
    if (Math.sign(theirs) === Math.sign(balance)) agreed++;
  }
  return { pairs, agreed, rate: pairs === 0 ? null : Number((agreed / pairs).toFixed(4)) };
}
