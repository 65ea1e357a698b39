import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { pullJobFor } from '../../../access/pull-jobs.js';
import { badRequest } from '../../../gateway/errors.js';

/** The Arena's model downloads: start one (`/api/pull_model`), list them, follow one, cancel one. */
export function arenaPullRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/pull_model', {
      config: { access: 'admin' },
      attachValidation: true, // the schema documents; the handler answers with the Arena's message
      schema: {
        tags: ['arena'],
        summary: 'Start downloading a model (URL, hf:owner/repo/file.gguf, or an Ollama name); returns at once',
        body: { type: 'object', properties: { model: { type: 'string' }, name: { type: 'string' } } },
      },
    }, async (request) => {
      const body = (request.body ?? {}) as { model?: unknown; name?: unknown };
      if (typeof body.model !== 'string' || body.model.trim() === '') throw badRequest('Model name is required');
      if (body.name !== undefined && typeof body.name !== 'string') throw badRequest('name must be a string');
      const job = await services.pulls.start(body.model.trim(), body.name);
      // The source as the job shows it: a URL's query string (a download token) is not echoed.
      return { status: 'downloading', model: job.source, name: job.model, job_id: job.id };
    });

    app.get('/api/pulls', {
      config: { access: 'model' },
      schema: { tags: ['arena'], summary: 'Model downloads, running and recent, with progress (sources for the admin only)' },
    }, async (request) => ({ pulls: services.pulls.list().map((job) => pullJobFor(request.principal, job)) }));

    app.get('/api/pulls/:id', {
      config: { access: 'model' },
      schema: { tags: ['arena'], summary: 'One model download with its progress (its source for the admin only)' },
    }, async (request, reply) => {
      const job = services.pulls.get((request.params as { id: string }).id);
      if (!job) return reply.code(404).send({ error: 'Resource not found' });
      return pullJobFor(request.principal, job);
    });

    app.delete('/api/pulls/:id', {
      config: { access: 'admin' },
      schema: { tags: ['arena'], summary: 'Cancel a running model download' },
    }, async (request, reply) => {
      const cancelled = services.pulls.cancel((request.params as { id: string }).id);
      if (!cancelled) return reply.code(404).send({ error: 'No running download with that id' });
      return { status: 'cancelled' };
    });
  };
}
