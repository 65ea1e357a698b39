import type { GenerationOptions } from '../domain/chat.js';

/**
 * The sampling settings a generation on the embedded engine uses for what neither the client nor the
 * catalog set: the model's own (the `general.sampling.*` keys llama.cpp writes into GGUF files), else
 * Ollama's defaults. Remote backends get none of these: they apply their own defaults to what the
 * client left out, as they would for a client talking to them directly.
 */

/** Ollama's DefaultOptions (api/types.go) for the settings the engine maps. */
const OLLAMA_DEFAULTS: Readonly<GenerationOptions> = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.9,
  min_p: 0,
  repeat_penalty: 1.1,
  repeat_last_n: 64,
  num_predict: -1,
};

/** GGUF `general.sampling.*` key → the option it sets. */
const GGUF_SAMPLING: Record<string, keyof GenerationOptions> = {
  'general.sampling.temp': 'temperature',
  'general.sampling.top_k': 'top_k',
  'general.sampling.top_p': 'top_p',
  'general.sampling.min_p': 'min_p',
  'general.sampling.penalty_repeat': 'repeat_penalty',
  'general.sampling.penalty_last_n': 'repeat_last_n',
};

/** The sampling defaults a GGUF file declares (flattened metadata, as /api/show's model_info holds it). */
function ggufSamplingDefaults(modelInfo: Record<string, unknown> | undefined): GenerationOptions {
  const defaults: Record<string, number> = {};
  for (const [key, option] of Object.entries(GGUF_SAMPLING)) {
    const value = modelInfo?.[key];
    if (typeof value === 'number' && Number.isFinite(value)) defaults[option] = value;
  }
  return defaults as GenerationOptions;
}

/** `options` with every unset setting taken from the model's own defaults, else Ollama's. */
export function withModelDefaults(options: GenerationOptions, modelInfo: Record<string, unknown> | undefined): GenerationOptions {
  const merged: Record<string, unknown> = { ...options };
  const fallbacks = { ...OLLAMA_DEFAULTS, ...ggufSamplingDefaults(modelInfo) } as Record<string, unknown>;
  for (const [key, value] of Object.entries(fallbacks)) merged[key] ??= value;
  return merged as GenerationOptions;
}
