import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { TokenLogprob } from '../../../providers/types.js';
import type { ChatMessage, ToolCall } from '../../../domain/chat.js';
import { choiceCount, parseOpenAiOptions, parseOpenAiResponseFormat } from '../../../gateway/options.js';
import { isRecord } from '../../../shared/is-record.js';
import { applyToolChoice, openAiToolCalls, parseToolCalls, parseTools } from '../../../gateway/tools.js';
import { badRequest } from '../../../gateway/errors.js';
import { parseLogprobs, parseReasoningEffort, rejectImages, responseId, thinkOption } from '../single-model.js';
import { finishReason } from './finish-reason.js';
import { relayOrTranslate, type Translated } from './relay.js';
import { doc, refuseUnsupported } from './request.js';
import { choiceOptions, respond, respondMany, type Shape } from './respond.js';

/** Chat completions' `logprobs` object: the tokens as they are. */
const chatLogprobs = (logprobs: TokenLogprob[]) => ({ content: logprobs, refusal: null });

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** An image part's data (`data:image/png;base64,...` → the base64 text); remote URLs are not fetched. */
function imageData(part: Record<string, unknown>, where: string): string {
  const url = isRecord(part.image_url) ? part.image_url.url : part.image_url;
  if (typeof url !== 'string') throw badRequest(`${where}.image_url.url must be a string`);
  const match = /^data:[^;,]*;base64,(.*)$/s.exec(url);
  if (!match) throw badRequest(`${where}: only base64 data: URLs are accepted for images`);
  return match[1]!;
}

/** OpenAI messages as chat messages: text parts joined, `developer` as `system`, tool results named. */
function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw badRequest('messages must be a non-empty array');
  const toolNames = new Map<string, string>();
  return value.map((raw, index) => {
    const where = `messages[${index}]`;
    if (!isRecord(raw) || typeof raw.role !== 'string' || !ROLES.has(raw.role)) {
      throw badRequest(`${where}.role must be one of system, developer, user, assistant, tool`);
    }
    let content = '';
    const images: string[] = [];
    if (typeof raw.content === 'string') content = raw.content;
    else if (Array.isArray(raw.content)) {
      raw.content.forEach((part, p) => {
        const at = `${where}.content[${p}]`;
        if (!isRecord(part)) throw badRequest(`${at} must be an object`);
        if (part.type === 'text' && typeof part.text === 'string') content += part.text;
        else if (part.type === 'image_url') images.push(imageData(part, at));
        else throw badRequest(`${at}: content part type '${String(part.type)}' is not supported (text and image_url are)`);
      });
    } else if (raw.content !== undefined && raw.content !== null) {
      throw badRequest(`${where}.content must be a string or an array of content parts`);
    }
    const role = raw.role === 'developer' ? 'system' : (raw.role as ChatMessage['role']);
    const message: ChatMessage = { role, content };
    if (images.length > 0) message.images = images;
    const toolCalls = parseToolCalls(raw.tool_calls, where, 'string');
    if (toolCalls) {
      message.tool_calls = toolCalls;
      for (const call of toolCalls) if (call.id) toolNames.set(call.id, call.function.name);
    }
    if (role === 'tool') {
      const name = typeof raw.name === 'string' ? raw.name : typeof raw.tool_call_id === 'string' ? toolNames.get(raw.tool_call_id) : undefined;
      if (name) message.tool_name = name;
    }
    return message;
  });
}

/** A chat completion the gateway reads and runs itself (see relayOrTranslate). */
const chatCompletions: Translated = async (services, request, reply, body, model, streaming) => {
  const messages = parseMessages(body.messages);
  const options = parseOpenAiOptions(body);
  const format = parseOpenAiResponseFormat(body.response_format);
  refuseUnsupported(body);
  const { tools, toolChoice } = applyToolChoice(body.tool_choice, parseTools(body.tools));
  const logprobs = parseLogprobs(body.logprobs, body.top_logprobs);
  rejectImages(model, messages.some((m) => m.images !== undefined));
  const think = thinkOption(model, parseReasoningEffort(body.reasoning_effort));
  // Thoughts travel as `reasoning`, the field Ollama's own /v1 uses.
  const message = (text: string, toolCalls?: ToolCall[], reasoning?: string) => ({
    role: 'assistant',
    content: toolCalls?.length && text === '' ? null : text,
    ...(reasoning === undefined ? {} : { reasoning }),
    ...(toolCalls?.length ? { tool_calls: openAiToolCalls(toolCalls) } : {}),
    refusal: null,
  });
  const shape: Shape = {
    id: responseId('chatcmpl'),
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    opening: { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    chunkChoice: (text, finish, toolCalls) => ({
      index: 0,
      delta: toolCalls?.length
        ? { tool_calls: openAiToolCalls(toolCalls).map((call, i) => ({ index: i, ...call })) }
        : text === undefined
          ? {}
          : { content: text },
      logprobs: null,
      finish_reason: finish ?? null,
    }),
    reasoningChoice: (text) => ({ index: 0, delta: { reasoning: text }, logprobs: null, finish_reason: null }),
    choice: (text, stats, reasoning) => ({ index: 0, message: message(text, stats.toolCalls, reasoning), logprobs: null, finish_reason: finishReason(stats) }),
    logprobs: chatLogprobs,
  };
  const run = (signal: AbortSignal, index = 0) =>
    services.generation.chat({ model: model.name, messages, options: choiceOptions(options, index), format, tools, toolChoice, think, logprobs, signal }, request.usage);
  const n = choiceCount(body);
  return n > 1 ? respondMany(request, reply, model.name, n, streaming, run, shape) : respond(request, reply, model.name, streaming, run, shape);
};

export function openAiChatCompletionRoutes(services: Services) {
  return async function (app: FastifyInstance): Promise<void> {
    app.post('/v1/chat/completions', { config: { access: 'model' }, schema: doc('Chat completion (OpenAI), streamed as chat.completion.chunk frames') }, (request, reply) =>
      relayOrTranslate(services, request, reply, 'chat', chatCompletions),
    );
  };
}
