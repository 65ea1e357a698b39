import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { normaliseModelName } from '../../../shared/model-names.js';
import { badRequest } from '../../../gateway/errors.js';
import { admin } from './access.js';

/** A date, or a date-time, as an ISO timestamp; a bare date as `to` means the end of that day. */
function parseBound(value: unknown, field: string, endOfDay: boolean): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw badRequest(`${field} must be an ISO-8601 date or date-time`);
  const date = new Date(Date.parse(value));
  if (endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(value)) date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString();
}

/** Usage totals by key, model, API and day. */
export function adminUsageRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    const { keys, usageLedger } = services;

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
  };
}
