import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { providerKind } from '../../../providers/provider.js';
import type { RoutedModel } from '../../../gateway/router.js';
import { HttpError } from '../../../gateway/errors.js';
import { ApiKeys } from '../../../access/api-keys.js';

/**
 * `GET /api/models` is the Arena's list of names; `?details=true` and `GET /api/models/{name}` give
 * objects with metadata, catalog fields and backends; load and unload put a model in memory or out.
 */

export function modelDetails(model: RoutedModel, services: Services) {
  const { info } = model;
  const entry = services.catalog.get(model.name);
  return {
    id: model.name,
    name: model.name,
    description: entry?.description ?? '',
    is_active: entry?.is_active ?? true,
    family: info.family ?? null,
    parameter_size: info.parameterSize ?? null,
    size_mb: info.sizeBytes === undefined ? null : Math.round(info.sizeBytes / (1024 * 1024)),
    quantization: info.quantization ?? null,
    context_size: info.contextSize ?? null,
    template: info.template ?? null,
    parameters: entry?.parameters ?? {},
    loaded: info.loaded === true,
    backends: model.replicas.map((backend) => ({
      id: backend.id,
      kind: providerKind(backend),
      healthy: !services.router.isDown(backend),
    })),
  };
}

async function find(services: Services, name: string): Promise<RoutedModel> {
  try {
    return await services.router.resolve(name);
  } catch {
    throw new HttpError(404, `Model not found: ${name}`);
  }
}

export function modelRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.get('/api/models', {
      config: { access: 'model' },
      schema: {
        tags: ['arena', 'models'],
        summary: 'Model names; with details=true, objects with metadata, catalog fields and backends',
        querystring: { type: 'object', properties: { details: { type: 'string', enum: ['true', 'false', '1', '0'] } } },
      },
    }, async (request) => {
      const details = ['true', '1'].includes((request.query as { details?: string }).details ?? '');
      // A key with an allow-list sees only its models (inactive ones are already hidden by the router).
      const principal = request.principal;
      const models = (await services.router.models()).filter((m) => principal?.kind !== 'key' || ApiKeys.allows(principal, m.name));
      if (!details) return { models: models.map((m) => m.name) };
      return { models: models.map((m) => modelDetails(m, services)) };
    });

    // One model's details, load and unload are counted apart from the Arena's list, as the `models` API.
    app.get('/api/models/:name', {
      config: { access: 'model', surface: 'models', modelParam: 'name', inactiveModel: 'read' },
      schema: { tags: ['models'], summary: 'One model with its details' },
    }, async (request) => modelDetails(await find(services, (request.params as { name: string }).name), services));

    app.post('/api/models/:name/load', {
      config: { access: 'manage', surface: 'models', modelParam: 'name' },
      schema: { tags: ['models'], summary: 'Load a model into memory now' },
    }, async (request) => {
      const { name } = request.params as { name: string };
      const model = await find(services, name);
      await services.router.onEveryReplica(model.name, (backend, m) => backend.load?.(m));
      return { status: 'success', message: `Model '${model.name}' loaded` };
    });

    app.post('/api/models/:name/unload', {
      config: { access: 'manage', surface: 'models', modelParam: 'name', inactiveModel: 'unload' },
      schema: { tags: ['models'], summary: 'Unload a model from memory' },
    }, async (request) => {
      const { name } = request.params as { name: string };
      const model = await find(services, name);
      await services.router.onEveryReplica(model.name, (backend, m) => backend.unload?.(m));
      return { status: 'success', message: `Model '${model.name}' unloaded` };
    });
  };
}
