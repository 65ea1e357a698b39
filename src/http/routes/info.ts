import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { sendWebApp, wantsHtml } from './web.js';

const VERSION = '0.1.0';

/** A part of the service that does not work as configured, and why. */
export interface Degradation {
  component: 'redis' | 'embedded';
  reason: string;
}

/** What works less well than configured right now: Redis away, the embedded engine unable to start. */
function degradations(services: Pick<Services, 'shared' | 'engine'>): Degradation[] {
  const found: Degradation[] = [];
  const redis = services.shared.unavailable;
  if (redis !== undefined) found.push({ component: 'redis', reason: redis });
  const engine = services.engine.unavailable;
  if (engine !== undefined) found.push({ component: 'embedded', reason: engine });
  return found;
}

/**
 * A health answer: `status` is `healthy`, or `degraded` with the reasons in `degraded`. A degraded
 * server still answers 200, since it is serving (a load balancer should keep it); the body says what
 * is missing.
 */
export function healthBody<T extends object>(services: Pick<Services, 'shared' | 'engine'>, fields: T): { status: string } & T & { degraded?: Degradation[] } {
  const found = degradations(services);
  return found.length === 0 ? { status: 'healthy', ...fields } : { status: 'degraded', ...fields, degraded: found };
}

/**
 * `GET /` (docs/api-contract.md, the root: the web UI for a browser, the extended Ollama API's JSON for anything else), `HEAD /`
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
      schema: { tags: ['info'], summary: 'Liveness: "healthy", or "degraded" with the reasons in "degraded"' },
    }, async () => healthBody(services, {}));
  };
}
