import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { arenaBodySchema } from './arena/request.js';
import { arenaChat } from './arena/chat.js';
import { ollamaChat } from './ollama/chat.js';
import { badRequest } from '../../gateway/errors.js';
import { isRecord } from '../../shared/is-record.js';

/**
 * `POST /api/chat` is two APIs on one path. A body with `history` is an Arena request; a body with
 * `messages` is a single-model (Ollama) request.
 */
export function chatDispatchRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/chat', {
      // Its usage counts under the API the body speaks.
      config: { access: 'model', surface: (request) => (isRecord(request.body) && request.body.history !== undefined ? 'arena' : 'ollama') },
      // The schema documents both bodies; each handler validates with its own API's messages.
      attachValidation: true,
      schema: {
        tags: ['arena', 'ollama'],
        summary: 'Arena chat (body with history) or single-model chat (body with messages)',
        body: { type: 'object', properties: { ...arenaBodySchema.properties, messages: { type: 'array' }, model: { type: 'string' } } },
      },
    }, async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (body.history !== undefined) return arenaChat(services, request, reply);
      if (body.messages !== undefined) return ollamaChat(services, request, reply);
      throw badRequest('No messages provided');
    });
  };
}
