import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import type { ModelParameters } from '../../core/catalog.js';
import type { NewKey } from '../../core/api-keys.js';
import { SCOPES, type Scope } from '../../core/auth.js';
import { normaliseModelName } from '../../shared/model-names.js';
import { modelDetails } from '../arena/models.js';
import { badRequest, HttpError } from '../../core/errors.js';
import { isRecord } from '../../shared/is-record.js';

/**
 * The admin API (docs/admin-api.md): API keys, usage totals and the model catalog. Every route needs
 * the admin token (`WEB_CHAT_TOKEN`); bad input is a 400 that changes nothing.
 */

const admin = { access: 'admin' } as const;


function optionalInt(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** `scopes`: a list of known scopes, each at most once; absent or null is none. */
function parseScopes(value: unknown): Scope[] {
  if (value === undefined || value === null) return [];
  const known: readonly string[] = SCOPES;
  if (!Array.isArray(value) || value.some((scope) => typeof scope !== 'string' || !known.includes(scope))) {
    throw badRequest(`scopes must be an array of: ${SCOPES.join(', ')}`);
  }
  return [...new Set(value as Scope[])];
}

function parseNewKey(body: unknown): NewKey {
  if (!isRecord(body)) throw badRequest('Body must be a JSON object');
  const { name, tier = 'standard', models, expires_at, scopes } = body;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 100) throw badRequest('name is required: 1 to 100 characters');
  if (tier !== 'standard' && tier !== 'premium') throw badRequest("tier must be 'standard' or 'premium'");
  let allowed: string[] | undefined;
  if (models !== undefined && models !== null) {
    if (!Array.isArray(models) || models.length === 0 || models.some((m) => typeof m !== 'string' || m.trim() === '')) {
      throw badRequest('models must be a non-empty array of model names (leave it out to allow every model)');
    }
    allowed = [...new Set((models as string[]).map((m) => m.trim()))];
  }
  let expiresAt: string | undefined;
  if (expires_at !== undefined && expires_at !== null) {
    const when = typeof expires_at === 'string' ? Date.parse(expires_at) : NaN;
    if (Number.isNaN(when)) throw badRequest('expires_at must be an ISO-8601 date-time');
    if (when <= Date.now()) throw badRequest('expires_at must be in the future');
    expiresAt = new Date(when).toISOString();
  }
  return {
    name: name.trim(),
    tier,
    rpm: optionalInt(body, 'rpm', 1, 1_000_000),
    tpm: optionalInt(body, 'tpm', 1, 1_000_000_000),
    models: allowed,
    expiresAt,
    scopes: parseScopes(scopes),
  };
}

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

/** A date, or a date-time, as an ISO timestamp; a bare date as `to` means the end of that day. */
function parseBound(value: unknown, field: string, endOfDay: boolean): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw badRequest(`${field} must be an ISO-8601 date or date-time`);
  const date = new Date(Date.parse(value));
  if (endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(value)) date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString();
}

export function adminRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const { keys, catalog, usageLedger } = services;

    app.post('/api/admin/keys', {
      config: admin,
      schema: { tags: ['admin'], summary: 'Create an API key; the secret is in this answer only' },
    }, async (request, reply) => {
      if (!services.auth.hasAdminToken) {
        throw new HttpError(403, 'Set WEB_CHAT_TOKEN before creating API keys: without an admin token nobody could manage or revoke them');
      }
      const created = await keys.create(parseNewKey(request.body));
      return reply.code(201).send(created);
    });

    app.get('/api/admin/keys', {
      config: admin,
      schema: { tags: ['admin'], summary: 'API keys without their secrets, with usage totals' },
    }, async () => {
      await usageLedger.flushEverywhere();
      return { keys: await keys.list() };
    });

    app.delete('/api/admin/keys/:id', {
      config: admin,
      schema: { tags: ['admin'], summary: 'Revoke an API key, at once on every replica' },
    }, async (request) => {
      const revoked = await keys.revoke((request.params as { id: string }).id);
      if (!revoked) throw new HttpError(404, 'API key not found');
      return { id: revoked.id, status: 'revoked', revoked_at: revoked.revoked_at };
    });

    app.patch('/api/admin/keys/:id', {
      config: admin,
      schema: { tags: ['admin'], summary: "Change a key's scopes (manage: load and unload models), at once on every replica" },
    }, async (request) => {
      const body = request.body;
      if (!isRecord(body)) throw badRequest('Body must be a JSON object');
      const unknown = Object.keys(body).find((k) => k !== 'scopes');
      if (unknown !== undefined) throw badRequest(`unknown field '${unknown}'; known: scopes`);
      if (body.scopes === undefined) throw badRequest('scopes is required');
      const updated = await keys.setScopes((request.params as { id: string }).id, parseScopes(body.scopes));
      if (!updated) throw new HttpError(404, 'API key not found');
      if (updated === 'revoked') throw new HttpError(409, 'A revoked API key cannot be changed; create a new one');
      return updated;
    });

    app.post('/api/admin/keys/:id/rotate', {
      config: admin,
      schema: { tags: ['admin'], summary: 'Issue a new secret for a key; the old one stops working at once' },
    }, async (request) => {
      const rotated = await keys.rotate((request.params as { id: string }).id);
      if (!rotated) throw new HttpError(404, 'API key not found');
      if (rotated === 'revoked') throw new HttpError(409, 'A revoked API key cannot be rotated; create a new one');
      return rotated;
    });

    app.get('/api/admin/usage', {
      config: admin,
      schema: {
        tags: ['admin'],
        summary: 'Requests and tokens: totals, by key, by model, by day, and series for charts',
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            key_id: { type: 'string' },
            model: { type: 'string' },
            interval: { type: 'string', enum: ['day', 'hour'] },
          },
        },
      },
    }, async (request) => {
      const query = request.query as Record<string, string | undefined>;
      const from = parseBound(query.from, 'from', false);
      const to = parseBound(query.to, 'to', true);
      const interval = query.interval === 'hour' ? 'hour' : 'day';
      const model = query.model ? normaliseModelName(query.model) : undefined;
      const summary = await usageLedger.summary({ from, to, keyId: query.key_id || undefined, model, interval });
      const named = new Map((await keys.list()).map((key) => [key.id, key]));
      return {
        from: from ?? null,
        to: to ?? null,
        interval,
        totals: summary.totals,
        by_key: summary.byKey.map((row) => ({
          key_id: row.key_id,
          name: row.key_id === null ? null : (named.get(row.key_id)?.name ?? null),
          prefix: row.key_id === null ? null : (named.get(row.key_id)?.prefix ?? null),
          requests: row.requests,
          prompt_tokens: row.prompt_tokens,
          completion_tokens: row.completion_tokens,
        })),
        by_model: summary.byModel,
        by_surface: summary.bySurface,
        // Refused requests (401, 403, 429) count too: this is where they show.
        by_status: summary.byStatus,
        by_day: summary.byDay,
        series_by_model: summary.seriesByModel,
        series_by_key: summary.seriesByKey,
      };
    });

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
