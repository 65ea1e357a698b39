import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { healthBody } from '../info.js';

export function arenaHealthRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/health', {
      config: { access: 'public' },
      schema: { tags: ['arena'], summary: 'Service health with the number of models available ("degraded" with the reasons when Redis or the embedded engine is away)' },
    }, async () => {
      const models = await services.router.models();
      return healthBody(services, { service: 'ollama-arena', models_available: models.length });
    });
  };
}
