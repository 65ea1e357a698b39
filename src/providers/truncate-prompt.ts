import { BackendError, ContextOverflowError } from './types.js';
import type { ChatMessage } from '../domain/chat.js';

/**
 * Ollama's answer to a prompt longer than the model's context: it drops the oldest tokens and answers,
 * rather than refusing. The tokens a model must not lose (the beginning-of-text token, a system
 * prompt) are kept; what goes is taken from just after them. `truncate: false` asks for the refusal
 * instead. Everything here works on tokens the caller already has, so that a size bound can be
 * applied to the raw text before anything is tokenised.
 */

/** The engine's refusal of a prompt longer than the context, typed so that callers test it with instanceof. */
export function contextOverflow(promptTokens: number, contextSize: number, model: string, atLeast = false): ContextOverflowError {
  // `atLeast`: counted by the text's length alone (a lower bound), without tokenising it.
  return new ContextOverflowError(`prompt is ${atLeast ? 'at least ' : ''}${promptTokens} tokens, more than the ${contextSize}-token context of '${model}'`, promptTokens, contextSize);
}

/**
 * The most prompt tokens a generation may keep: the context less room for the answer. Ollama keeps a
 * full context and then shifts it while generating; here the room is reserved up front instead, the
 * answer's `num_predict` when it asks for less than half the context, else a quarter of the context.
 */
export function promptLimit(contextSize: number, numPredict: number | undefined): number {
  const half = Math.floor(contextSize / 2);
  const reserve = numPredict !== undefined && numPredict > 0 ? Math.min(numPredict, half) : Math.floor(contextSize / 4);
  return Math.max(1, contextSize - Math.max(1, reserve));
}

/**
 * `tokens` cut to `limit` by dropping the oldest ones after the first `keep` (Ollama's `num_keep`);
 * throws when even the kept part does not fit.
 */
export function truncateTokens<T>(tokens: readonly T[], limit: number, keep: number): T[] {
  if (tokens.length <= limit) return [...tokens];
  const kept = Math.max(0, Math.min(keep, tokens.length));
  if (kept >= limit) throw new BackendError(`the kept part of the prompt (${kept} tokens) does not leave room in a ${limit}-token prompt`, 400);
  return [...tokens.slice(0, kept), ...tokens.slice(tokens.length - (limit - kept))];
}

/** Messages without their oldest exchange (a user turn and what answered it); system messages stay. */
export function withoutOldestExchange(messages: ChatMessage[]): ChatMessage[] {
  const first = messages.findIndex((m) => m.role !== 'system');
  if (first === -1) return messages;
  let end = first + 1;
  while (end < messages.length && messages[end]!.role !== 'user') end++;
  return [...messages.slice(0, first), ...messages.slice(end)];
}

export interface ChatTokens<T> {
  /** The rendered prompt's size for these messages. */
  count(messages: ChatMessage[]): number;
  tokenize(text: string): T[];
  detokenize(tokens: T[]): string;
}

/**
 * A conversation cut to `limit` prompt tokens as Ollama cuts one: the oldest exchanges go first (system
 * messages and the newest message stay), then the newest message loses its oldest tokens.
 */
export function fitMessages<T>(messages: ChatMessage[], limit: number, tokens: ChatTokens<T>): { messages: ChatMessage[]; count: number } {
  let fitting = messages;
  let count = tokens.count(fitting);
  while (count > limit) {
    const newest = fitting.slice(-1);
    const shorter = withoutOldestExchange(fitting.slice(0, -1));
    if (shorter.length === fitting.length - 1) break;
    fitting = [...shorter, ...newest];
    count = tokens.count(fitting);
  }
  if (count <= limit) return { messages: fitting, count };
  const last = fitting[fitting.length - 1]!;
  const content = tokens.tokenize(last.content);
  const excess = count - limit;
  if (excess >= content.length) throw new BackendError(`the system prompt and template alone are longer than the ${limit} tokens a prompt may take`, 400);
  const cut = [...fitting.slice(0, -1), { ...last, content: tokens.detokenize(content.slice(excess)) }];
  // Detokenising and tokenising again may not give back exactly the same count; one more pass settles it.
  const recount = tokens.count(cut);
  if (recount <= limit) return { messages: cut, count: recount };
  const again = tokens.tokenize(cut[cut.length - 1]!.content);
  const more = recount - limit;
  if (more >= again.length) throw new BackendError(`the system prompt and template alone are longer than the ${limit} tokens a prompt may take`, 400);
  const final = [...cut.slice(0, -1), { ...last, content: tokens.detokenize(again.slice(more)) }];
  return { messages: final, count: tokens.count(final) };
}
