import type { LlamaModel } from 'node-llama-cpp';
import type { ChatMessage } from '../../domain/chat.js';
import { withoutOldestExchange } from '../truncate-prompt.js';

/**
 * "Can this text possibly fit?", answered from its length alone, before any tokenising. Tokenising
 * is synchronous native work that takes time in proportion to the text (about half a second per MB
 * for a small vocabulary), so a multi-megabyte prompt would stall every other request; checking its
 * length first refuses (or cuts) it in microseconds.
 *
 * The bound: no token stands for more text bytes than the longest string in the model's vocabulary,
 * and a string of n UTF-16 code units is at least n UTF-8 bytes, so a text of n code units is at least
 * ceil(n / longest) tokens. It holds for the vocabularies llama.cpp tokenises without shrinking the
 * text first: SentencePiece (a space becomes the 3-byte `▁`, a byte-fallback token is written
 * `<0xNN>`) and byte-level BPE (each byte becomes a 1- or 2-byte character). Vocabularies whose
 * normalisers may drop or fold characters (WordPiece, Unigram collapse whitespace runs) get no bound.
 */

const BOUNDED_VOCABULARIES: ReadonlySet<string> = new Set(['spm', 'bpe']);

const longestByModel = new WeakMap<LlamaModel, number>();

/**
 * The most UTF-8 bytes of any vocabulary entry, read once per loaded model from its GGUF metadata;
 * 0 when the bound does not apply (unknown vocabulary, or one with a shrinking normaliser).
 */
function longestTokenBytes(model: LlamaModel): number {
  const known = longestByModel.get(model);
  if (known !== undefined) return known;
  let longest = 0;
  const metadata = model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown } } };
  const tokens = metadata.tokenizer?.ggml?.tokens;
  if (BOUNDED_VOCABULARIES.has(model.vocabularyType) && Array.isArray(tokens) && tokens.length > 0) {
    for (const token of tokens) {
      if (typeof token !== 'string') {
        longest = 0;
        break;
      }
      // Characters count 1-3 bytes, and astral ones (two code units) 4: length * 3 is a safe upper bound,
      // and the exact count is only needed for the rare entries near the top.
      if (token.length * 3 > longest) longest = Math.max(longest, Buffer.byteLength(token));
    }
  }
  longestByModel.set(model, longest);
  return longest;
}

/** The fewest tokens a text of `length` code units can become (0 when the model gives no bound). */
export function fewestTokens(model: LlamaModel, length: number): number {
  const longest = longestTokenBytes(model);
  return longest === 0 ? 0 : Math.ceil(length / longest);
}

/** Whether a text of `length` code units could be fewer than `limit` tokens. */
export function couldFit(model: LlamaModel, length: number, limit: number): boolean {
  return fewestTokens(model, length) < limit;
}

/**
 * A prefix of `text` that holds at least its first `tokens` tokens (each covers at most `longest`
 * code units), with a margin so that where the prefix is cut does not change those tokens. The whole
 * text when the model gives no bound.
 */
export function prefixHolding(model: LlamaModel, text: string, tokens: number): string {
  const longest = longestTokenBytes(model);
  if (longest === 0) return text;
  const end = (tokens + 16) * longest;
  return end >= text.length ? text : text.slice(0, end);
}

/**
 * A suffix of `text` that holds at least its last `tokens` tokens, with the same margin as
 * prefixHolding: what truncating to the newest `tokens` tokens keeps, without tokenising the rest.
 */
export function suffixHolding(model: LlamaModel, text: string, tokens: number): string {
  const longest = longestTokenBytes(model);
  if (longest === 0) return text;
  const start = text.length - (tokens + 16) * longest;
  return start <= 0 ? text : text.slice(start);
}

/**
 * A conversation without what truncating it to `limit` tokens would drop anyway, found by length
 * alone: its oldest exchanges while it cannot fit, then the start of its newest message beyond what
 * `limit` tokens can hold. System messages stay, as truncation keeps them.
 */
export function boundMessages(model: LlamaModel, messages: ChatMessage[], limit: number): ChatMessage[] {
  if (longestTokenBytes(model) === 0 || messages.length === 0) return messages;
  const length = (list: ChatMessage[]) => list.reduce((sum, message) => sum + message.content.length, 0);
  const newest = messages.at(-1)!;
  let earlier = messages.slice(0, -1);
  while (!couldFit(model, length(earlier) + newest.content.length, limit + 1)) {
    const shorter = withoutOldestExchange(earlier);
    if (shorter.length === earlier.length) break;
    earlier = shorter;
  }
  const content = suffixHolding(model, newest.content, limit);
  return [...earlier, content === newest.content ? newest : { ...newest, content }];
}
