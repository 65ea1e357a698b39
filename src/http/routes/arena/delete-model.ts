import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { badRequest } from '../../../gateway/errors.js';

export function arenaDeleteModelRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/delete_model', {
      config: { access: 'admin' },
      attachValidation: true, // the schema documents; the handler answers with the Arena's message
      schema: {
        tags: ['arena'],
        summary: 'Delete a model from every backend that has it',
        body: { type: 'object', properties: { model: { type: 'string' } } },
      },
    }, async (request, reply) => {
      const body = (request.body ?? {}) as { model?: unknown };
      if (typeof body.model !== 'string' || body.model.trim() === '') throw badRequest('Model name is required');
      let deleted: string;
      try {
        deleted = (await services.router.resolve(body.model)).name;
      } catch {
        return reply.code(404).send({ error: `Model not found: ${body.model}` });
      }
      try {
        await services.router.onEveryReplica(deleted, async (backend, model) => {
          if (!backend.delete) throw new Error(`backend ${backend.id} cannot delete models`);
          await backend.delete(model);
        });
      } catch (error) {
        request.log.warn({ err: error }, 'delete failed');
        return reply.code(500).send({ error: 'Failed to delete model', details: (error as Error).message });
      }
      return { status: 'deleted', model: body.model };
    });
  };
}
