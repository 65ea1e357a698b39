import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { keepAliveFor } from '../../../access/keep-alive.js';
import { rejectImages, rejectSuffix, thinkOption, usageOf } from '../single-model.js';
import { finishReason } from '../openai/finish-reason.js';
import { bodyOf, doc, optionalBoolean, optionalString, parseCommon, parseContext, parseImages } from './request.js';
import { completionId, loadOrUnload, respond, type Shape } from './respond.js';

async function ollamaGenerate(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const common = parseCommon(body);
  const prompt = optionalString(body, 'prompt') ?? '';
  const system = optionalString(body, 'system');
  const suffix = optionalString(body, 'suffix');
  const raw = optionalBoolean(body, 'raw');
  const images = parseImages(body.images, 'images');
  const context = parseContext(body.context);
  const model = await services.router.resolve(common.model);
  rejectImages(model, images !== undefined);
  const think = thinkOption(model, common.think);
  rejectSuffix(model, suffix);
  if (prompt === '' && !system && !images) {
    return loadOrUnload(services, reply, model, common, { response: '' }, request.headers.accept);
  }
  const options = common.options;
  const shape: Shape = {
    piece: (text, _toolCalls, thinking) => ({ response: text, ...(thinking === undefined ? {} : { thinking }) }),
    // Ollama's clients (ollama-js, the AI SDK's provider) read `context` on the final object; a
    // backend that does not report it gives an empty one rather than none.
    final: (stats) => ({ context: stats.context ?? [] }),
    superset: (text, stats) => ({
      text,
      usage: usageOf(stats),
      id: completionId(),
      object: 'text.completion',
      created: Math.floor(Date.now() / 1000),
      choices: [{ index: 0, text, finish_reason: finishReason(stats) }],
    }),
  };
  return respond(request, reply, model.name, common.stream, (signal) =>
    services.generation.complete(
      { model: model.name, prompt, raw, system, suffix, options, format: common.format, think, keepAliveMs: keepAliveFor(request.principal, common.keepAliveMs), context, truncate: common.truncate, logprobs: common.logprobs, signal },
      request.usage,
    ),
    shape,
  );
}

export function ollamaGenerateRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/api/generate', {
      config: { access: 'model' },
      attachValidation: true,
      schema: doc('Generate a completion (Ollama); empty prompt loads the model, keep_alive 0 unloads it', {
        model: { type: 'string' }, prompt: { type: 'string' }, suffix: { type: 'string' }, system: { type: 'string' },
        raw: { type: 'boolean' }, stream: { type: 'boolean' }, format: {}, options: { type: 'object' }, keep_alive: {},
        images: { type: 'array' }, temperature: { type: 'number' }, max_tokens: { type: 'integer' }, context: { type: 'array' }, truncate: { type: 'boolean' }, logprobs: { type: 'boolean' }, top_logprobs: { type: 'integer' },
      }),
    }, (request, reply) => ollamaGenerate(services, request, reply));

  };
}
