import type { ChatMessage } from '../../domain/chat.js';
import type { Winner } from '../../domain/arena.js';

/**
 * An LLM judge: the prompts it is given and how its answers are read. A verdict is taken only when the
 * answer states one plainly; anything else is `abstained`, never a guess.
 *
 * Pairwise judging shows each pair in both orders. Judges favour a position (often the first); if the
 * two orders disagree the pair is a tie, so a judge that always names the first answer produces ties,
 * not wins.
 */

export type PairVerdict = 'A' | 'B' | 'tie' | 'abstained';

const SYSTEM = 'You are an impartial judge of answers written by AI assistants. Follow the rubric. Do not let the order of the answers, their length or their style sway you.';

function conversationText(messages: ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${m.content}`).join('\n');
}

export function pairwisePrompt(rubric: string, messages: ChatMessage[], first: string, second: string): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    {
      role: 'user',
      content:
        `Rubric: ${rubric}\n\n[Conversation]\n${conversationText(messages)}\n\n[Answer A]\n${first}\n[End of answer A]\n\n[Answer B]\n${second}\n[End of answer B]\n\n` +
        'Which answer is better by the rubric? Reply with one line: "Verdict: A", "Verdict: B" or "Verdict: tie".',
    },
  ];
}

export function scorePrompt(rubric: string, messages: ChatMessage[], answer: string): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    {
      role: 'user',
      content: `Rubric: ${rubric}\n\n[Conversation]\n${conversationText(messages)}\n\n[Answer]\n${answer}\n[End of answer]\n\nRate the answer from 1 (worst) to 10 (best) by the rubric. Reply with one line: "Rating: N".`,
    },
  ];
}

const VERDICT_WORD = /^(a|b|tie)$/i;

/** Strips what models wrap a one-word reply in: quotes, brackets, markdown emphasis, a final stop. */
function bare(text: string): string {
  return text.trim().replace(/^[\s"'`*_[(]+|[\s"'`*_\]).!]+$/g, '');
}

/**
 * The verdict an answer states: the whole reply being `A`, `B` or `tie` (decorations aside), or a
 * `Verdict: X` line. Two different stated verdicts, or none, is an abstention.
 */
export function parsePairVerdict(reply: string): PairVerdict {
  const whole = bare(reply);
  if (VERDICT_WORD.test(whole)) return normalise(whole);
  const stated = new Set<PairVerdict>();
  for (const match of reply.matchAll(/verdict\s*[:=-]\s*[*_"'`[(]*\s*(a|b|tie)\b/gi)) stated.add(normalise(match[1]!));
  return stated.size === 1 ? [...stated][0]! : 'abstained';
}

function normalise(word: string): PairVerdict {
  const lower = word.toLowerCase();
  return lower === 'tie' ? 'tie' : lower === 'a' ? 'A' : 'B';
}

/** A 1–10 rating the reply states (`Rating: 7`, `7/10`, or the reply being the number), else undefined. */
export function parseScore(reply: string): number | undefined {
  const whole = bare(reply);
  const candidates = new Set<number>();
  if (/^\d+(\.\d+)?$/.test(whole)) candidates.add(Number(whole));
  for (const match of reply.matchAll(/rating\s*[:=-]\s*[*_"'`[(]*\s*(\d+(?:\.\d+)?)/gi)) candidates.add(Number(match[1]));
  if (candidates.size === 0) for (const match of reply.matchAll(/\b(\d+(?:\.\d+)?)\s*\/\s*10\b/g)) candidates.add(Number(match[1]));
  if (candidates.size !== 1) return undefined;
  const score = [...candidates][0]!;
  return score >= 1 && score <= 10 ? score : undefined;
}

/**
 * One vote from the two orders: `forward` judged (x as A, y as B), `backward` judged (y as A, x as B).
 * Only when both orders name the same answer does it win; a disagreement (the sign of position bias)
 * or a tie in either order is a tie; an abstention in either order leaves no vote.
 */
export function combineOrders(forward: PairVerdict, backward: PairVerdict): Winner | 'abstained' {
  if (forward === 'abstained' || backward === 'abstained') return 'abstained';
  const xFirst = forward === 'A' ? 'x' : forward === 'B' ? 'y' : 'tie';
  const xSecond = backward === 'B' ? 'x' : backward === 'A' ? 'y' : 'tie';
  if (xFirst === xSecond && xFirst !== 'tie') return xFirst === 'x' ? 'a' : 'b';
  return 'tie';
}
