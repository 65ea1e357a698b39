import type { Backend } from './types.js';
import { OllamaBackend } from './ollama.js';
import { OpenAICompatibleBackend } from './openai-compatible.js';
import type { BackendLogger } from './http-stream.js';

export type { BackendLogger };

/**
 * The backends beside the embedded engine, from OLLAMA_HOSTS and OPENAI_BACKENDS. With OLLAMA_HOSTS
 * unset, Ollama's default address is tried as an optional host: used when it answers, silent and
 * free when it does not (SPEC: Settings). OLLAMA_HOSTS set to an empty string turns Ollama off.
 */
export interface BackendSettings {
  ollamaHosts: string[];
  /** Whether OLLAMA_HOSTS was set: an unset one makes Ollama's default address an optional host. */
  ollamaHostsExplicit: boolean;
  openaiBackends: { baseUrl: string; apiKey?: string }[];
}

export function createBackends(config: BackendSettings, logger?: BackendLogger): Backend[] {
  const ollama = config.ollamaHosts.map((host) => new OllamaBackend(host, { optional: !config.ollamaHostsExplicit, logger }));
  const openai = config.openaiBackends.map(({ baseUrl, apiKey }) => new OpenAICompatibleBackend(baseUrl, { apiKey, logger }));
  const backends: Backend[] = [...ollama, ...openai];
  // Ids carry URLs only; API keys stay out of the log.
  if (backends.length > 0) logger?.info({ backends: backends.map((b) => b.id) }, 'model servers configured');
  return backends;
}
