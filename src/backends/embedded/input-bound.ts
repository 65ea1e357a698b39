import type { LlamaModel } from 'node-llama-cpp';

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
export function longestTokenBytes(model: LlamaModel): number {
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
