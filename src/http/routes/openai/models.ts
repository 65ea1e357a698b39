import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { providerKind } from '../../../providers/provider.js';
import type { RoutedModel } from '../../../gateway/router.js';
import { ApiKeys } from '../../../access/api-keys.js';
import { HttpError } from '../../../gateway/errors.js';
import { visibleModels } from '../single-model.js';
import { doc } from './request.js';

function modelObject(model: RoutedModel) {
  const modified = model.info.modifiedAt ? Date.parse(model.info.modifiedAt) : NaN;
  return {
    id: model.name,
    object: 'model',
    created: Number.isFinite(modified) ? Math.floor(modified / 1000) : 0,
    owned_by: model.replicas[0] ? providerKind(model.replicas[0]) : 'library',
  };
}

export function openAiModelRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/v1/models', { config: { access: 'model' }, schema: doc('Models available') }, async (request) => ({
      object: 'list',
      data: (await visibleModels(services, request.principal)).map(modelObject),
    }));

    // A wildcard: model names may hold slashes (hf.co/owner/repo:tag).
    app.get('/v1/models/*', { config: { access: 'model' }, schema: doc('One model') }, async (request) => {
      const id = (request.params as { '*': string })['*'];
      const model = await services.router.resolve(id).catch(() => undefined);
      const allowed = model && (request.principal?.kind !== 'key' || ApiKeys.allows(request.principal, model.name));
      if (!model || !allowed) throw new HttpError(404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found');
      return modelObject(model);
    });
  };
}
