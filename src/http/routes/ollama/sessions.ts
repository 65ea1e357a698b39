import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';

/** Sessions: read and delete a server-side conversation kept by `/api/chat` under its `session_id`. */
export function sessionRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const params = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

    app.get('/api/sessions/:id', {
      config: { access: 'model' },
      schema: { tags: ['sessions'], summary: 'A server-side chat session with its messages', params },
    }, async (request) => services.sessions.get((request.params as { id: string }).id, request.principal));

    app.delete('/api/sessions/:id', {
      config: { access: 'model' },
      schema: { tags: ['sessions'], summary: 'Forget a server-side chat session', params },
    }, async (request) => {
      const { id } = request.params as { id: string };
      await services.sessions.delete(id, request.principal);
      return { status: 'success', message: `Session '${id}' deleted` };
    });
  };
}
