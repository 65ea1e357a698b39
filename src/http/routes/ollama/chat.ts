import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { keepAliveFor } from '../../../access/keep-alive.js';
import { parseTools } from '../../../gateway/tools.js';
import type { OpenSession } from '../../../access/sessions.js';
import { generateFitting } from '../../../gateway/context-fit.js';
import { rejectImages, thinkOption, usageOf } from '../single-model.js';
import { finishReason } from '../openai/finish-reason.js';
import { bodyOf, parseCommon, parseMessages } from './request.js';
import { chatMessage, completionId, loadOrUnload, respond, type Shape } from './respond.js';

/** `POST /api/chat` with `messages`: one model, Ollama's wire format, and a server-side session (`session_id`) that keeps the conversation. */
export async function ollamaChat(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = bodyOf(request);
  const common = parseCommon(body);
  const messages = parseMessages(body.messages);
  const tools = parseTools(body.tools);
  const model = await services.router.resolve(common.model);
  rejectImages(model, messages.some((m) => m.images !== undefined));
  const think = thinkOption(model, common.think);
  if (messages.length === 0) {
    return loadOrUnload(services, reply, model, common, { message: { role: 'assistant', content: '' } }, request.headers.accept);
  }
  const session: OpenSession = await services.sessions.open(body.session_id, request.principal);
  const options = common.options;
  const shape: Shape = {
    piece: (text, toolCalls, thinking) => ({ message: chatMessage(text, toolCalls, thinking) }),
    extra: { session_id: session.id },
    superset: (text, stats, toolCalls) => ({
      usage: usageOf(stats),
      id: completionId(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      choices: [{ index: 0, message: chatMessage(text, toolCalls), finish_reason: finishReason(stats) }],
    }),
    finished: (text, stats) =>
      services.sessions.record(session, request.principal, model.name, [
        ...messages,
        { role: 'assistant', content: text, ...(stats.toolCalls?.length ? { tool_calls: stats.toolCalls } : {}) },
      ]),
  };
  return respond(request, reply, model.name, common.stream, (signal) =>
    generateFitting([...session.history, ...messages], (fitting) =>
      services.generation.chat(
        { model: model.name, messages: fitting, options, format: common.format, tools, think, keepAliveMs: keepAliveFor(request.principal, common.keepAliveMs), truncate: common.truncate, logprobs: common.logprobs, signal },
        request.usage,
      ),
      { truncate: common.truncate },
    ),
    shape,
  );
}
