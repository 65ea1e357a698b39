import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { TokenLogprob } from '../../../providers/types.js';
import { choiceCount, parseOpenAiOptions, parseOpenAiResponseFormat } from '../../../gateway/options.js';
import { badRequest } from '../../../gateway/errors.js';
import { rejectSuffix, responseId } from '../single-model.js';
import { finishReason } from './finish-reason.js';
import { relayOrTranslate, type Translated } from './relay.js';
import { doc, refuseUnsupported } from './request.js';
import { choiceOptions, respond, respondMany, type Shape } from './respond.js';

/** The legacy completions' `logprobs`: how many alternatives per token (0-5), or undefined for none. */
function completionLogprobs(value: unknown): number | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 5) throw badRequest('logprobs must be an integer between 0 and 5');
  return value;
}

/** Legacy completions' `logprobs` object: parallel arrays, alternatives as token → logprob maps. */
function completionLogprobsObject(logprobs: TokenLogprob[], offset = 0) {
  const textOffset: number[] = [];
  let at = offset;
  for (const entry of logprobs) {
    textOffset.push(at);
    at += entry.token.length;
  }
  return {
    tokens: logprobs.map((entry) => entry.token),
    token_logprobs: logprobs.map((entry) => entry.logprob),
    top_logprobs: logprobs.map((entry) => Object.fromEntries(entry.top_logprobs.map((alt) => [alt.token, alt.logprob]))),
    text_offset: textOffset,
  };
}

function completionPrompt(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  if (Array.isArray(value) && value.every((p) => typeof p === 'string')) throw badRequest('prompt: one prompt per request (n and batches of prompts are not supported)');
  throw badRequest('prompt must be a string');
}

/** A text completion the gateway reads and runs itself (see relayOrTranslate). */
const completions: Translated = async (services, request, reply, body, model, streaming) => {
  const prompt = completionPrompt(body.prompt ?? '');
  const options = parseOpenAiOptions(body);
  const format = parseOpenAiResponseFormat(body.response_format);
  refuseUnsupported(body);
  if (body.suffix !== undefined && body.suffix !== null && typeof body.suffix !== 'string') throw badRequest('suffix must be a string');
  if (body.echo !== undefined && body.echo !== null && typeof body.echo !== 'boolean') throw badRequest('echo must be a boolean');
  const suffix = (body.suffix as string | null | undefined) ?? undefined;
  const logprobs = completionLogprobs(body.logprobs);
  rejectSuffix(model, suffix);
  const shape: Shape = {
    id: responseId('cmpl'),
    object: 'text_completion',
    chunkObject: 'text_completion',
    prefix: body.echo === true ? prompt : undefined,
    chunkChoice: (text, finish) => ({ index: 0, text: text ?? '', logprobs: null, finish_reason: finish ?? null }),
    choice: (text, stats) => ({ index: 0, text, logprobs: null, finish_reason: finishReason(stats) }),
    logprobs: (entries) => completionLogprobsObject(entries, body.echo === true ? prompt.length : 0),
  };
  const run = (signal: AbortSignal, index = 0) =>
    services.generation.complete({ model: model.name, prompt, suffix, options: choiceOptions(options, index), format, logprobs, signal }, request.usage);
  const n = choiceCount(body);
  return n > 1 ? respondMany(request, reply, model.name, n, streaming, run, shape) : respond(request, reply, model.name, streaming, run, shape);
};

export function openAiCompletionRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/v1/completions', { config: { access: 'model' }, schema: doc('Text completion (OpenAI legacy), streamed as text_completion frames') }, (request, reply) =>
      relayOrTranslate(services, request, reply, 'completion', completions),
    );
  };
}
