import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { NewKey } from '../../../access/api-keys.js';
import { SCOPES, type Scope } from '../../../domain/access.js';
import { badRequest, HttpError } from '../../../gateway/errors.js';
import { isRecord } from '../../../shared/is-record.js';
import { admin } from './access.js';


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

/** API keys: create, list, revoke, change and rotate. */
export function adminKeyRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const { keys, usageLedger } = services;

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
  };
}
