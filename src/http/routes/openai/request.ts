import type { FastifyRequest } from 'fastify';
import { isRecord } from '../../../shared/is-record.js';
import { badRequest } from '../../../gateway/errors.js';

/** Reading an OpenAI request body, with OpenAI's messages for what is missing or malformed. */

/** An OpenAI route's OpenAPI entry. */
export const doc = (summary: string) => ({ tags: ['openai'], summary });

export type Body = Record<string, unknown>;

export function bodyOf(request: FastifyRequest): Body {
  if (!isRecord(request.body)) throw badRequest('request body must be a JSON object');
  return request.body;
}

export function modelOf(body: Body): string {
  if (body.model === undefined || body.model === null || body.model === '') throw badRequest('you must provide a model parameter');
  if (typeof body.model !== 'string') throw badRequest('model must be a string');
  return body.model;
}

export function streamOptions(body: Body): { stream: boolean; includeUsage: boolean } {
  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw badRequest('stream must be a boolean');
  const options = body.stream_options;
  if (options !== undefined && options !== null && !isRecord(options)) throw badRequest('stream_options must be an object');
  const includeUsage = isRecord(options) ? options.include_usage : undefined;
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') {
    throw badRequest('stream_options.include_usage must be a boolean');
  }
  return { stream, includeUsage: includeUsage === true };
}

/** Features this server cannot honour are refused by name rather than silently ignored. */
export function refuseUnsupported(body: Body): void {
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1) throw badRequest('best_of must be 1');
}
