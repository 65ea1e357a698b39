import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../server.js';
import { HttpError } from './http.js';

/** The native Ollama API (seed 003). Placeholder until the Ollama surface lands. */
export async function ollamaChat(_services: Services, _request: FastifyRequest, _reply: FastifyReply): Promise<unknown> {
  throw new HttpError(501, 'single-model chat is not implemented yet');
}
