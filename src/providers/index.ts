import type { ModelProvider } from './provider.js';
import type { BackendLogger } from './http-stream.js';
import { ollamaProviders } from './ollama/server.js';
import { openAiProviders } from './openai/server.js';

export type { BackendLogger };

/** The settings (from config.ts) the providers beside the embedded engine are built from. */
export interface BackendSettings {
  ollamaHosts: string[];
  /** Whether OLLAMA_HOSTS was set: an unset one makes Ollama's default address an optional host. */
  ollamaHostsExplicit: boolean;
  openaiBackends: { baseUrl: string; apiKey?: string }[];
}

/** Builds one kind of provider, as many as its settings name (none when they name none). */
type ProviderFactory = (settings: BackendSettings, logger?: BackendLogger) => ModelProvider[];

/** Every kind of remote provider: a new one is a folder beside these and one line here. */
const FACTORIES: ProviderFactory[] = [ollamaProviders, openAiProviders];

/** The model servers beside the embedded engine (which app.ts builds, as it needs the data directory). */
export function createBackends(config: BackendSettings, logger?: BackendLogger): ModelProvider[] {
  const providers = FACTORIES.flatMap((factory) => factory(config, logger));
  // Ids carry URLs only; API keys stay out of the log.
  if (providers.length > 0) logger?.info({ backends: providers.map((p) => p.id) }, 'model servers configured');
  return providers;
}
