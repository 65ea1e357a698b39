import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { TokenLogprob } from '../types.js';
import type { SamplingSettings } from './sampling-settings.js';

/**
 * Generation with each token's log-probability on the embedded engine. node-llama-cpp's chat and
 * completion helpers do not report probabilities; its sequence evaluation does, sampling with the same
 * settings (temperature, top-k/p, min-p, seed, repeat penalties), so this drives that instead and does
 * what the helpers would around it: stop at the end of text, at a stop string, or at the token limit.
 */

export interface LogprobGeneration extends SamplingSettings {
  onToken: (tokens: Token[]) => void;
}

const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

/** The stop string found in `text`, as its index, or -1. */
function stopIndex(text: string, stops: string[]): number {
  let first = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at !== -1 && (first === -1 || at < first)) first = at;
  }
  return first;
}

/** Whether `text` ends with the beginning of a stop string (more tokens may complete it). */
function endsWithStopStart(text: string, stops: string[]): boolean {
  return stops.some((stop) => {
    for (let length = Math.min(stop.length - 1, text.length); length > 0; length--) if (text.endsWith(stop.slice(0, length))) return true;
    return false;
  });
}

export async function generateWithLogprobs(
  model: LlamaModel,
  sequence: LlamaContextSequence,
  input: Token[],
  options: LogprobGeneration,
  top: number,
  push: (text: string, logprobs: TokenLogprob[]) => void,
): Promise<{ stopReason: string }> {
  const generated: Token[] = [];
  const stops = options.customStopTriggers ?? [];
  const lastTokens = options.repeatPenalty?.lastTokens ?? 64;
  /** Pieces held back while they may be the start of a stop string. */
  let pending: { text: string; logprob: TokenLogprob }[] = [];
  const evaluation = sequence.evaluateWithMetadata(input, { probabilities: true }, {
    temperature: options.temperature,
    topK: options.topK,
    topP: options.topP,
    minP: options.minP,
    seed: options.seed,
    repeatPenalty: options.repeatPenalty
      ? {
          punishTokens: () => generated.slice(-lastTokens),
          penalty: options.repeatPenalty.penalty,
          presencePenalty: options.repeatPenalty.presencePenalty,
          frequencyPenalty: options.repeatPenalty.frequencyPenalty,
        }
      : undefined,
  });
  for await (const output of evaluation) {
    if (options.signal.aborted) return { stopReason: 'abort' };
    const token = output.token;
    const text = model.detokenize([token], false, generated.slice(-8));
    generated.push(token);
    options.onToken([token]);
    const alternatives: TokenLogprob['top_logprobs'] = [];
    for (const [candidate, probability] of output.probabilities) {
      if (alternatives.length >= top) break;
      const piece = model.detokenize([candidate], false);
      alternatives.push({ token: piece, logprob: Math.log(probability), bytes: bytesOf(piece) });
    }
    const probability = output.probabilities.get(token) ?? 0;
    pending.push({ text, logprob: { token: text, logprob: probability > 0 ? Math.log(probability) : -9999, bytes: bytesOf(text), top_logprobs: alternatives } });
    const held = pending.map((p) => p.text).join('');
    const stopAt = stopIndex(held, stops);
    if (stopAt !== -1) {
      // What comes before the stop string goes out; the stop string itself does not, as with the helpers.
      if (stopAt > 0) push(held.slice(0, stopAt), pending.map((p) => p.logprob));
      return { stopReason: 'customStopTrigger' };
    }
    if (!endsWithStopStart(held, stops)) {
      push(held, pending.map((p) => p.logprob));
      pending = [];
    }
    if (generated.length >= options.maxTokens) break;
  }
  if (pending.length > 0) push(pending.map((p) => p.text).join(''), pending.map((p) => p.logprob));
  return { stopReason: generated.length >= options.maxTokens ? 'maxTokens' : 'eogToken' };
}
