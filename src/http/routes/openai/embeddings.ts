import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { badRequest } from '../../../gateway/errors.js';
import { clientGone } from '../../streaming.js';
import { truncateDimensions } from '../single-model.js';
import { bodyOf, doc, modelOf } from './request.js';

function embeddingInput(value: unknown): string[] {
  if (typeof value === 'string') {
    if (value === '') throw badRequest('input must not be empty');
    return [value];
  }
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item !== '')) return value as string[];
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number' || Array.isArray(item))) {
    throw badRequest('input as token arrays is not supported: send text');
  }
  throw badRequest('input must be a non-empty string or a non-empty array of non-empty strings');
}

/** OpenAI's `base64` encoding: the little-endian float32 bytes of the vector. */
function base64Vector(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

export function openAiEmbeddingRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/v1/embeddings', { config: { access: 'model' }, schema: doc('Embeddings (L2-normalised), as floats or base64') }, async (request, reply) => {
      const body = bodyOf(request);
      const name = modelOf(body);
      const input = embeddingInput(body.input);
      const encoding = body.encoding_format ?? 'float';
      if (encoding !== 'float' && encoding !== 'base64') throw badRequest("encoding_format must be 'float' or 'base64'");
      const model = await services.router.resolve(name);
      const result = await services.router.embed({ model: model.name, input, signal: clientGone(request, reply) });
      request.usage.add(model.name, result.promptTokens, 0);
      const vectors = truncateDimensions(result.embeddings, body.dimensions);
      return {
        object: 'list',
        data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: encoding === 'base64' ? base64Vector(vector) : vector })),
        model: model.name,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
    });
  };
}
