import type { LlamaModel, Token } from 'node-llama-cpp';
import { llamaCpp } from './llama-module.js';
import type { CompletionRequest } from '../provider.js';
import type { GenerationOptions } from '../../domain/chat.js';
import { promptLimit, truncateTokens } from '../truncate-prompt.js';
import type { GenerationRun, RunResult } from './generate.js';
import { suffixHolding } from './input-bound.js';
import { generateWithLogprobs } from './logprobs.js';

/** Ollama's `num_keep` when the request sets it: leading prompt tokens that truncation never drops. */
function numKeep(options: GenerationOptions): number {
  const value = options.extra?.num_keep;
  return typeof value === 'number' && value > 0 ? value : 0;
}

/** A client's `context` ids that name tokens of this model; others would crash llama.cpp, so they are dropped. */
function validTokens(model: LlamaModel, context: number[] | undefined): Token[] {
  if (!context?.length) return [];
  const vocabulary = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer?.ggml?.tokens?.length ?? 0;
  return context.filter((id) => Number.isInteger(id) && id >= 0 && id < vocabulary) as Token[];
}

/** The prompt's length in UTF-16 code units, for the check that needs no tokenising. */
export function completionPromptLength(request: CompletionRequest): number {
  return request.prompt.length + (request.raw ? 0 : (request.system?.length ?? 0));
}

/**
 * A raw completion (Ollama's /api/generate): beginning-of-text, the system prompt, an earlier
 * `context` and the prompt as tokens, the oldest dropped when they exceed the context; the answer's
 * `context` is the prompt and the answer as token ids.
 */
export async function runCompletion(request: CompletionRequest, { live, sequence, common, options, generatedTokens, emit }: GenerationRun): Promise<RunResult> {
  const bos = live.model.tokens.bos !== null ? [live.model.tokens.bos] : [];
  // The system prompt is kept whole when the prompt is cut, as the beginning-of-text token is.
  const system = !request.raw && request.system ? live.model.tokenize(`${request.system}\n\n`, false) : [];
  const keep = Math.max(bos.length + system.length, numKeep(options));
  const limit = promptLimit(live.contextSizePerSequence, options.num_predict);
  // Only the end of an over-long prompt can survive truncation: the rest is not even tokenised.
  const text = request.truncate === false ? request.prompt : suffixHolding(live.model, request.prompt, limit);
  const all = [...bos, ...system, ...validTokens(live.model, request.context), ...live.model.tokenize(text, false)];
  const input = all.length > limit && request.truncate !== false ? truncateTokens(all, limit, keep) : all;
  const generationOptions = common(input.length);
  // Ollama's `context`: the prompt and the answer as token ids, without the beginning-of-text token.
  const contextOf = () => [...input.slice(bos.length), ...generatedTokens].map(Number);
  if (generationOptions.maxTokens === 0) return { promptTokens: input.length, stopReason: 'maxTokens', context: contextOf() };
  if (request.logprobs !== undefined) {
    const result = await generateWithLogprobs(live.model, sequence, input, generationOptions, request.logprobs, emit);
    return { promptTokens: input.length, stopReason: result.stopReason, context: contextOf() };
  }
  const { LlamaCompletion } = await llamaCpp();
  const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    const result = await completion.generateCompletionWithMeta(input, generationOptions);
    return { promptTokens: input.length, stopReason: result.metadata.stopReason, context: contextOf() };
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}
