import { BackendError, type EmbedRequest, type EmbedResult } from '../provider.js';
import { couldFit, prefixHolding } from './input-bound.js';
import type { ModelPool } from './model-pool.js';

function l2Normalise(vector: readonly number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
  return norm === 0 ? [...vector] : vector.map((v) => v / norm);
}

/**
 * Embeds each input with the model's embedding context (created on first use beside its generation
 * context), unit-length as Ollama returns them; an input longer than the context is cut to its first
 * tokens unless the client refused truncation.
 */
export async function embed(pool: ModelPool, threads: number, request: EmbedRequest): Promise<EmbedResult> {
  const started = process.hrtime.bigint();
  const wasLoaded = pool.has(request.model);
  const live = await pool.acquire(request.model, request.keepAliveMs);
  const loadDurationNs = wasLoaded ? 0 : Number(process.hrtime.bigint() - started);
  live.active++;
  try {
    const embeddingContextSize = Math.min(live.model.trainContextSize, 2048);
    live.embedding ??= live.model.createEmbeddingContext({ contextSize: embeddingContextSize, threads });
    const context = await live.embedding;
    const embeddings: number[][] = [];
    let promptTokens = 0;
    // node-llama-cpp adds the model's begin (and, for some vocabularies, end) token around the input
    // and needs the whole to be shorter than its context: what is left for the text itself.
    const room = embeddingContextSize - 1 - context.calculateInputLength([]);
    const tooLong = () => new BackendError('input length exceeds the context length', 400);
    for (const text of request.input) {
      if (request.signal.aborted) throw new BackendError('request aborted', 499);
      if (request.truncate === false && !couldFit(live.model, text.length, room + 1)) throw tooLong();
      // Truncating keeps the first tokens, which lie in a prefix of bounded length: only that is tokenised.
      let tokens = live.model.tokenize(request.truncate === false ? text : prefixHolding(live.model, text, room), false);
      if (tokens.length > room) {
        if (request.truncate === false) throw tooLong();
        tokens = tokens.slice(0, room);
      }
      promptTokens += tokens.length;
      const result = await context.getEmbeddingFor(tokens);
      embeddings.push(l2Normalise(result.vector));
    }
    return { embeddings, promptTokens, loadDurationNs, totalDurationNs: Number(process.hrtime.bigint() - started) };
  } finally {
    pool.release(live, undefined);
  }
}
