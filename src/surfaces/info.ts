import type { FastifyInstance } from 'fastify';
import type { Services } from '../server.js';
import { sendWebApp, wantsHtml } from './web.js';

export const VERSION = '0.1.0';

/**
 * `GET /` (SPEC rule 6: the web UI for a browser, seed 004's JSON for anything else), `HEAD /`
 * (Ollama clients' liveness probe) and `GET /health`.
 */
export function infoRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.route({
      method: ['GET', 'HEAD'],
      url: '/',
      config: { access: 'public' },
      schema: { tags: ['info'], summary: 'Server information (JSON), or the Arena web UI for a browser' },
      handler: async (request, reply) => {
        if (request.method === 'GET' && wantsHtml(request) && sendWebApp(reply)) return reply;
        if (request.method === 'HEAD') return reply.code(200).send();
        const models = await services.router.models();
        return { name: 'ollama-arena', version: VERSION, status: 'running', models_available: models.length };
      },
    });

    app.get('/health', {
      config: { access: 'public' },
      schema: { tags: ['info'], summary: 'Liveness' },
    }, async () => ({ status: 'healthy' }));
  };
}
