import crypto from 'node:crypto';
import type { GenerationEvent, GenerationStats, ThinkOption } from '../../providers/types.js';
import type { RoutedModel } from '../../gateway/router.js';
import type { Principal } from '../../access/auth.js';
import { ApiKeys } from '../../access/api-keys.js';
import type { Services } from '../services.js';
import { badRequest } from '../../gateway/errors.js';

/**
 * What the single-model surfaces (Ollama, OpenAI) share: turning a generation into an HTTP answer,
 * and embedding post-processing.
 */

/**
 * Waits for the first event before the response is committed, so that whatever fails before any
 * output (unknown model, prompt longer than the context, a bad schema) is an HTTP status with an error
 * body rather than a 200 followed by an error line. When `signal` fires (the client left), the
 * generation is closed even if nobody ever reads from it again, which frees its sequence at once.
 */
export async function primed(source: AsyncGenerator<GenerationEvent>, signal: AbortSignal): Promise<AsyncGenerator<GenerationEvent>> {
  const first = await source.next();
  const close = () => void source.return(undefined).catch(() => undefined);
  if (signal.aborted) close();
  else signal.addEventListener('abort', close, { once: true });
  async function* replay(): AsyncGenerator<GenerationEvent> {
    try {
      if (first.done) return;
      yield first.value;
      yield* source;
    } finally {
      signal.removeEventListener('abort', close);
    }
  }
  return replay();
}

/** This process's random half of every response id; the other half counts up. */
const ID_BASE = crypto.randomBytes(6).toString('hex');
let idCounter = 0;

/**
 * A response id (`chatcmpl-…`, `cmpl-…`: 24 hex digits, as before). It only has to be unique, not
 * secret, so a per-process random prefix and a counter replace `crypto.randomBytes` per response,
 * which was ~3% of the gateway's CPU (bench/RESULTS.md, Gateway overhead).
 */
export function responseId(prefix: string): string {
  idCounter = (idCounter + 1) % 0x1000000000000;
  return `${prefix}-${ID_BASE}${idCounter.toString(16).padStart(12, '0')}`;
}

/** OpenAI's `usage` object, which the Ollama answers carry too. */
export function usageOf(stats: Pick<GenerationStats, 'promptTokens' | 'completionTokens'>): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.completionTokens, total_tokens: stats.promptTokens + stats.completionTokens };
}

/** Whether the client asked for Server-Sent Events (`Accept: text/event-stream`) instead of NDJSON. */
export function wantsEventStream(accept: string | undefined): boolean {
  return accept?.toLowerCase().includes('text/event-stream') === true;
}

/** `dimensions` (Ollama and OpenAI): keep the first n components and normalise again, as both do. */
export function truncateDimensions(vectors: number[][], dimensions: unknown): number[][] {
  if (dimensions === undefined || dimensions === null) return vectors;
  if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1) throw badRequest('dimensions must be a positive integer');
  return vectors.map((vector) => {
    if (dimensions > vector.length) throw badRequest(`dimensions must be at most ${vector.length} for this model`);
    const cut = vector.slice(0, dimensions);
    const norm = Math.sqrt(cut.reduce((sum, v) => sum + v * v, 0));
    return norm === 0 ? cut : cut.map((v) => v / norm);
  });
}

/**
 * Images need a vision model; a text-only one refuses them rather than silently ignoring them. A
 * backend that does not report capabilities (OpenAI-compatible servers) is trusted with them.
 */
export function rejectImages(model: RoutedModel, hasImages: boolean): void {
  if (hasImages && model.info.capabilities && !model.info.capabilities.includes('vision')) {
    throw badRequest(`model '${model.name}' does not support images: it is a text-only model`);
  }
}

const THINK_LEVELS: readonly unknown[] = ['high', 'medium', 'low'];

/** Ollama's `think`: true, false, or a level "high" | "medium" | "low". */
export function parseThink(value: unknown): ThinkOption | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean' || THINK_LEVELS.includes(value)) return value as ThinkOption;
  throw badRequest('think must be true, false, "high", "medium" or "low"');
}

/** OpenAI's `reasoning_effort` as Ollama's /v1 maps it to `think`: a level, or "none" for off. */
export function parseReasoningEffort(value: unknown): ThinkOption | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'none') return false;
  if (THINK_LEVELS.includes(value)) return value as ThinkOption;
  throw badRequest('reasoning_effort must be "none", "low", "medium" or "high"');
}

/**
 * A parsed `think` checked against the model. Asking a model without thinking to think is Ollama's
 * 400, with its message; `false` is passed on (a reasoning model then answers without thinking), and
 * so is a request to a backend that does not report capabilities.
 */
export function thinkOption(model: RoutedModel, think: ThinkOption | undefined): ThinkOption | undefined {
  if (think === undefined) return undefined;
  const thinks = !model.info.capabilities || model.info.capabilities.includes('thinking');
  if (think !== false && !thinks) throw badRequest(`"${model.name}" does not support thinking`);
  // Nothing to switch off on a model that cannot think: the request stays as it would be without.
  return thinks ? think : undefined;
}

/** A suffix needs fill-in-the-middle support (`insert`); backends that do not say are trusted. */
export function rejectSuffix(model: RoutedModel, suffix: string | undefined): void {
  if (suffix && model.info.capabilities && !model.info.capabilities.includes('insert')) {
    throw badRequest(`model '${model.name}' does not support insert (suffix): it has no fill-in-the-middle support`);
  }
}

/** The models a caller may use: an API key with an allow-list sees only those, as it may use only those. */
export async function visibleModels(services: Services, principal: Principal | undefined): Promise<RoutedModel[]> {
  const models = await services.router.models();
  return principal?.kind === 'key' ? models.filter((model) => ApiKeys.allows(principal, model.name)) : models;
}

/** The most alternatives per token a request may ask for (OpenAI's limit, which Ollama follows). */
const MAX_TOP_LOGPROBS = 20;

/** `logprobs` (on or off) and `top_logprobs` as the number of alternatives, or undefined when off. */
export function parseLogprobs(logprobs: unknown, top: unknown): number | undefined {
  if (logprobs !== undefined && logprobs !== null && typeof logprobs !== 'boolean') throw badRequest('logprobs must be a boolean');
  if (top !== undefined && top !== null && (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > MAX_TOP_LOGPROBS)) {
    throw badRequest(`top_logprobs must be an integer between 0 and ${MAX_TOP_LOGPROBS}`);
  }
  if (logprobs !== true) return undefined;
  return typeof top === 'number' ? top : 0;
}
