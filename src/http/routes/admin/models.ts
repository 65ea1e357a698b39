import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { ModelParameters } from '../../../domain/models.js';
import { normaliseModelName } from '../../../shared/model-names.js';
import { modelDetails } from '../arena/models.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';
import { isRecord } from '../../../shared/is-record.js';
import { admin } from './access.js';

/** Each parameter's range; integers where Ollama takes integers. */
const PARAMETERS: Record<Exclude<keyof ModelParameters, 'stop'>, { min: number; max: number; integer: boolean }> = {
  temperature: { min: 0, max: 2, integer: false },
  top_p: { min: 0, max: 1, integer: false },
  top_k: { min: 0, max: 1000, integer: true },
  min_p: { min: 0, max: 1, integer: false },
  repeat_penalty: { min: 0, max: 2, integer: false },
  repeat_last_n: { min: -1, max: 1_000_000, integer: true },
  presence_penalty: { min: -2, max: 2, integer: false },
  frequency_penalty: { min: -2, max: 2, integer: false },
  num_predict: { min: -1, max: 1_000_000, integer: true },
  max_tokens: { min: 1, max: 1_000_000, integer: true },
  seed: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
  num_ctx: { min: 1, max: 10_000_000, integer: true },
};

function parseParameters(value: unknown): ModelParameters {
  if (!isRecord(value)) throw badRequest('parameters must be an object');
  const parameters: Record<string, unknown> = {};
  for (const [name, given] of Object.entries(value)) {
    if (name === 'stop') {
      if (!Array.isArray(given) || given.some((s) => typeof s !== 'string')) throw badRequest('parameters.stop must be an array of strings');
      parameters.stop = given;
      continue;
    }
    const range = PARAMETERS[name as keyof typeof PARAMETERS];
    if (!range) throw badRequest(`unknown parameter '${name}'; known: ${[...Object.keys(PARAMETERS), 'stop'].join(', ')}`);
    if (typeof given !== 'number' || !Number.isFinite(given) || given < range.min || given > range.max || (range.integer && !Number.isInteger(given))) {
      throw badRequest(`parameters.${name} must be ${range.integer ? 'an integer' : 'a number'} from ${range.min} to ${range.max}`);
    }
    parameters[name] = given;
  }
  return parameters as ModelParameters;
}

/** The model catalog: every model with its fields, set a model's entry, remove it. */
export function adminModelRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const { catalog } = services;

    app.get('/api/admin/models', {
      config: admin,
      schema: { tags: ['admin'], summary: 'Every model with its catalog fields, inactive ones and catalog-only entries too' },
    }, async () => {
      const served = await services.router.allModels();
      const names = new Set(served.map((m) => m.name.toLowerCase()));
      const models = served.map((m) => ({ ...modelDetails(m, services), available: true }));
      for (const entry of catalog.all()) {
        if (names.has(entry.name.toLowerCase())) continue;
        models.push({
          ...modelDetails({ name: entry.name, info: { name: entry.name }, replicas: [] }, services),
          available: false,
        });
      }
      return { models };
    });

    app.put('/api/admin/models/:name', {
      config: admin,
      schema: { tags: ['admin'], summary: "Set a model's description, active flag and default parameters" },
    }, async (request) => {
      const body = request.body;
      if (!isRecord(body)) throw badRequest('Body must be a JSON object');
      const unknown = Object.keys(body).filter((k) => !['description', 'is_active', 'parameters'].includes(k));
      if (unknown.length > 0) throw badRequest(`unknown field '${unknown[0]}'; known: description, is_active, parameters`);
      if (body.description !== undefined && (typeof body.description !== 'string' || body.description.length > 2000)) {
        throw badRequest('description must be a string of at most 2000 characters');
      }
      if (body.is_active !== undefined && typeof body.is_active !== 'boolean') throw badRequest('is_active must be true or false');
      const parameters = body.parameters === undefined ? undefined : parseParameters(body.parameters);
      const given = (request.params as { name: string }).name;
      // The served name when the model exists (its exact spelling), else the name as an admin gave it.
      const name = await services.router.resolve(given).then((m) => m.name, () => normaliseModelName(given));
      return catalog.set(name, {
        description: body.description as string | undefined,
        is_active: body.is_active as boolean | undefined,
        parameters,
      });
    });

    app.delete('/api/admin/models/:name', {
      config: admin,
      schema: { tags: ['admin'], summary: "Remove a model's catalog entry (active again, no defaults)" },
    }, async (request) => {
      const name = (request.params as { name: string }).name;
      if (!(await catalog.remove(name))) throw new HttpError(404, `No catalog entry for model '${name}'`);
      return { name: normaliseModelName(name), status: 'removed' };
    });
  };
}
