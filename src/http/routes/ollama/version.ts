import type { FastifyInstance } from 'fastify';

/** The Ollama API level these routes follow, for clients that check `/api/version` before using a feature. */
const OLLAMA_API_VERSION = '0.12.0';

export function ollamaVersionRoutes() {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/version', { config: { access: 'public' }, schema: { tags: ['ollama'], summary: 'The Ollama API version served' } }, async () => ({
      version: OLLAMA_API_VERSION,
    }));
  };
}
