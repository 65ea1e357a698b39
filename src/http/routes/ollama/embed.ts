import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { keepAliveFor, parseKeepAlive } from '../../../access/keep-alive.js';
import { parseOllamaOptions } from '../../../gateway/options.js';
import { badRequest } from '../../../gateway/errors.js';
import { clientGone } from '../../streaming.js';
import { truncateDimensions } from '../single-model.js';
import { bodyOf, doc, modelName, optionalBoolean } from './request.js';

function parseEmbedInput(value: unknown, key: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  throw badRequest(`${key} must be a string or an array of strings`);
}

/** `/api/embed` (a batch) and the older `/api/embeddings` (one prompt). */
export function ollamaEmbedRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/embed', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('Embeddings (L2-normalised) for a string or an array of strings', {
        model: { type: 'string' }, input: {}, truncate: { type: 'boolean' }, dimensions: { type: 'integer' }, keep_alive: {}, options: { type: 'object' },
      }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelName(body);
      const input = parseEmbedInput(body.input, 'input');
      const truncate = optionalBoolean(body, 'truncate');
      const keepAliveMs = keepAliveFor(request.principal, parseKeepAlive(body.keep_alive));
      parseOllamaOptions(body.options);
      const model = await services.router.resolve(name);
      const started = process.hrtime.bigint();
      if (input.length === 0) {
        await services.router.onEveryReplica(model.name, (backend, m) => backend.load?.(m, keepAliveMs));
        const total = Number(process.hrtime.bigint() - started);
        return { model: model.name, embeddings: [], total_duration: total, load_duration: total, prompt_eval_count: 0 };
      }
      const result = await services.router.embed({ model: model.name, input, truncate, keepAliveMs, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      return {
        model: model.name,
        embeddings: truncateDimensions(result.embeddings, body.dimensions),
        total_duration: result.totalDurationNs,
        load_duration: result.loadDurationNs,
        prompt_eval_count: result.promptTokens,
      };
    });

    app.post('/api/embeddings', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('One embedding for `prompt` (Ollama) or `input` (the extended Ollama API)', { model: { type: 'string' }, prompt: { type: 'string' }, input: { type: 'string' }, keep_alive: {} }),
    }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelName(body);
      if (body.prompt !== undefined && body.input !== undefined) throw badRequest('give prompt or input, not both');
      const key = body.prompt !== undefined ? 'prompt' : 'input';
      const text = body[key] ?? '';
      if (typeof text !== 'string') throw badRequest(`${key} must be a string`);
      const keepAliveMs = keepAliveFor(request.principal, parseKeepAlive(body.keep_alive));
      parseOllamaOptions(body.options);
      const model = await services.router.resolve(name);
      if (text === '') {
        await services.router.onEveryReplica(model.name, (backend, m) => backend.load?.(m, keepAliveMs));
        return { embedding: [], model: model.name };
      }
      const result = await services.router.embed({ model: model.name, input: [text], keepAliveMs, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      return { embedding: result.embeddings[0], model: model.name };
    });

  };
}
