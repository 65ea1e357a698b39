import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { normaliseModelName } from '../../../shared/model-names.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';
import { bodyOf, doc, modelName, optionalString } from './request.js';

/** Ollama's model management besides pulling: `/api/push` (refused with its reason), `/api/delete`, `/api/copy`. */
export function ollamaManageRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    // Pushing needs a registry account and a model in Ollama's layer format; neither exists here, so the
    // request is answered with that reason (after the usual checks) instead of a bare 404.
    app.post('/api/push', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Push a model to a registry (not supported: answers why)', { model: { type: 'string' }, name: { type: 'string' }, stream: { type: 'boolean' } }),
    }, async (request, reply) => {
      const model = await services.router.resolve(modelName(bodyOf(request)));
      // Sent here, not thrown: the error handler hides the message of any 5xx that is not a backend's.
      return reply.code(501).send({ error: `pushing '${model.name}' to a registry is not supported by this server: push from the Ollama host that has it` });
    });

    app.delete('/api/delete', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Delete a model from every backend that has it', { model: { type: 'string' }, name: { type: 'string' } }),
    }, async (request, reply) => {
      const name = modelName(bodyOf(request));
      await services.router.onEveryReplica(name, async (backend, model) => {
        if (!backend.delete) throw new HttpError(400, `backend ${backend.id} cannot delete models`);
        await backend.delete(model);
      });
      return reply.code(200).send();
    });

    app.post('/api/copy', {
      attachValidation: true,
      config: { access: 'admin' },
      schema: doc('Copy a model to a new name', { source: { type: 'string' }, destination: { type: 'string' } }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const source = optionalString(body, 'source');
      const destination = optionalString(body, 'destination');
      if (!source || !destination) throw badRequest('source and destination are required');
      const target = normaliseModelName(destination);
      await services.router.onEveryReplica(source, async (backend, model) => {
        if (!backend.copy) throw new HttpError(400, `backend ${backend.id} cannot copy models`);
        await backend.copy(model, target);
      });
      return reply.code(200).send();
    });

  };
}
